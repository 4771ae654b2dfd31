"""Observation and fault injection: the request log, fault rules, run-time config, reset (`/_sandbox/...`).

`SandboxApp` wraps the API app: for every API request (control calls excluded) it adds the configured
latency, settles due long-running operations, applies the first matching fault rule, saves the world before
the response goes out when the request changed it, and appends `{method, path, query, status, time}` to the log.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import re
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .routing import json_response
from .world import World

LOG_LIMIT = 20_000


@dataclass
class FaultRule:
    status: int | str  # an HTTP status, or "drop" (close the connection without answering)
    method: str | None = None
    path_regex: str | None = None
    retry_after: float | None = None
    count: int | None = None  # remaining firings; None = unlimited
    fraction: float = 1.0
    body: Any = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    hits: int = 0
    _regex: re.Pattern[str] | None = field(default=None, repr=False)

    @classmethod
    def from_dict(cls, data: Any) -> FaultRule:
        if not isinstance(data, dict):
            raise ValueError("a fault rule is a JSON object")
        unknown = set(data) - {"status", "method", "path_regex", "retry_after", "count", "fraction", "body"}
        if unknown:
            raise ValueError(f"unknown fault rule keys: {', '.join(sorted(unknown))}")
        status = data.get("status")
        if status != "drop" and not (isinstance(status, int) and 400 <= status <= 599):
            raise ValueError("status must be an HTTP error status (e.g. 429, 500, 503) or \"drop\"")
        count = data.get("count")
        if count is not None and (not isinstance(count, int) or count < 1):
            raise ValueError("count must be a positive integer")
        fraction = data.get("fraction", 1.0)
        if not isinstance(fraction, int | float) or not 0 <= fraction <= 1:
            raise ValueError("fraction must be between 0 and 1")
        retry_after = data.get("retry_after")
        if retry_after is not None and (not isinstance(retry_after, int | float) or retry_after < 0):
            raise ValueError("retry_after must be a non-negative number of seconds")
        path_regex = data.get("path_regex")
        try:
            compiled = re.compile(path_regex) if path_regex else None
        except re.error as exc:
            raise ValueError(f"path_regex: {exc}") from None
        return cls(status=status, method=(data.get("method") or None), path_regex=path_regex,
                   retry_after=retry_after, count=count, fraction=float(fraction), body=data.get("body"),
                   _regex=compiled)

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        return not (self._regex is not None and not self._regex.search(path))

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "method": self.method, "path_regex": self.path_regex,
                "retry_after": self.retry_after, "count": self.count, "fraction": self.fraction,
                "body": self.body, "hits": self.hits}


class ControlState:
    """The log and the fault rules of one running sandbox."""

    def __init__(self, seed: int = 0) -> None:
        self.log: deque[dict[str, Any]] = deque(maxlen=LOG_LIMIT)
        self.faults: list[FaultRule] = []
        self.rng = random.Random(seed)
        self._seq = itertools.count(1)

    def next_seq(self) -> int:
        return next(self._seq)

    def take_fault(self, method: str, path: str) -> FaultRule | None:
        for rule in self.faults:
            if not rule.matches(method, path):
                continue
            if rule.fraction < 1.0 and self.rng.random() >= rule.fraction:
                continue
            rule.hits += 1
            if rule.count is not None:
                rule.count -= 1
                if rule.count <= 0:
                    self.faults.remove(rule)
            return rule
        return None


# --- fault responses shaped like each API's errors ------------------------------------------------------------

_REASONS = {429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
            504: "Gateway Timeout"}


def _family(path: str) -> str:
    p = path.lower()
    if p.startswith("/v1.0"):
        return "graph"
    if p.startswith(("/v1/", "/google/")):
        return "google"
    if p.startswith(("/subscriptions", "/providers")):
        return "arm"
    if "/oauth2/" in p or "/discovery/" in p or "openid-configuration" in p:
        return "entra"
    return "other"


def fault_response(rule: FaultRule, request: Request, world: World) -> Response:
    status = int(rule.status)
    headers: dict[str, str] = {}
    if rule.retry_after is not None:
        headers["Retry-After"] = str(int(rule.retry_after)) if float(rule.retry_after).is_integer() else str(
            rule.retry_after)
    family = _family(request.url.path)
    rid = str(uuid.uuid4())
    wait = int(rule.retry_after or 0)
    body: Any = rule.body
    content_type = "application/json; charset=utf-8"
    if body is None:
        if family == "graph":
            from .azure.graph import graph_error_body, graph_headers

            code, message = {
                429: ("Request_ThrottledTemporarily",
                      f"Your request is throttled temporarily. Please try after {wait} seconds."),
                503: ("serviceNotAvailable", "Service is temporarily unavailable. Please try again later."),
            }.get(status, ("UnknownError", _REASONS.get(status, "Error")))
            headers = graph_headers(request, headers)
            body = graph_error_body(request, code, message, request_id=headers["request-id"])
            content_type = "application/json"
        elif family == "google":  # a google.rpc.Status body, as healthcare.googleapis.com answers
            rpc = {429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
            body = {"error": {"code": status, "message": _REASONS.get(status, "Error"),
                              "status": rpc.get(status, "UNKNOWN")}}
        elif family == "entra":
            stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
            body = {"error": "temporarily_unavailable",
                    "error_description": f"AADSTS90033: A transient error has occurred. Please try again. Trace ID: "
                                         f"{rid} Correlation ID: {rid} Timestamp: {stamp}",
                    "error_codes": [90033], "timestamp": stamp, "trace_id": rid, "correlation_id": rid}
        else:
            sub = world.identity.subscription_id
            kind = {"GET": "read", "HEAD": "read", "DELETE": "delete"}.get(request.method, "write")
            code, message = {
                429: ("SubscriptionRequestsThrottled",
                      f"Number of '{kind}' requests for subscription '{sub}' actor '{world.identity.sp_object_id}' "
                      f"exceeded. Please try again after '{wait}' seconds after additional '{wait}' requests. Please "
                      "see https://aka.ms/throttling for more information."),
                500: ("InternalServerError",
                      f"Encountered internal server error. Diagnostic information: timestamp "
                      f"'{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}', subscription id '{sub}', tracking id "
                      f"'{rid}', request correlation id '{rid}'."),
                503: ("ServiceUnavailable", "The service is temporarily unavailable. Please try again later."),
            }.get(status, ("ServerError" if status >= 500 else "BadRequest", _REASONS.get(status, "Error")))
            body = {"error": {"code": code, "message": message}}
            headers.update({"x-ms-request-id": rid, "x-ms-correlation-request-id": rid})
    if isinstance(body, str | bytes):
        raw = body.encode() if isinstance(body, str) else body
        return Response(raw, status_code=status, headers=headers, media_type="text/plain; charset=utf-8")
    return json_response(body, status, headers, content_type)


def _drop(send: Send) -> bool:
    """Close the client's connection without a response (uvicorn internals; False if unavailable)."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if cycle is None or transport is None or not hasattr(cycle, "disconnected"):
        return False
    cycle.disconnected = True  # so uvicorn does not answer 500 after we return
    transport.abort()
    return True


class SandboxApp:
    """The ASGI application uvicorn serves: control routes, plus the API app behind latency/faults/log."""

    def __init__(self, api: ASGIApp, control: ASGIApp, world: World, state: ControlState) -> None:
        self.api = api
        self.control = control
        self.world = world
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.api(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith("/_sandbox"):
            await self.control(scope, receive, send)
            return
        world = self.world
        started = time.time()
        entry: dict[str, Any] = {
            "seq": self.state.next_seq(),
            "method": scope["method"],
            "path": path,
            "query": scope.get("query_string", b"").decode("latin-1"),
            "status": 0,
            "time": datetime.fromtimestamp(started, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }

        async def observed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
                world.save_if_dirty()
            await send(message)

        try:
            latency = world.config.latency_ms
            if latency > 0:
                await asyncio.sleep(latency / 1000.0)
            world.settle()
            rule = self.state.take_fault(scope["method"], path)
            if rule is not None:
                entry["fault"] = rule.id
                if rule.status == "drop" and _drop(send):
                    entry["status"] = "drop"
                    return
                if rule.status == "drop":
                    raise ConnectionAbortedError("sandbox fault: drop")
                response = fault_response(rule, Request(scope, receive), world)
                await response(scope, receive, observed_send)
                return
            await self.api(scope, receive, observed_send)
        finally:
            world.save_if_dirty()
            entry["duration_ms"] = round((time.time() - started) * 1000, 2)
            self.state.log.append(entry)


def routes(world: World, state: ControlState) -> list[BaseRoute]:
    async def get_log(request: Request) -> Response:
        since = request.query_params.get("since")
        items = list(state.log)
        if since and since.isdigit():
            items = [e for e in items if e["seq"] > int(since)]
        return json_response(items)

    async def clear_log(request: Request) -> Response:
        state.log.clear()
        return Response(status_code=204)

    async def get_faults(request: Request) -> Response:
        return json_response([r.to_dict() for r in state.faults])

    async def add_faults(request: Request) -> Response:
        try:
            data = await request.json()
            rules = [FaultRule.from_dict(d) for d in (data if isinstance(data, list) else [data])]
        except ValueError as exc:
            return json_response({"error": str(exc)}, 400)
        state.faults.extend(rules)
        return json_response([r.to_dict() for r in rules], 201)

    async def clear_faults(request: Request) -> Response:
        rule_id = request.path_params.get("rule_id")
        if rule_id:
            state.faults[:] = [r for r in state.faults if r.id != rule_id]
        else:
            state.faults.clear()
        return Response(status_code=204)

    async def get_config(request: Request) -> Response:
        return json_response(world.config.to_dict())

    async def set_config(request: Request) -> Response:
        try:
            data = await request.json()
            if not isinstance(data, dict):
                raise ValueError("config is a JSON object")
            unknown = world.config.update(data)
        except (ValueError, TypeError) as exc:
            return json_response({"error": str(exc)}, 400)
        if unknown:
            return json_response({"error": f"unknown config keys: {', '.join(sorted(unknown))}"}, 400)
        world.configured(data)
        if "fault_seed" in data:
            state.rng.seed(world.config.fault_seed)
        world.save_if_dirty()
        return json_response(world.config.to_dict())

    async def reset(request: Request) -> Response:
        world.reset()
        world.save_if_dirty()
        return Response(status_code=204)

    async def info(request: Request) -> Response:
        ident = world.identity
        return json_response({"tenant_id": ident.tenant_id, "subscription_id": ident.subscription_id,
                              "client_id": ident.client_id, "sp_object_id": ident.sp_object_id,
                              "domain": ident.domain, "config": world.config.to_dict()})

    return [
        Route("/_sandbox/log", get_log, methods=["GET"]),
        Route("/_sandbox/log", clear_log, methods=["DELETE"]),
        Route("/_sandbox/faults", get_faults, methods=["GET"]),
        Route("/_sandbox/faults", add_faults, methods=["POST"]),
        Route("/_sandbox/faults", clear_faults, methods=["DELETE"]),
        Route("/_sandbox/faults/{rule_id}", clear_faults, methods=["DELETE"]),
        Route("/_sandbox/config", get_config, methods=["GET"]),
        Route("/_sandbox/config", set_config, methods=["POST"]),
        Route("/_sandbox/reset", reset, methods=["POST"]),
        Route("/_sandbox/info", info, methods=["GET"]),
    ]
