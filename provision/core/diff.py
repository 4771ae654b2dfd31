"""Pure diff between desired and actual state, driven by per-field policies declared as data.

Only the fields a plan declares are compared: a server default the plan does not mention is never drift.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from provision.core.actions import Action, Create, FieldChange, NoOp, Replace, Update
from provision.core.values import UNKNOWN


class Compare(StrEnum):
    EXACT = "exact"
    CASEFOLD = "casefold"
    SET = "set"
    SET_CASEFOLD = "set_casefold"


@dataclass(frozen=True)
class FieldPolicy:
    """How one field is compared and whether changing it forces replacement."""

    compare: Compare = Compare.EXACT
    force_new: bool = False


DEFAULT_POLICY = FieldPolicy()
Schema = Mapping[str, FieldPolicy]


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested mappings into dotted paths; lists and scalars are leaves."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{path}."))
        else:
            flat[path] = value
    return flat


def _policy_for(path: str, schema: Schema) -> FieldPolicy:
    """The policy of the path itself, else of its nearest declared ancestor."""
    parts = path.split(".")
    for end in range(len(parts), 0, -1):
        policy = schema.get(".".join(parts[:end]))
        if policy is not None:
            return policy
    return DEFAULT_POLICY


def _normalise(value: Any, compare: Compare) -> Any:
    casefold = compare in (Compare.CASEFOLD, Compare.SET_CASEFOLD)

    def fold(item: Any) -> Any:
        if casefold and isinstance(item, str):
            return item.casefold()
        if isinstance(item, Mapping):
            return tuple(sorted((k, fold(v)) for k, v in item.items()))
        if isinstance(item, list):
            return tuple(fold(v) for v in item)
        return item

    if compare in (Compare.SET, Compare.SET_CASEFOLD) and isinstance(value, list | tuple | set | frozenset):
        return frozenset(fold(v) for v in value)
    return fold(value)


def _lookup(actual: Mapping[str, Any], path: str) -> Any:
    node: Any = actual
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def values_equal(desired: Any, actual: Any, policy: FieldPolicy = DEFAULT_POLICY) -> bool:
    if desired is UNKNOWN:
        return False
    return bool(_normalise(desired, policy.compare) == _normalise(actual, policy.compare))


def field_changes(
    desired: Mapping[str, Any], actual: Mapping[str, Any] | None, schema: Schema | None = None
) -> list[tuple[FieldChange, FieldPolicy]]:
    """Every declared field whose desired value differs from the actual one."""
    schema = schema or {}
    changes = []
    for path, want in flatten(desired).items():
        have = _lookup(actual, path) if actual is not None else None
        policy = _policy_for(path, schema)
        if actual is None or not values_equal(want, have, policy):
            changes.append((FieldChange(path, None if actual is None else have, want), policy))
    return changes


def diff(desired: Mapping[str, Any], actual: Mapping[str, Any] | None, schema: Schema | None = None) -> Action:
    """The action that turns `actual` into `desired` (None actual means the resource does not exist)."""
    changes = field_changes(desired, actual, schema)
    if actual is None:
        return Create(changes=tuple(change for change, _ in changes))
    if not changes:
        return NoOp("up to date")
    reasons = tuple(f"{change.path} cannot be changed in place" for change, policy in changes if policy.force_new)
    only = tuple(change for change, _ in changes)
    if reasons:
        return Replace(reasons, changes=only)
    return Update(changes=only)
