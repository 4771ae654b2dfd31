"""Polling of ARM long-running operations on the engine's schedule (`provision.core.polling`).

The schedule is geometric in the time already waited (each poll 2% after the previous one), unless the service
sends Retry-After. azure-core waits a fixed 30 s between polls when the service sends no Retry-After (the DICOM
service never does), so a 3 s operation would take 30 s. A temporary failure of one poll (429, 5xx, a dropped
connection) does not abandon the operation: the next poll comes after the server's Retry-After or the usual delay.
"""

from __future__ import annotations

import time
from typing import Any

from azure.core.exceptions import ServiceRequestError, ServiceResponseError
from azure.core.polling.base_polling import BadStatus
from azure.mgmt.core.polling.async_arm_polling import AsyncARMPolling

from provision.azure.errors import TEMPORARY_STATUS, retry_after_seconds
from provision.core.limits import idle
from provision.core.polling import MIN_DELAY, Report, Reporter, ignore, poll_delay


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
        return poll_delay(self.elapsed, retry_after=server)

    async def _delay(self) -> None:
        self._reporter(self.elapsed, str(self.status()).lower())
        await idle(self._extract_delay())  # the engine's slot is lent out between polls

    async def update_status(self) -> None:
        try:
            await super().update_status()
        except BadStatus:
            # the 429/5xx response is now the latest one, so its Retry-After sets the next delay
            if self._pipeline_response.http_response.status_code not in TEMPORARY_STATUS:
                raise
        except (ServiceRequestError, ServiceResponseError):
            pass
