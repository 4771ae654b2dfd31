"""Deleting environments: each one as a whole, several at once (bounded), one report per environment.

A cloud plugs in through `Inventory`: `discover()` lists what carries provision's marks, `teardown(env, ...)`
deletes one environment. Every request a teardown makes goes through `Retrier.call`, the engine's `with_retry`
(temporary errors retried with backoff, a server's Retry-After honoured exactly) that also counts the 429s it
absorbed, for the report.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from provision.core.resource import TemporaryError
from provision.core.retry import with_retry
from provision.errors import ProvisionError
from provision.reaper.model import Environment, EnvironmentKey, Found

__all__ = ["EnvironmentReport", "Inventory", "Retrier", "Teardown", "is_throttling", "reap"]

T = TypeVar("T")

Progress = Callable[[str], None]


def is_throttling(error: BaseException) -> bool:
    """A 429: Azure's errors carry `status`; Google's say `429` in their message."""
    status = getattr(error, "status", None)
    if status is not None:
        return bool(status == 429)
    return re.search(r"\b429\b", getattr(error, "message", str(error))) is not None


@dataclass
class Retrier:
    """Runs operations with the engine's retry policy and counts what it absorbed."""

    #: 429 answers retried (after their Retry-After)
    throttled: int = 0
    #: other temporary failures retried
    retried: int = 0

    async def call(self, operation: Callable[[], Awaitable[T]], *, what: str, limit: float,
                   progress: Progress | None = None) -> T:
        async def attempt() -> T:
            try:
                return await operation()
            except TemporaryError as error:
                if is_throttling(error):
                    self.throttled += 1
                else:
                    self.retried += 1
                raise

        def on_retry(message: str, _delay: float) -> None:
            if progress is not None:
                progress(message)

        return await with_retry(attempt, what=what, limit=limit, on_retry=on_retry)


@dataclass
class Teardown:
    """What one environment's teardown did: resources deleted, and those left on purpose (with why)."""

    deleted: list[Found] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


class Inventory(Protocol):
    """One place of one cloud (an Azure subscription, a Google project and location)."""

    cloud: str
    scope: str

    async def discover(self, retrier: Retrier) -> list[Found]:
        """Everything there that carries provision's ownership marks."""

    async def teardown(self, environment: Environment, retrier: Retrier, progress: Progress) -> Teardown:
        """Delete one environment's resources (only those), waiting until they are gone."""

    async def aclose(self) -> None:
        """Close clients."""


@dataclass
class EnvironmentReport:
    key: EnvironmentKey
    #: deleted | failed
    status: str
    deleted: int = 0
    kept: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "deleted": self.deleted, "kept": self.kept, "error": self.error,
                "seconds": round(self.seconds, 3)}


Teardowner = Callable[[Environment, Progress], Awaitable[Teardown]]


async def reap(
    environments: Sequence[Environment],
    teardown: Teardowner,
    *,
    concurrency: int,
    on_progress: Callable[[EnvironmentKey, str], None] | None = None,
) -> list[EnvironmentReport]:
    """Tear down `environments`, at most `concurrency` at once; one failure never stops the others.

    Reports come back in the order of `environments`. A `ProvisionError` fails its environment only; anything
    else is a bug and propagates.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    gate = asyncio.Semaphore(concurrency)

    async def one(environment: Environment) -> EnvironmentReport:
        def progress(message: str) -> None:
            if on_progress is not None:
                on_progress(environment.key, message)

        async with gate:
            started = time.monotonic()
            try:
                done = await teardown(environment, progress)
            except ProvisionError as error:
                progress(f"failed: {error.message}")
                return EnvironmentReport(environment.key, "failed", error=error.message,
                                         seconds=time.monotonic() - started)
            seconds = time.monotonic() - started
            progress(f"deleted {len(done.deleted)} resource(s) in {seconds:.1f} s")
            return EnvironmentReport(environment.key, "deleted", len(done.deleted), done.kept, seconds=seconds)

    return list(await asyncio.gather(*(one(environment) for environment in environments)))


def by_key(inventories: Iterable[Inventory]) -> dict[tuple[str, str], Inventory]:
    """Inventories by (cloud, scope), to find the one an environment belongs to."""
    return {(inventory.cloud, inventory.scope): inventory for inventory in inventories}
