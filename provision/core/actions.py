"""Actions are data: what the engine will do to one resource, and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from provision.core.values import plain


@dataclass(frozen=True)
class FieldChange:
    path: str
    before: Any
    after: Any

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "before": plain(self.before), "after": plain(self.after)}


@dataclass(frozen=True)
class Action:
    kind: ClassVar[str] = "action"
    changes: tuple[FieldChange, ...] = field(default=(), kw_only=True)

    @property
    def changes_anything(self) -> bool:
        return self.kind != "no-op"

    def as_dict(self) -> dict[str, Any]:
        return {"action": self.kind, "changes": [c.as_dict() for c in self.changes]}


@dataclass(frozen=True)
class Create(Action):
    kind: ClassVar[str] = "create"


@dataclass(frozen=True)
class Update(Action):
    kind: ClassVar[str] = "update"


@dataclass(frozen=True)
class Replace(Action):
    kind: ClassVar[str] = "replace"
    reasons: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "reasons": list(self.reasons)}


@dataclass(frozen=True)
class Repair(Action):
    """The object exists but its last operation failed (the service says so): send the declared state again in
    place, which makes the service try again (an ARM PUT). `changes` are the declared fields that differ."""

    kind: ClassVar[str] = "repair"
    #: what the service says about the failure
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "error": self.error}


@dataclass(frozen=True)
class Wait(Action):
    """An operation is still running on the object (an interrupted run's, someone else's): apply waits until it
    ends, reads the object again and carries on from what it finds. Counts as a change: the live state is not
    the plan's yet."""

    kind: ClassVar[str] = "wait"
    #: the service's word for what it is doing, lower case ("creating", "updating", "deleting")
    state: str = ""
    #: when the running operation started (seconds since the epoch), when the service says
    since: float | None = None
    #: what the engine expects to do once it has ended ("create", "update", "no-op", "delete", "")
    then: str = ""

    def as_dict(self) -> dict[str, Any]:
        since = None if self.since is None else datetime.fromtimestamp(self.since, UTC).isoformat().replace(
            "+00:00", "Z")
        return {**super().as_dict(), "state": self.state, "since": since, "then": self.then}


@dataclass(frozen=True)
class Delete(Action):
    kind: ClassVar[str] = "delete"
    #: the container whose own delete takes this resource along (nothing is sent for it), if any
    container: str | None = None
    #: why it goes, when it is not obvious (e.g. an object the plan no longer declares)
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), **({"with": self.container} if self.container else {}),
                **({"reason": self.reason} if self.reason else {})}


@dataclass(frozen=True)
class NoOp(Action):
    kind: ClassVar[str] = "no-op"
    reason: str = field(default="up to date")

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "reason": self.reason}
