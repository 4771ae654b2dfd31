"""ARM throttling: a token bucket per subscription for reads, writes and deletes, answered as Azure does.

Azure Resource Manager limits each subscription (per principal and region; the sandbox has one of each) with
token buckets (facts/azure.md): reads 250 burst refilled at 25 per second, writes 200 / 10 per second, deletes
200 / 10 per second. A request that finds its bucket empty gets **429 `SubscriptionRequestsThrottled`** with a
`Retry-After` in whole seconds and `x-ms-ratelimit-remaining-subscription-{reads|writes|deletes}: 0`; a
throttled request takes no token. GET and HEAD are reads, DELETE is a delete, everything else a write. While it is
on, every admitted answer carries what its bucket has left in `x-ms-ratelimit-remaining-subscription-{kind}`, as
ARM's token-bucket throttling reports it (off, the fixed figures of the old hourly limits stand).

**Off by default.** The test suite sends thousands of ARM requests within a minute against one long-lived
sandbox; with Azure's limits on, unrelated tests would wait out each other's 429s. The benchmark of the
reaper and the tests of throttling turn it on, with Azure's limits or smaller ones:

- `GET /_sandbox/throttling`: `{enabled, limits: {reads: {burst, rate}, writes: ..., deletes: ...},
  admitted: {reads, writes, deletes}, throttled: {...}, remaining: {...}}`;
- `POST /_sandbox/throttling` `{enabled?, limits?: {kind: {burst?, rate?}}, defaults?: true}`: applies, refills
  the buckets and zeroes the counters; unknown keys are 400.

Only ARM is throttled here: the front door calls `check`, which only decides, and words the 429 itself. Graph,
Entra ID and Google answer 429 only through fault rules (`/_sandbox/faults`).
"""

from __future__ import annotations

import math
import weakref
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..routing import json_response

if TYPE_CHECKING:
    from ..world import World

KINDS = ("reads", "writes", "deletes")


@dataclass(frozen=True)
class Limit:
    """A bucket's capacity (`burst` requests at once) and its refill rate (requests per second)."""

    burst: float
    rate: float

    def __post_init__(self) -> None:
        if self.burst < 1 or self.rate <= 0:
            raise ValueError("a limit needs burst >= 1 and rate > 0")


#: Azure Resource Manager's subscription limits (facts/azure.md)
AZURE_LIMITS: dict[str, Limit] = {"reads": Limit(250, 25), "writes": Limit(200, 10), "deletes": Limit(200, 10)}


def kind_of(method: str) -> str:
    method = method.upper()
    if method in ("GET", "HEAD"):
        return "reads"
    return "deletes" if method == "DELETE" else "writes"


@dataclass
class TokenBucket:
    """Starts full; refills continuously at `limit.rate` up to `limit.burst`. Pure: the caller gives the time."""

    limit: Limit
    tokens: float
    updated: float

    @classmethod
    def full(cls, limit: Limit, now: float) -> TokenBucket:
        return cls(limit, float(limit.burst), now)

    def _refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(float(self.limit.burst), self.tokens + (now - self.updated) * self.limit.rate)
            self.updated = now

    def take(self, now: float) -> float | None:
        """Take one token: None when admitted, else the seconds until one is available (nothing taken)."""
        self._refill(now)
        if self.tokens >= 1:
            self.tokens -= 1
            return None
        return (1 - self.tokens) / self.limit.rate

    def remaining(self, now: float) -> int:
        self._refill(now)
        return int(self.tokens)


@dataclass
class ArmThrottle:
    """The buckets of every subscription, the limits they follow, and what was admitted or refused."""

    enabled: bool = False
    limits: dict[str, Limit] = field(default_factory=lambda: dict(AZURE_LIMITS))
    buckets: dict[tuple[str, str], TokenBucket] = field(default_factory=dict)
    admitted: Counter[str] = field(default_factory=Counter)
    throttled: Counter[str] = field(default_factory=Counter)

    def admit(self, subscription: str, method: str, now: float) -> tuple[str, float] | None:
        """None when the request may go ahead; else `(kind, seconds to wait)`."""
        if not self.enabled:
            return None
        kind = kind_of(method)
        key = (subscription.lower(), kind)
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = TokenBucket.full(self.limits[kind], now)
        wait = bucket.take(now)
        if wait is None:
            self.admitted[kind] += 1
            return None
        self.throttled[kind] += 1
        return kind, wait

    def configure(self, values: Any, now: float) -> None:
        """Apply a control request (see the module docstring); raises ValueError for a bad one."""
        if not isinstance(values, dict):
            raise ValueError("throttling config is a JSON object")
        unknown = set(values) - {"enabled", "limits", "defaults"}
        if unknown:
            raise ValueError(f"unknown throttling keys: {', '.join(sorted(unknown))}")
        limits = dict(AZURE_LIMITS) if values.get("defaults") else dict(self.limits)
        given = values.get("limits") or {}
        if not isinstance(given, dict) or set(given) - set(KINDS):
            raise ValueError(f"limits is an object with keys among {', '.join(KINDS)}")
        for kind, limit in given.items():
            if not isinstance(limit, dict) or set(limit) - {"burst", "rate"}:
                raise ValueError(f"limits.{kind} is an object with burst and/or rate")
            burst, rate = limit.get("burst", limits[kind].burst), limit.get("rate", limits[kind].rate)
            if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in (burst, rate)):
                raise ValueError(f"limits.{kind}: burst and rate are numbers")
            limits[kind] = Limit(float(burst), float(rate))
        enabled = values.get("enabled", self.enabled)
        if not isinstance(enabled, bool):
            raise ValueError("enabled is true or false")
        self.enabled, self.limits = enabled, limits
        self.buckets.clear()
        self.admitted.clear()
        self.throttled.clear()

    def describe(self, subscription: str, now: float) -> dict[str, Any]:
        remaining = {}
        for kind in KINDS:
            bucket = self.buckets.get((subscription.lower(), kind))
            remaining[kind] = bucket.remaining(now) if bucket is not None else int(self.limits[kind].burst)
        return {
            "enabled": self.enabled,
            "limits": {kind: {"burst": limit.burst, "rate": limit.rate} for kind, limit in self.limits.items()},
            "admitted": {kind: self.admitted[kind] for kind in KINDS},
            "throttled": {kind: self.throttled[kind] for kind in KINDS},
            "remaining": remaining,
        }


_THROTTLES: weakref.WeakKeyDictionary[World, ArmThrottle] = weakref.WeakKeyDictionary()


def throttle_of(world: World) -> ArmThrottle:
    """The throttle of one running sandbox (kept next to its world, not persisted: a restart starts it off)."""
    throttle = _THROTTLES.get(world)
    if throttle is None:
        throttle = _THROTTLES[world] = ArmThrottle()
    return throttle


@dataclass(frozen=True)
class Throttled:
    """A refused request: which subscription and bucket, and the whole seconds to wait (for `Retry-After`)."""

    subscription: str
    kind: str
    retry_after: int


def check(world: World, request: Request, subscription: str | None) -> Throttled | None:
    """The ARM front door's hook: None when the request may go ahead, else why not (ARM words the 429)."""
    sub = subscription or world.identity.subscription_id
    verdict = throttle_of(world).admit(sub, request.method, world.now())
    if verdict is None:
        return None
    kind, wait = verdict
    return Throttled(sub, kind, max(1, math.ceil(wait)))


def remaining(world: World, method: str, subscription: str | None) -> int | None:
    """What the subscription's bucket for a request of `method` has left after it, as ARM reports it in
    `x-ms-ratelimit-remaining-subscription-{kind}`; None while throttling is off (the fixed figures stand)."""
    throttle = throttle_of(world)
    if not throttle.enabled:
        return None
    kind = kind_of(method)
    bucket = throttle.buckets.get(((subscription or world.identity.subscription_id).lower(), kind))
    return bucket.remaining(world.now()) if bucket is not None else int(throttle.limits[kind].burst)


def control_routes(world: World) -> list[BaseRoute]:
    async def get(request: Request) -> Response:
        return json_response(throttle_of(world).describe(world.identity.subscription_id, world.now()))

    async def post(request: Request) -> Response:
        throttle = throttle_of(world)
        try:
            throttle.configure(await request.json(), world.now())
        except ValueError as exc:
            return json_response({"error": str(exc)}, 400)
        return json_response(throttle.describe(world.identity.subscription_id, world.now()))

    return [
        Route("/_sandbox/throttling", get, methods=["GET"]),
        Route("/_sandbox/throttling", post, methods=["POST"]),
    ]
