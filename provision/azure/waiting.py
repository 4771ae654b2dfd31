"""Waiting on Azure: polling of ARM long-running operations, and "until it is really gone" after a delete.

Both follow one schedule proportional to the time already waited (`poll_delay`: about 10% of the elapsed
time, at least 0.2 s, at most 30 s), unless the service sends Retry-After. azure-core waits a fixed 30 s between
polls when the service sends no Retry-After (the DICOM service never does), so a 3 s operation would take 30 s.
A temporary failure of one poll (429, 5xx, a dropped connection) does not abandon the operation: the next poll
comes after the server's Retry-After or the usual delay.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from azure.core.exceptions import ServiceRequestError, ServiceResponseError
from azure.core.polling.base_polling import BadStatus
from azure.mgmt.core.polling.async_arm_polling import AsyncARMPolling

from provision.azure.errors import TEMPORARY_STATUS, retry_after_seconds

MIN_DELAY = 0.2
MAX_DELAY = 30.0
FRACTION = 0.1
#: how often a long wait is reported (seconds)
REPORT_EVERY = 5.0

Report = Callable[[str], None]


def poll_delay(
    elapsed: float, *, fraction: float = FRACTION, minimum: float = MIN_DELAY, maximum: float = MAX_DELAY
) -> float:
    """Seconds to wait before the next poll after `elapsed` seconds of waiting: about 10% of the time already
    waited, so completion is noticed within ~10% of its duration and a long wait costs few requests."""
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
    """After a delete: read until the object is really gone (None), as ARM and Graph are eventually consistent.

    The caller's operation time limit (the engine's) bounds the wait.
    """
    started = time.monotonic()
    reporter = Reporter(what, report)
    while await read() is not None:
        elapsed = time.monotonic() - started
        reporter(elapsed, "still visible")
        await asyncio.sleep(poll_delay(elapsed))


class ProgressPolling(AsyncARMPolling):
    """`polling=` for `begin_*` calls: proportional delay, tolerant polls, progress messages with elapsed time."""

    def __init__(self, what: str, report: Report = ignore, **kwargs: Any) -> None:
        super().__init__(timeout=MIN_DELAY, **kwargs)
        self._reporter = Reporter(what, report)
        self._started = time.monotonic()

    def initialize(self, client: Any, initial_response: Any, deserialization_callback: Any) -> None:
        super().initialize(client, initial_response, deserialization_callback)
        self._started = time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def _extract_delay(self) -> float:
        response = getattr(self._pipeline_response, "http_response", None)
        server = retry_after_seconds(dict(response.headers) if response is not None else None)
        return server if server is not None else poll_delay(self.elapsed)

    async def _delay(self) -> None:
        self._reporter(self.elapsed, str(self.status()).lower())
        await self._sleep(self._extract_delay())

    async def update_status(self) -> None:
        try:
            await super().update_status()
        except BadStatus:
            # the 429/5xx response is now the latest one, so its Retry-After sets the next delay
            if self._pipeline_response.http_response.status_code not in TEMPORARY_STATUS:
                raise
        except (ServiceRequestError, ServiceResponseError):
            pass
