"""Long-running ARM operations that end `Failed`, on request: what a DICOM service whose provisioning fails looks
like (`provisioningState: Failed`, the operation's status `Failed` with an error).

- `POST /_sandbox/operation-failures` `{resource_regex, count?: 1, code?: "InternalServerError", message?}`: the
  next `count` operations started on a resource whose id matches (`re.search`, case-insensitive) end Failed
  (a create or update: the resource stays, `Failed`; deletes are not failed); 201 with the rule;
- `GET /_sandbox/operation-failures`: the rules left; `DELETE`: none left.

Not persisted: like fault rules, they belong to the running sandbox.
"""

from __future__ import annotations

import re
import weakref
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..routing import json_response

if TYPE_CHECKING:
    from ..world import World

_RULES: weakref.WeakKeyDictionary[World, list[dict[str, Any]]] = weakref.WeakKeyDictionary()


def rules_of(world: World) -> list[dict[str, Any]]:
    return _RULES.setdefault(world, [])


def take(world: World, resource_id: str) -> dict[str, str] | None:
    """The error an operation starting now on `resource_id` is to end with, or None: it succeeds."""
    rules = rules_of(world)
    for rule in rules:
        if re.search(rule["resource_regex"], resource_id, re.IGNORECASE):
            rule["count"] -= 1
            if rule["count"] <= 0:
                rules.remove(rule)
            return {"code": rule["code"], "message": rule["message"]}
    return None


def _rule(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValueError("an operation failure is a JSON object")
    unknown = set(data) - {"resource_regex", "count", "code", "message"}
    if unknown:
        raise ValueError(f"unknown keys: {', '.join(sorted(unknown))}")
    pattern = data.get("resource_regex")
    if not isinstance(pattern, str) or not pattern:
        raise ValueError("resource_regex is required")
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"resource_regex: {exc}") from None
    count = data.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ValueError("count must be a positive integer")
    code, message = data.get("code", "InternalServerError"), data.get("message")
    if not isinstance(code, str) or (message is not None and not isinstance(message, str)):
        raise ValueError("code and message are strings")
    return {"resource_regex": pattern, "count": count, "code": code,
            "message": message or "The operation failed because of an internal error. Please try again."}


def control_routes(world: World) -> list[BaseRoute]:
    async def get(request: Request) -> Response:
        return json_response(rules_of(world))

    async def post(request: Request) -> Response:
        try:
            rule = _rule(await request.json())
        except ValueError as exc:
            return json_response({"error": str(exc)}, 400)
        rules_of(world).append(rule)
        return json_response(rule, 201)

    async def delete(request: Request) -> Response:
        rules_of(world).clear()
        return Response(status_code=204)

    return [Route("/_sandbox/operation-failures", get, methods=["GET"]),
            Route("/_sandbox/operation-failures", post, methods=["POST"]),
            Route("/_sandbox/operation-failures", delete, methods=["DELETE"])]
