"""Retry with backoff for temporary errors, within one time limit per operation."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from provision.core.resource import TemporaryError
from provision.errors import ProvisionError

T = TypeVar("T")


class OperationTimeout(ProvisionError):
    """An operation did not finish within its time limit."""


def backoff_delay(attempt: int, *, base: float = 0.5, cap: float = 30.0) -> float:
    """Exponential backoff with full jitter in its upper half (attempt counts from 0)."""
    ceiling = min(cap, base * (2**attempt))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


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
    started = time.monotonic()
    attempt = 0
    while True:
        remaining = limit - (time.monotonic() - started)
        if remaining <= 0:
            raise OperationTimeout(f"{what}: no success within {limit:.0f} s")
        try:
            return await asyncio.wait_for(operation(), timeout=remaining)
        except TimeoutError:
            raise OperationTimeout(f"{what}: no success within {limit:.0f} s") from None
        except TemporaryError as error:
            delay = error.retry_after if error.retry_after is not None else backoff_delay(attempt, base=base, cap=cap)
            elapsed = time.monotonic() - started
            if elapsed + delay > limit:
                raise OperationTimeout(
                    f"{what}: still failing after {elapsed:.0f} s: {error.message}", hint=error.hint
                ) from None
            if on_retry is not None:
                on_retry(error, delay)
            await asyncio.sleep(delay)
            attempt += 1
