"""Small helpers shared by the API modules: case-insensitive path patterns, JSON responses, request calls.

Azure matches URL paths case-insensitively (`resourceGroups` = `resourcegroups`, `servicePrincipals` =
`serviceprincipals`), which Starlette's router does not; each API module therefore mounts one catch-all
Starlette route and dispatches with a `Router` of `PatternRoute`s.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

if TYPE_CHECKING:
    from .tokens import TokenSigner
    from .world import World

_PLACEHOLDER = re.compile(r"\{(\w+)(:path)?\}")


class BodyError(Exception):
    """The request body is not the JSON the endpoint needs."""


def dumps(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def json_response(
    body: Any,
    status: int = 200,
    headers: dict[str, str] | None = None,
    content_type: str = "application/json; charset=utf-8",
) -> Response:
    return Response(dumps(body), status_code=status, headers=headers, media_type=content_type)


def empty_response(status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(b"", status_code=status, headers=headers)


def base_url(request: Request) -> str:
    """`https://127.0.0.1:PORT` as the client addressed us (used for every URL in responses)."""
    return str(request.base_url).rstrip("/")


@dataclass
class Call:
    """One API request as a handler sees it."""

    request: Request
    params: dict[str, str]
    world: World
    signer: TokenSigner
    claims: dict[str, Any] = field(default_factory=dict)
    _body: Any = None
    _body_read: bool = False

    @property
    def base(self) -> str:
        return base_url(self.request)

    @property
    def method(self) -> str:
        return self.request.method

    @property
    def query(self) -> dict[str, str]:
        """Query parameters with case-insensitive names (lower-cased)."""
        return {k.lower(): v for k, v in self.request.query_params.items()}

    def header(self, name: str) -> str | None:
        return self.request.headers.get(name)

    async def json(self, *, required: bool = True) -> Any:
        if not self._body_read:
            raw = await self.request.body()
            self._body_read = True
            if not raw.strip():
                if required:
                    raise BodyError("The request content was empty.")
                self._body = None
            else:
                try:
                    self._body = json.loads(raw)
                except ValueError as exc:
                    raise BodyError(
                        f"The request content was invalid and could not be deserialized: '{exc}'."
                    ) from None
        return self._body


Handler = Callable[[Call], Awaitable[Response]]


class PatternRoute:
    def __init__(self, pattern: str, handlers: Mapping[str, Handler], **meta: Any) -> None:
        self.pattern = pattern
        self.handlers = {m.upper(): h for m, h in handlers.items()}
        self.meta = meta
        regex = ""
        pos = 0
        for m in _PLACEHOLDER.finditer(pattern):
            regex += re.escape(pattern[pos : m.start()])
            regex += f"(?P<{m.group(1)}>.+?)" if m.group(2) else f"(?P<{m.group(1)}>[^/]+)"
            pos = m.end()
        regex += re.escape(pattern[pos:])
        self.regex = re.compile(regex + "/?", re.IGNORECASE)

    def match(self, path: str) -> dict[str, str] | None:
        m = self.regex.fullmatch(path)
        return m.groupdict() if m else None


class Router:
    def __init__(self, routes: list[PatternRoute] | None = None) -> None:
        self.routes: list[PatternRoute] = list(routes or [])

    def add(self, pattern: str, handlers: Mapping[str, Handler], **meta: Any) -> None:
        self.routes.append(PatternRoute(pattern, handlers, **meta))

    def resolve(self, path: str) -> tuple[PatternRoute, dict[str, str]] | None:
        """The first route whose pattern matches `path` (method is checked by the caller)."""
        for route in self.routes:
            params = route.match(path)
            if params is not None:
                return route, params
        return None


def request_id() -> str:
    return str(uuid.uuid4())
