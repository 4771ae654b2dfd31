"""How much is sent at once: a gate on operations in flight that adapts to throttling, and the token buckets
services publish as their request limits.

`AdaptiveGate`: at most `window` operations at once. The window starts at the configured concurrency; a throttled
answer (429) halves it, once per congestion event (answers to operations that took their slot before the last cut
do not cut again), and each operation that succeeds grows it by 1/window, back up to the limit: additive increase,
multiplicative decrease, as TCP does, shared by every branch of the graph. Waiting operations are let in highest
priority first (the engine passes the length of the chain of work behind each resource, so what the critical
path runs through goes first), first come first served among equals.

`idle(seconds)`: a sleep during which the caller's slot is lent to others. Every wait that is not work (a
Retry-After, a back-off, the interval between polls of a long-running operation, a bucket refilling) goes
through it, so a branch that waits never holds up one that could send.

`TokenBucket`: a published limit (ARM: reads 250 at once refilled at 25 per second, writes and deletes 200 / 10
per second, per subscription) kept on the client side, so a plan larger than the burst is paced at the refill
rate instead of meeting 429s whose Retry-After is given in whole seconds.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field


class AdaptiveGate:
    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("a gate needs room for at least one operation")
        self.limit = limit
        self.window = float(limit)
        self.active = 0
        #: how often throttling cut the window, and the smallest it became (benchmarks print them)
        self.cuts = 0
        self.lowest = limit
        self._cut_at = -math.inf
        self._waiting: list[tuple[float, int, asyncio.Future[None]]] = []
        self._arrival = itertools.count()

    @property
    def capacity(self) -> int:
        return max(1, int(self.window))

    async def acquire(self, priority: float = 0.0) -> None:
        if self.active < self.capacity and not self._waiting:
            self.active += 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (-priority, next(self._arrival), future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():  # let in just as it was cancelled: give the slot back
                self.release()
            else:
                future.cancel()  # skipped when its turn comes
            raise

    def release(self) -> None:
        self.active -= 1
        self._let_in()

    def _let_in(self) -> None:
        while self._waiting and self.active < self.capacity:
            _, _, future = heapq.heappop(self._waiting)
            if future.done():  # its waiter was cancelled
                continue
            self.active += 1
            future.set_result(None)

    def throttled(self, since: float) -> None:
        """A throttled answer to an operation holding its slot since `since` (monotonic seconds)."""
        if since < self._cut_at:  # sent before the last cut: the same congestion, already answered
            return
        self.window = max(1.0, self.window / 2)
        self._cut_at = time.monotonic()
        self.cuts += 1
        self.lowest = min(self.lowest, self.capacity)

    def succeeded(self) -> None:
        self.window = min(float(self.limit), self.window + 1 / self.window)
        self._let_in()

    @asynccontextmanager
    async def slot(self, priority: float = 0.0) -> AsyncIterator[None]:
        """Hold a slot for the body; `idle` inside it lends the slot out."""
        await self.acquire(priority)
        held = _Held(self, priority, since=time.monotonic())
        token = _holding.set(held)
        try:
            yield
        finally:
            _holding.reset(token)
            if held.held:
                self.release()


@dataclass
class _Held:
    """The slot the current task holds (tasks it starts share it)."""

    gate: AdaptiveGate
    priority: float
    since: float
    held: bool = True


_holding: ContextVar[_Held | None] = ContextVar("provision_gate_slot", default=None)


async def idle(seconds: float) -> None:
    """Sleep `seconds`; when the caller holds a gate's slot, others may use it meanwhile."""
    held = _holding.get()
    if held is None or not held.held or seconds <= 0:
        await asyncio.sleep(max(0.0, seconds))
        return
    held.held = False
    held.gate.release()
    await asyncio.sleep(seconds)  # cancelled here: the slot stays given back
    await held.gate.acquire(held.priority)
    held.held = True
    held.since = time.monotonic()


def throttled() -> None:
    """Tell the caller's gate (if any) that the service throttled the caller."""
    held = _holding.get()
    if held is not None:
        held.gate.throttled(held.since)


@dataclass
class TokenBucket:
    """`burst` requests at once, refilled continuously at `rate` per second. `take` reserves the next token and
    waits (idle) until it is due; reservations may run ahead of the refill, which keeps the order fair."""

    burst: float
    rate: float
    clock: Callable[[], float] = time.monotonic
    tokens: float = field(init=False)
    _at: float = field(init=False)
    #: seconds spent waiting for tokens, by everyone (benchmarks print it)
    waited: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self.tokens = self.burst
        self._at = self.clock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self._at) * self.rate)
        self._at = now

    def reserve(self) -> float:
        """Take a token; the seconds until it is really there (0: now)."""
        self._refill()
        self.tokens -= 1
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate

    def observe(self, remaining: float) -> None:
        """The service said how many requests it has left: never believe in more than that."""
        self._refill()
        self.tokens = min(self.tokens, remaining)

    async def take(self) -> None:
        delay = self.reserve()
        if delay > 0:
            self.waited += delay
            await idle(delay)
