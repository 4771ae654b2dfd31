"""Saved plans (`plan --save FILE`, then `apply FILE`): what was read and decided, so that apply does exactly
that or refuses.

A saved plan records the plan file (its path and a digest of its text), what the run was asked (target,
environment, destroy, --adopt, --target), and for every step the action with its field changes and the object
as it was read. `apply FILE` loads the same plan file, reads everything again and compares: a changed plan
file, another action, or an object that changed since (any field of its normalised read) refuses the apply
before any write. What is recorded is the normalised reads the plan already shows: no token or secret.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provision.core.diff import flatten
from provision.core.values import plain
from provision.errors import ConfigurationError

if TYPE_CHECKING:
    from provision.core.engine import Plan

FORMAT = "provision saved plan"
VERSION = 1


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _json(value: Any) -> Any:
    """The value as it reads back from JSON (tuples become lists, unknowns their marker)."""
    return json.loads(json.dumps(plain(value), default=str))


@dataclass(frozen=True)
class SavedPlan:
    target: str
    plan_file: str
    plan_digest: str
    env: str
    destroy: bool = False
    adopt: bool = False
    targets: tuple[str, ...] = ()
    #: address -> {"action": ..., "actual": ...}
    steps: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    created: str = ""

    def document(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "version": VERSION, "created": self.created, "target": self.target,
            "plan_file": self.plan_file, "plan_sha256": self.plan_digest, "env": self.env,
            "destroy": self.destroy, "adopt": self.adopt, "targets": list(self.targets),
            "steps": [{"address": address, **step} for address, step in self.steps.items()],
        }


def record(plan: Plan, *, target: str, plan_file: Path, plan_text: str, env: str, destroy: bool = False,
           adopt: bool = False, targets: Sequence[str] = ()) -> SavedPlan:
    """What to save of a plan just computed."""
    steps = {
        step.resource.address: {"action": _json(step.action.as_dict()), "actual": _json(step.actual)}
        for step in plan.steps
    }
    return SavedPlan(target, str(plan_file), digest(plan_text), env, destroy, adopt, tuple(targets), steps,
                     datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))


def is_saved_plan(path: Path) -> bool:
    """Whether `path` holds a saved plan (JSON) rather than a plan file (YAML)."""
    try:
        with path.open("rb") as handle:
            start = handle.read(512).lstrip()
    except OSError:
        return False
    return start.startswith(b"{") and FORMAT.encode() in start


def load(path: Path) -> SavedPlan:
    """Read a saved plan; a ConfigurationError naming the file when it is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConfigurationError(f"{path}: not a readable saved plan ({error})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ConfigurationError(f"{path}: not a saved plan", hint="save one with `plan PLAN --save FILE`")
    if data.get("version") != VERSION:
        raise ConfigurationError(f"{path}: saved plan version {data.get('version')!r}; this provision reads {VERSION}",
                                 hint="save the plan again with this version of provision")
    try:
        steps = {str(step["address"]): {"action": step["action"], "actual": step["actual"]} for step in data["steps"]}
        return SavedPlan(str(data["target"]), str(data["plan_file"]), str(data["plan_sha256"]), str(data["env"]),
                         bool(data["destroy"]), bool(data["adopt"]), tuple(data["targets"]), steps,
                         str(data.get("created", "")))
    except (KeyError, TypeError) as error:
        raise ConfigurationError(f"{path}: a saved plan without {error}") from None


def differences(saved: SavedPlan, fresh: Plan) -> list[str]:
    """Why `fresh` (the plan computed now) is not the saved one: one line per difference, [] when identical."""
    now = {step.resource.address: step for step in fresh.steps}
    lines = []
    for address in sorted(set(saved.steps) - set(now)):
        lines.append(f"{address}: in the saved plan, not in the plan any more")
    for address in sorted(set(now) - set(saved.steps)):
        lines.append(f"{address}: new since the plan was saved ({now[address].action.kind})")
    for address in sorted(set(saved.steps) & set(now)):
        before, step = saved.steps[address], now[address]
        action = _json(step.action.as_dict())
        if action["action"] != before["action"]["action"]:
            lines.append(f"{address}: was to {before['action']['action']}, now would {action['action']}")
            continue
        changed = _changed_fields(before["actual"], _json(step.actual))
        if changed:
            lines.append(f"{address}: changed since the plan was saved ({', '.join(changed[:5])}"
                         f"{' ...' if len(changed) > 5 else ''})")
        elif action != before["action"]:
            lines.append(f"{address}: the planned changes differ")
    return lines


def _changed_fields(before: Any, after: Any) -> list[str]:
    if before is None or after is None:
        return [] if before == after else ["it " + ("appeared" if before is None else "disappeared")]
    old, new = flatten(before), flatten(after)
    return sorted(path for path in set(old) | set(new) if old.get(path) != new.get(path))


def write(path: Path, saved: SavedPlan) -> None:
    """Write the saved plan, readable by its owner only (it records the live objects as read)."""
    from provision.core.files import write_atomically

    write_atomically(path, json.dumps(saved.document(), indent=2) + "\n")


__all__ = ["SavedPlan", "differences", "is_saved_plan", "load", "record", "write"]
