"""Waiting on a service: one poll schedule for long-running operations, throttled progress messages, and
"until it is really gone" after a delete.

The schedule is proportional to the time already waited (`poll_delay`: about 10% of the elapsed time, at least
0.2 s, at most 30 s), so the end of an operation is noticed within ~10% of its duration and a long wait costs
few requests. The engine uses it while it waits for an operation it found running; targets use it for their
own operations (Azure's `ProgressPolling`, deletes).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

MIN_DELAY = 0.2
MAX_DELAY = 30.0
FRACTION = 0.1
#: how often a long wait is reported (seconds)
REPORT_EVERY = 5.0

Report = Callable[[str], None]


def poll_delay(
    elapsed: float, *, fraction: float = FRACTION, minimum: float = MIN_DELAY, maximum: float = MAX_DELAY
) -> float:
    """Seconds to wait before the next poll after `elapsed` seconds of waiting."""
    return min(maximum, max(minimum, fraction * elapsed))


def ignore(_message: str) -> None:
    pass


class Reporter:
    """Turns a stream of "still waiting" moments into a message at most every REPORT_EVERY seconds."""

    def __init__(self, what: str, report: Report) -> None:
        self.what = what
        self._report = report
        self._last: float | None = None

    def __call__(self, elapsed: float, state: str) -> None:
        if self._last is None or elapsed - self._last >= REPORT_EVERY:
            self._last = elapsed
            self._report(f"{self.what}: {state}, {elapsed:.0f} s elapsed")


async def wait_gone(what: str, read: Callable[[], Awaitable[Any]], report: Report = ignore) -> None:
    """After a delete: read until the object is really gone (None), as clouds are eventually consistent.

    The caller's operation time limit (the engine's) bounds the wait.
    """
    started = time.monotonic()
    reporter = Reporter(what, report)
    while await read() is not None:
        elapsed = time.monotonic() - started
        reporter(elapsed, "still visible")
        await asyncio.sleep(poll_delay(elapsed))
