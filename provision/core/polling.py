"""Waiting on a service: one poll schedule for long-running operations, throttled progress messages, and
"until it is really gone" after a delete.

The schedule (`poll_delay`) polls every 0.2 s during the first second, then each poll comes 2% of the time
already waited after the previous one (a geometric schedule, ratio 1.02), at most 30 s apart. So an operation
lasting anywhere from 1 s to 30 min is noticed at most 2% of its duration after it ended (plus the round trip
of the poll that notices), and a 6-minute operation costs 303 polls: the fewest any schedule with that bound
can send is log(360)/log(1.02) = 297 (each gap may be at most 2% of the time before it), and 303 polls in 6 min
are 0.84 reads/s, 3.4% of what ARM refills a subscription's read bucket with (25/s). A server's Retry-After
always wins. `poll_times` and `lateness` simulate the schedule (the benchmark prints them; docs/performance.md).

The engine uses it while it waits for an operation it found running; targets use it for their own operations
(Azure's `ProgressPolling`, deletes).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from provision.core.limits import idle

#: each poll at most this factor of the time waited after the previous one (from PRECISE_FROM on)
RATIO = 1.02
#: seconds into a wait from which the schedule holds its bound; before it polls come every MIN_DELAY
PRECISE_FROM = 1.0
MIN_DELAY = 0.2
MAX_DELAY = 30.0
#: how often a long wait is reported (seconds)
REPORT_EVERY = 5.0
#: polls the schedule sends for a 6-minute operation (the stated budget; tests hold the schedule to it)
POLLS_FOR_6_MINUTES = 303

Report = Callable[[str], None]


def poll_delay(
    elapsed: float,
    *,
    retry_after: float | None = None,
    ratio: float = RATIO,
    minimum: float = 0.0,
    maximum: float = MAX_DELAY,
) -> float:
    """Seconds to wait before the next poll after `elapsed` seconds of waiting: the server's `retry_after` when
    it sent one, else the schedule (every MIN_DELAY until PRECISE_FROM, then `ratio - 1` of the time waited),
    never less than `minimum` nor more than `maximum`."""
    if retry_after is not None:
        return retry_after
    delay = (ratio - 1) * elapsed
    left = PRECISE_FROM - elapsed
    if left > 1e-9:  # the first second: a poll every MIN_DELAY, the last one landing on PRECISE_FROM
        delay = max(delay, min(MIN_DELAY, left))
    return min(maximum, max(minimum, delay))


def poll_times(duration: float, **schedule: Any) -> list[float]:
    """When (seconds into the wait) the schedule polls an operation lasting `duration`, up to the poll that
    finds it ended (poll round trips not counted). `schedule`: `poll_delay`'s keywords."""
    times: list[float] = []
    elapsed = 0.0
    while not times or times[-1] < duration:
        elapsed += poll_delay(elapsed, **schedule)
        times.append(elapsed)
    return times


def lateness(duration: float, **schedule: Any) -> float:
    """How late the schedule notices an operation lasting `duration`, as a share of `duration`."""
    return (poll_times(duration, **schedule)[-1] - duration) / duration


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
        await idle(poll_delay(elapsed))
