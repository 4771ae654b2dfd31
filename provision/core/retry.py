"""Retry with backoff for temporary errors, within one time limit per operation."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from provision.core.limits import idle
from provision.core.resource import TemporaryError
from provision.errors import ProvisionError

T = TypeVar("T")


class OperationTimeout(ProvisionError):
    """An operation did not finish within its time limit."""


def backoff_delay(attempt: int, *, base: float = 0.5, cap: float = 30.0) -> float:
    """Exponential backoff with full jitter in its upper half (attempt counts from 0)."""
    ceiling = min(cap, base * (2**attempt))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


class Attempts:
    """The tries of one operation within its time limit: how long to wait after each temporary error, and when
    to give up (with a message that says how often and for how long it was tried)."""

    def __init__(self, what: str, limit: float, *, base: float = 0.5, cap: float = 30.0) -> None:
        self.what = what
        self.limit = limit
        self.base = base
        self.cap = cap
        self.started = time.monotonic()
        self.retries = 0
        #: the temporary error that made the last retry necessary
        self.last: TemporaryError | None = None

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def remaining(self) -> float:
        """Seconds left; raises OperationTimeout when there are none."""
        left = self.limit - self.elapsed
        if left <= 0:
            raise self.timed_out()
        return left

    def timed_out(self) -> OperationTimeout:
        if self.last is not None:  # the try cut short by the limit failed like the one before, most likely
            return self._gave_up(self.last)
        return OperationTimeout(f"{self.what}: no success within {self.limit:.0f} s")

    def _gave_up(self, error: TemporaryError) -> OperationTimeout:
        detail = error.message.removeprefix(f"{self.what}: ")
        return OperationTimeout(
            f"{self.what}: {detail}; retried {self.retries} times over {self.elapsed:.0f} s", hint=error.hint
        )

    def delay_after(self, error: TemporaryError) -> float:
        """The wait before the next try (the server's Retry-After, else exponential backoff); raises
        OperationTimeout, carrying the error's message and hint, when that wait would pass the limit."""
        delay = error.retry_after if error.retry_after is not None else backoff_delay(
            self.retries, base=self.base, cap=self.cap)
        if self.elapsed + delay > self.limit:
            raise self._gave_up(error)
        self.retries += 1
        self.last = error
        return delay


async def with_retry(
    operation: Callable[[], Awaitable[T]],
    *,
    what: str,
    limit: float,
    on_retry: Callable[[TemporaryError, float], None] | None = None,
    base: float = 0.5,
    cap: float = 30.0,
) -> T:
    """Run `operation` until it succeeds, a permanent error occurs, or `limit` seconds pass.

    A `TemporaryError` with `retry_after` waits exactly that long (the server knows best);
    otherwise the wait grows exponentially. `on_retry(error, delay)` hears of every retry before its wait.
    """
    attempts = Attempts(what, limit, base=base, cap=cap)
    while True:
        remaining = attempts.remaining()
        try:
            return await asyncio.wait_for(operation(), timeout=remaining)
        except TimeoutError:
            raise attempts.timed_out() from None
        except TemporaryError as error:
            delay = attempts.delay_after(error)
            if on_retry is not None:
                on_retry(error, delay)
            await idle(delay)
