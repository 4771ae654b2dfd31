"""Observation and fault injection: the request log, fault rules, run-time config, reset (`/_sandbox/...`).

`SandboxApp` wraps the API app: for every API request (control calls excluded) it adds the configured
latency, settles due long-running operations, applies the first matching fault rule, saves the world before
the response goes out when the request changed it, and appends `{method, path, query, status, time,
committed}` to the log (`committed`: the request changed the world).

A fault rule fires before the API sees the request (the default: nothing is written), or, with `after`, once
the API has handled it and its change is saved (`committed`): then the answer is replaced by an error, dropped
with the connection, delayed, or held — the sandbox stops answering anything until the rule is deleted, and
every request held meanwhile is dropped unprocessed, so the world stays exactly as it was after that write
(what a client killed right after it sees). While an after-rule is installed, writes are handled one at a time,
so "the k-th committed write" (`skip: k-1`) is well defined.
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


#: what a rule can do instead of the API's answer, besides an HTTP error status
ACTIONS = ("drop", "hold", "delay", "pause")
#: methods whose requests can change the world (the others never commit)
WRITES = frozenset({"PUT", "POST", "PATCH", "DELETE"})


@dataclass
class FaultRule:
    #: an HTTP error status (the answer), "drop" (close the connection without answering), "hold" (stop
    #: answering anything until the rule is deleted, then drop what was held), "delay" (answer `delay` late) or
    #: "pause" (matching requests wait until the rule is deleted, then go on: a starting gate for several clients)
    status: int | str
    method: str | None = None  # one method or several, comma-separated ("PUT,POST")
    path_regex: str | None = None
    retry_after: float | None = None
    count: int | None = None  # remaining firings; None = unlimited
    fraction: float = 1.0
    body: Any = None
    #: fire once the API has handled the request and saved its change (only on requests that changed the world)
    after: bool = False
    #: matching requests to let through first (with `after`: committed ones)
    skip: int = 0
    #: seconds to wait before the fault (before a "delay" answer, an error, a drop or a hold)
    delay: float = 0.0
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    hits: int = 0
    #: a "hold" that fired: the sandbox answers nothing until this rule is deleted
    holding: bool = False
    _regex: re.Pattern[str] | None = field(default=None, repr=False)

    @classmethod
    def from_dict(cls, data: Any) -> FaultRule:
        if not isinstance(data, dict):
            raise ValueError("a fault rule is a JSON object")
        unknown = set(data) - {"status", "method", "path_regex", "retry_after", "count", "fraction", "body",
                               "after", "skip", "delay"}
        if unknown:
            raise ValueError(f"unknown fault rule keys: {', '.join(sorted(unknown))}")
        status = data.get("status")
        if status not in ACTIONS and not (isinstance(status, int) and 400 <= status <= 599):
            raise ValueError('status must be an HTTP error status (e.g. 429, 500, 503), "drop", "hold" or "delay"')
        count = data.get("count")
        if count is not None and (not isinstance(count, int) or count < 1):
            raise ValueError("count must be a positive integer")
        fraction = data.get("fraction", 1.0)
        if not isinstance(fraction, int | float) or not 0 <= fraction <= 1:
            raise ValueError("fraction must be between 0 and 1")
        retry_after = data.get("retry_after")
        if retry_after is not None and (not isinstance(retry_after, int | float) or retry_after < 0):
            raise ValueError("retry_after must be a non-negative number of seconds")
        after = data.get("after", False)
        if not isinstance(after, bool):
            raise ValueError("after must be true or false")
        skip = data.get("skip", 0)
        if not isinstance(skip, int) or isinstance(skip, bool) or skip < 0:
            raise ValueError("skip must be a non-negative integer")
        delay = data.get("delay", 0.0)
        if not isinstance(delay, int | float) or isinstance(delay, bool) or delay < 0:
            raise ValueError("delay must be a non-negative number of seconds")
        if status == "delay" and not delay:
            raise ValueError('status "delay" needs a delay (seconds)')
        if status == "pause" and after:
            raise ValueError('status "pause" holds requests before the API sees them: it cannot be "after"')
        method = data.get("method") or None
        if method is not None and not isinstance(method, str):
            raise ValueError('method is a string: one method or several, comma-separated ("PUT,POST")')
        path_regex = data.get("path_regex")
        try:
            compiled = re.compile(path_regex) if path_regex else None
        except re.error as exc:
            raise ValueError(f"path_regex: {exc}") from None
        return cls(status=status, method=method, path_regex=path_regex, retry_after=retry_after, count=count,
                   fraction=float(fraction), body=data.get("body"), after=after, skip=skip, delay=float(delay),
                   _regex=compiled)

    def matches(self, method: str, path: str) -> bool:
        if self.method and method.upper() not in {m.strip().upper() for m in self.method.split(",")}:
            return False
        return not (self._regex is not None and not self._regex.search(path))

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "method": self.method, "path_regex": self.path_regex,
                "retry_after": self.retry_after, "count": self.count, "fraction": self.fraction,
                "body": self.body, "after": self.after, "skip": self.skip, "delay": self.delay, "hits": self.hits,
                "holding": self.holding}


class ControlState:
    """The log, the fault rules of one running sandbox, and a hold in force."""

    def __init__(self, seed: int = 0) -> None:
        self.log: deque[dict[str, Any]] = deque(maxlen=LOG_LIMIT)
        self.faults: list[FaultRule] = []
        self.rng = random.Random(seed)
        self._seq = itertools.count(1)
        #: while an after-rule is installed, requests that may commit are handled one at a time
        self.writes = asyncio.Lock()
        #: the hold in force (a rule id), the event that ends it, and when the last one ended
        self.holding: str | None = None
        self._thaw: asyncio.Event | None = None
        self.last_release = 0.0
        #: the pauses in force, by rule id: set when the rule is deleted
        self._resume: dict[str, asyncio.Event] = {}

    def next_seq(self) -> int:
        return next(self._seq)

    @property
    def waits_for_commits(self) -> bool:
        return any(rule.after for rule in self.faults)

    def take_fault(self, method: str, path: str, *, after: bool = False, committed: bool = False
                   ) -> FaultRule | None:
        """The rule that fires for this request at this point (before the API, or after it with `after`)."""
        for rule in self.faults:
            if rule.after != after or rule.holding or not rule.matches(method, path):
                continue
            if after and not committed:
                continue
            if rule.fraction < 1.0 and self.rng.random() >= rule.fraction:
                continue
            if rule.skip > 0:
                rule.skip -= 1
                continue
            rule.hits += 1
            if rule.status == "hold":
                rule.holding = True  # listed until deleted: deleting it ends the hold
            elif rule.count is not None:
                rule.count -= 1
                if rule.count <= 0:
                    self.faults.remove(rule)
            return rule
        return None

    def hold(self, rule: FaultRule) -> None:
        self.holding = rule.id
        self._thaw = asyncio.Event()

    async def paused(self, rule: FaultRule) -> None:
        """Wait until the pause `rule` is deleted."""
        await self._resume.setdefault(rule.id, asyncio.Event()).wait()

    def release(self, rule_id: str | None = None) -> None:
        """End the hold (of `rule_id`, or whichever): what it held is dropped; end pauses: what they held
        goes on."""
        for paused in [key for key in self._resume if rule_id in (None, key)]:
            self._resume.pop(paused).set()
        if self.holding is not None and rule_id in (None, self.holding):
            self.holding = None
            self.last_release = time.monotonic()
            if self._thaw is not None:
                self._thaw.set()

    async def held(self, arrived: float) -> bool:
        """Wait out a hold in force; True when the request (which arrived before a hold ended) must be dropped
        unprocessed: the world stays as it was when the hold began."""
        if self.holding is not None and self._thaw is not None:
            await self._thaw.wait()
        return arrived < self.last_release


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
        world, state = self.world, self.state
        method: str = scope["method"]
        arrived = time.monotonic()
        started = time.time()
        entry: dict[str, Any] = {
            "seq": state.next_seq(),
            "method": method,
            "path": path,
            "query": scope.get("query_string", b"").decode("latin-1"),
            "status": 0,
            "time": datetime.fromtimestamp(started, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "committed": False,
        }
        try:
            if await state.held(arrived):
                self._drop(send, entry)
                return
            latency = world.config.latency_ms
            if latency > 0:
                await asyncio.sleep(latency / 1000.0)
            world.settle()
            world.save_if_dirty()  # what settling changed is not this request's change
            rule = state.take_fault(method, path)
            if rule is not None:
                entry["fault"] = rule.id
                if rule.status == "pause":
                    await state.paused(rule)
                elif rule.status == "delay":
                    await asyncio.sleep(rule.delay)
                else:
                    await self._fault(rule, scope, receive, send, entry)
                    return
            if method in WRITES and state.waits_for_commits:
                async with state.writes:
                    if await state.held(arrived):
                        self._drop(send, entry)
                        return
                    answer = await self._handle(scope, receive, entry)
                    rule = state.take_fault(method, path, after=True, committed=entry["committed"])
                if rule is None:
                    await answer.replay(send)
                    return
                entry["fault"] = rule.id
                if rule.status == "delay":
                    await asyncio.sleep(rule.delay)
                    await answer.replay(send)
                    return
                await self._fault(rule, scope, receive, send, entry)
                return
            await self._pass(scope, receive, send, entry)
        finally:
            world.save_if_dirty()
            entry["duration_ms"] = round((time.time() - started) * 1000, 2)
            state.log.append(entry)

    async def _pass(self, scope: Scope, receive: Receive, send: Send, entry: dict[str, Any]) -> None:
        """Let the API answer directly (streamed), saving its change before the answer goes out."""
        world = self.world
        with world.tracking() as changes:

            async def observed_send(message: Message) -> None:
                if message["type"] == "http.response.start":
                    entry["status"] = message["status"]
                    entry["committed"] = scope["method"] in WRITES and changes.count > 0 and message["status"] < 400
                    world.save_if_dirty()
                await send(message)

            await self.api(scope, receive, observed_send)

    async def _handle(self, scope: Scope, receive: Receive, entry: dict[str, Any]) -> _Answer:
        """Let the API handle the request; its answer, kept to be sent (or not); its change saved first."""
        answer = _Answer()
        with self.world.tracking() as changes:
            await self.api(scope, receive, answer.keep)
        entry["status"] = answer.status
        entry["committed"] = scope["method"] in WRITES and changes.count > 0 and answer.status < 400
        self.world.save_if_dirty()
        return answer

    async def _fault(self, rule: FaultRule, scope: Scope, receive: Receive, send: Send,
                     entry: dict[str, Any]) -> None:
        if rule.delay:
            await asyncio.sleep(rule.delay)
        if rule.status == "hold":
            self.state.hold(rule)
            entry["status"] = "hold"
            await self.state.held(time.monotonic())
            self._drop(send, entry)
        elif rule.status == "drop":
            self._drop(send, entry)
        else:
            response = fault_response(rule, Request(scope, receive), self.world)
            entry["status"] = response.status_code
            await response(scope, receive, send)

    @staticmethod
    def _drop(send: Send, entry: dict[str, Any]) -> None:
        entry["status"] = "drop"
        if not _drop(send):
            raise ConnectionAbortedError("sandbox fault: drop")


class _Answer:
    """An API response held back until the after-rules have had their say (writes only: small JSON bodies)."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.status = 0

    async def keep(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
        self.messages.append(message)

    async def replay(self, send: Send) -> None:
        for message in self.messages:
            await send(message)


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
        state.release(rule_id)  # a hold ends with its rule
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
