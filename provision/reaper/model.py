"""What a reaper finds and decides, as plain data: resources carrying provision's ownership marks, grouped into
environments (cloud, scope, plan, env), and which environments are old enough to go. Pure: no I/O, no SDK."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "Environment",
    "EnvironmentKey",
    "Found",
    "Selection",
    "group",
    "parse_created",
    "select",
]


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
