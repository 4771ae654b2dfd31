"""`provision gc`, target-agnostic: what it finds and decides, and how it deletes old environments.

- Found resources carry provision's ownership marks; they are grouped into environments (cloud, scope, plan,
  env), and environments old enough (by their youngest resource) are selected. Pure: no I/O, no SDK.
- A target plugs in through `Inventory` (`Target.gc_places` returns them): `discover()` lists what carries the
  marks, `teardown(env, ...)` deletes one environment through its resources' own `delete` (the engine's destroy
  path with a discovered resource set). `reap` tears several environments down at once, with a bound, one report
  per environment. Every request goes through the engine's retry policy (`with_retry`: temporary errors retried
  with backoff, a server's Retry-After honoured exactly); `Retrier` counts the 429s absorbed, for the report.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from provision.core.events import Event, EventSink, Phase
from provision.core.resource import TemporaryError
from provision.core.retry import with_retry
from provision.errors import ProvisionError

__all__ = [
    "Environment",
    "EnvironmentKey",
    "EnvironmentReport",
    "Found",
    "GcResult",
    "Inventory",
    "Retrier",
    "Selection",
    "Teardown",
    "collect",
    "group",
    "parse_created",
    "reap",
    "select",
]

T = TypeVar("T")

Progress = Callable[[str], None]


def parse_created(value: Any) -> datetime | None:
    """A creation time as the clouds and the tool write it, in UTC; None when absent or unreadable.

    Accepts ISO 8601 (`2025-01-31T23:59:59Z`, with fractions or an offset), the label-safe basic form the tool
    writes on Google labels (`20250131t235959z`), and datetimes (naive ones are taken as UTC).
    """
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and value.strip():
        text = value.strip().upper()
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
    else:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


@dataclass(frozen=True)
class Found:
    """One resource that carries provision's ownership marks (tags, labels, or a role assignment's description)."""

    cloud: str
    #: where it was found: an Azure subscription id, or `projects/P/locations/L`
    scope: str
    #: resource_group, workspace, dicom_service, role_assignment, app, dataset, dicom_store
    kind: str
    #: how people know it (a name)
    name: str
    #: how the cloud knows it (an ARM id, a uniqueName, a full resource name)
    id: str
    plan: str
    env: str
    created: datetime | None = None
    #: what deleting it needs beyond the id (cloud-specific)
    detail: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def key(self) -> EnvironmentKey:
        return EnvironmentKey(self.cloud, self.scope, self.plan, self.env)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "id": self.id,
            "created": self.created.isoformat().replace("+00:00", "Z") if self.created else None,
        }


@dataclass(frozen=True, order=True)
class EnvironmentKey:
    """One environment of one plan in one place: what a reaper lists and deletes as a whole."""

    cloud: str
    scope: str
    plan: str
    env: str

    def __str__(self) -> str:
        return f"{self.cloud} {self.plan}/{self.env}"


#: how kinds are named when counted for people, in teardown order
KIND_LABELS = {
    "role_assignment": "role assignment",
    "app": "app",
    "dicom_service": "DICOM service",
    "workspace": "workspace",
    "resource_group": "resource group",
    "dicom_store": "DICOM store",
    "dataset": "dataset",
}


@dataclass
class Environment:
    key: EnvironmentKey
    resources: list[Found] = field(default_factory=list)

    @property
    def created(self) -> datetime | None:
        """When its youngest resource was created: an environment re-created (in part) after a partial teardown
        counts from then, so a reaper never takes one from under a pull request that just re-applied it."""
        times = [r.created for r in self.resources if r.created is not None]
        return max(times) if times else None

    def age(self, now: datetime) -> float | None:
        created = self.created
        return None if created is None else (now - created).total_seconds()

    def of_kind(self, kind: str) -> list[Found]:
        return [r for r in self.resources if r.kind == kind]

    def summary(self) -> str:
        """`resource group, workspace, DICOM service, 2 role assignments, app`."""
        counts = Counter(r.kind for r in self.resources)
        order = [*KIND_LABELS, *sorted(set(counts) - set(KIND_LABELS))]
        parts = []
        for kind in order:
            n = counts.get(kind, 0)
            if n:
                label = KIND_LABELS.get(kind, kind)
                parts.append(label if n == 1 else f"{n} {label}s")
        return ", ".join(parts)


def group(found: Iterable[Found]) -> list[Environment]:
    """Resources grouped by environment, sorted by cloud, scope, env, plan (resources keep their order)."""
    environments: dict[EnvironmentKey, Environment] = {}
    for item in found:
        environments.setdefault(item.key, Environment(item.key)).resources.append(item)
    return sorted(environments.values(), key=lambda e: (e.key.cloud, e.key.scope, e.key.env, e.key.plan))


@dataclass
class Selection:
    """The environments to delete, and those left alone with the reason (older-than and unknown age)."""

    selected: list[Environment]
    skipped: list[tuple[Environment, str]]


def select(
    environments: Iterable[Environment],
    *,
    now: datetime,
    older_than: float,
    env_prefix: str | None = None,
    plan: str | None = None,
) -> Selection:
    """Environments at least `older_than` seconds old (by their youngest resource's creation time).

    Environments whose env does not start with `env_prefix`, or of another `plan`, are not considered at all (not
    even listed as skipped); an environment of unknown age is never selected.
    """
    selected: list[Environment] = []
    skipped: list[tuple[Environment, str]] = []
    for environment in environments:
        key = environment.key
        if env_prefix and not key.env.startswith(env_prefix):
            continue
        if plan and key.plan != plan:
            continue
        age = environment.age(now)
        if age is None:
            skipped.append((environment, "no creation time on any of its resources"))
        elif age < older_than:
            skipped.append((environment, "younger than the limit"))
        else:
            selected.append(environment)
    return Selection(selected, skipped)


# --- deleting ----------------------------------------------------------------------------------------------


@dataclass
class Retrier:
    """Counts what the retry policy absorbed: discovery calls run through `call`, teardowns report their
    engine's events through `events`."""

    #: 429 answers retried (after their Retry-After)
    throttled: int = 0
    #: other temporary failures retried
    retried: int = 0

    def count(self, error: TemporaryError) -> None:
        if error.throttled:
            self.throttled += 1
        else:
            self.retried += 1

    async def call(self, operation: Callable[[], Awaitable[T]], *, what: str, limit: float,
                   progress: Progress | None = None) -> T:
        def on_retry(error: TemporaryError, delay: float) -> None:
            self.count(error)
            if progress is not None:
                progress(f"{error.message}; retrying in {delay:.1f} s")

        return await with_retry(operation, what=what, limit=limit, on_retry=on_retry)

    def events(self, progress: Progress) -> EventSink:
        """An engine event sink: counts retries, reports starts, waits and retries as progress lines."""

        def sink(event: Event) -> None:
            if event.phase is Phase.RETRY:
                if event.throttled:
                    self.throttled += 1
                else:
                    self.retried += 1
            if event.phase in (Phase.STARTED, Phase.PROGRESS, Phase.RETRY):
                detail = f": {event.message}" if event.message else ""
                progress(f"{event.action or event.phase.value} {event.address}{detail}")

        return sink


@dataclass
class Teardown:
    """What one environment's teardown did: resources deleted, and those left on purpose (with why)."""

    deleted: list[Found] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


class Inventory(Protocol):
    """One place of one cloud (an Azure subscription, a Google project and location)."""

    @property
    def cloud(self) -> str: ...

    @property
    def scope(self) -> str: ...

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
    import asyncio

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


@dataclass
class GcResult:
    """What one `provision gc` run found and did."""

    now: datetime
    selection: Selection
    #: None for a dry run
    reports: list[EnvironmentReport] | None = None
    throttled: int = 0
    retried: int = 0
    seconds: float = 0.0
    #: `{cloud, scope}` of every place searched
    searched: list[dict[str, str]] = field(default_factory=list)

    @property
    def failed(self) -> list[EnvironmentReport]:
        return [r for r in self.reports or [] if r.status == "failed"]


async def collect(
    inventories: Sequence[Inventory],
    *,
    older_than: float,
    env_prefix: str | None,
    plan: str | None,
    delete: bool,
    concurrency: int,
    on_progress: Callable[[EnvironmentKey, str], None] | None = None,
    on_selected: Callable[[GcResult], None] | None = None,
) -> GcResult:
    """Discover, select and (with `delete`) tear down. The whole of `provision gc` without its rendering."""
    import asyncio

    started = time.monotonic()
    retrier = Retrier()
    lists = await asyncio.gather(*(inventory.discover(retrier) for inventory in inventories))
    now = datetime.now(UTC)
    selection = select(group(item for found in lists for item in found), now=now, older_than=older_than,
                       env_prefix=env_prefix, plan=plan)
    result = GcResult(now, selection, searched=[{"cloud": i.cloud, "scope": i.scope} for i in inventories])
    if delete and selection.selected:
        if on_selected is not None:
            on_selected(result)
        places = {(inventory.cloud, inventory.scope): inventory for inventory in inventories}

        def teardown(environment: Environment, progress: Progress) -> Awaitable[Teardown]:
            inventory = places[(environment.key.cloud, environment.key.scope)]
            return inventory.teardown(environment, retrier, progress)

        result.reports = await reap(selection.selected, teardown, concurrency=concurrency, on_progress=on_progress)
    elif delete:
        result.reports = []
    result.throttled, result.retried = retrier.throttled, retrier.retried
    result.seconds = time.monotonic() - started
    return result
