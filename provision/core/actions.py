"""Actions are data: what the engine will do to one resource, and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class FieldChange:
    path: str
    before: Any
    after: Any

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "before": _plain(self.before), "after": _plain(self.after)}


def _plain(value: Any) -> Any:
    """JSON-friendly rendering; "known after apply" becomes a marker string."""
    from provision.core.diff import UNKNOWN

    if value is UNKNOWN:
        return "(known after apply)"
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


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
class Delete(Action):
    kind: ClassVar[str] = "delete"


@dataclass(frozen=True)
class NoOp(Action):
    kind: ClassVar[str] = "no-op"
    reason: str = field(default="up to date")

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "reason": self.reason}
