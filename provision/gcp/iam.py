"""Pure IAM policy logic: merge a plan's role grants into a policy without disturbing anything else.

An IAM `Policy` is `{version, etag, bindings: [{role, members, condition?}], auditConfigs?}` and setIamPolicy
replaces it whole, so every write is a read-modify-write of what was just read. The rules here:

- A grant touches only the **unconditional** binding of its role. Bindings with an IAM Condition, bindings of
  other roles and members the plan does not name are copied through unchanged (Terraform's `_iam_member`).
- `authoritative` makes the unconditional binding of that role exactly the granted members (`_iam_binding`);
  conditional bindings of the same role are still left alone.
- `absent` members are removed from the unconditional binding of the role; a binding left empty is dropped.
- Members compare case-insensitively (`user:Alice@x.org` is `user:alice@x.org`); a member already present
  keeps its spelling.
- The merged policy keeps the etag it was read with and is written as version 3 (required as soon as any
  binding has a condition, and harmless otherwise).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from provision.errors import ConfigurationError, PlanError
from provision.plan import validators as v

POLICY_VERSION = 3


@dataclass(frozen=True)
class RoleGrant:
    """What one policy must say about one role (unconditional binding only)."""

    role: str
    present: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()
    authoritative: bool = False

    def mentioned(self) -> set[str]:
        return {_key(m) for m in (*self.present, *self.absent)}


@dataclass(frozen=True)
class MergeResult:
    policy: dict[str, Any]
    changed: bool
    #: role -> (members added, members removed), only for roles whose binding changed
    changes: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = field(default_factory=dict)


def _key(member: str) -> str:
    return member.casefold()


def combine_grants(entries: Iterable[tuple[str, Sequence[str], str, str]]) -> list[RoleGrant]:
    """Fold `(role, members, mode, state)` entries for one policy into one grant per role.

    Raises PlanError when a member is both granted and revoked, or when a role is declared both additive and
    authoritative in contradicting ways (authoritative wins: its member list is the union of present members).
    """
    roles: dict[str, dict[str, Any]] = {}
    for role, members, mode, state in entries:
        slot = roles.setdefault(role, {"present": [], "absent": [], "authoritative": False})
        target = slot["present"] if state == "present" else slot["absent"]
        for member in members:
            if _key(member) not in {_key(m) for m in target}:
                target.append(member)
        slot["authoritative"] = slot["authoritative"] or mode == "authoritative"
    grants = []
    for role, slot in roles.items():
        clash = {_key(m) for m in slot["present"]} & {_key(m) for m in slot["absent"]}
        if clash:
            raise PlanError(f"{role}: {', '.join(sorted(clash))} both granted and revoked")
        if slot["authoritative"] and slot["absent"]:
            # under an authoritative role everyone not listed goes anyway; `absent` adds nothing
            slot["absent"] = []
        grants.append(RoleGrant(role, tuple(slot["present"]), tuple(slot["absent"]), slot["authoritative"]))
    return grants


#: the DICOM roles Cloud Healthcare defines; a `roles/healthcare.dicom*` name outside this set is a typo
KNOWN_DICOM_ROLES = frozenset(
    {
        "roles/healthcare.dicomViewer",
        "roles/healthcare.dicomEditor",
        "roles/healthcare.dicomStoreAdmin",
        "roles/healthcare.dicomStoreViewer",
    }
)


def check_role(role: str) -> str:
    """Accept `viewer`, `editor`, a full role name or a custom role; return the full name.

    Predefined roles must be Cloud Healthcare roles (`roles/healthcare.*`): other predefined roles are not
    granted on datasets or stores. Names under `roles/healthcare.dicom` must be one of the known DICOM roles.
    """
    try:
        full = v.check_gcp_role(role)
    except ValueError as error:
        raise ConfigurationError(str(error)) from None
    if full.startswith("roles/") and not full.startswith("roles/healthcare."):
        raise ConfigurationError(
            f"{role!r} is not a Cloud Healthcare role",
            hint="grant roles/healthcare.* (e.g. viewer = roles/healthcare.dicomViewer) or a custom role",
        )
    if full.startswith("roles/healthcare.dicom") and full not in KNOWN_DICOM_ROLES:
        raise ConfigurationError(
            f"{role!r} is not a Cloud Healthcare DICOM role", hint="known: " + ", ".join(sorted(KNOWN_DICOM_ROLES))
        )
    return full


def check_member(member: str) -> str:
    """Accept an IAM member string (`user:`, `group:`, `serviceAccount:`, `domain:`) or raise ConfigurationError."""
    try:
        return v.check_gcp_member(member)
    except ValueError as error:
        raise ConfigurationError(str(error)) from None


def validate_grants(grants: Iterable[RoleGrant]) -> None:
    """Refuse malformed roles or members before anything is sent (ConfigurationError names the value)."""
    for grant in grants:
        if check_role(grant.role) != grant.role:
            raise ConfigurationError(f"{grant.role!r}: use the full role name")
        for member in (*grant.present, *grant.absent):
            check_member(member)


def _unconditional(bindings: list[dict[str, Any]], role: str) -> list[dict[str, Any]]:
    return [b for b in bindings if b.get("role") == role and not b.get("condition")]


def merge_policy(policy: Mapping[str, Any] | None, grants: Iterable[RoleGrant]) -> MergeResult:
    """The policy with `grants` applied, and whether that changes any binding. Pure; `policy` is not modified."""
    new: dict[str, Any] = copy.deepcopy(dict(policy or {}))
    bindings: list[dict[str, Any]] = new.get("bindings") or []
    changes: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
    for grant in grants:
        existing = _unconditional(bindings, grant.role)
        current: list[str] = []
        for binding in existing:
            for member in binding.get("members") or []:
                if _key(member) not in {_key(m) for m in current}:
                    current.append(member)
        present = {_key(m) for m in grant.present}
        absent = {_key(m) for m in grant.absent}
        if grant.authoritative:
            kept = [m for m in current if _key(m) in present]
        else:
            kept = [m for m in current if _key(m) not in absent]
        have = {_key(m) for m in kept}
        wanted = kept + [m for m in grant.present if _key(m) not in have]
        before, after = {_key(m) for m in current}, {_key(m) for m in wanted}
        if before == after and len(existing) <= 1:
            continue
        added = tuple(m for m in wanted if _key(m) not in before)
        removed = tuple(m for m in current if _key(m) not in after)
        if added or removed:
            changes[grant.role] = (added, removed)
        position = bindings.index(existing[0]) if existing else len(bindings)
        bindings = [b for b in bindings if not any(b is e for e in existing)]
        if wanted:
            bindings.insert(min(position, len(bindings)), {"role": grant.role, "members": wanted})
    new["bindings"] = bindings
    if not new["bindings"]:
        del new["bindings"]
    changed = _canonical(new.get("bindings")) != _canonical((policy or {}).get("bindings"))
    if changed:
        new["version"] = POLICY_VERSION
    return MergeResult(new, changed, changes)


def _canonical(bindings: Any) -> list[str]:
    """Bindings as a sorted list of comparable strings (order of bindings and members does not matter)."""
    out = []
    for binding in bindings or []:
        members = sorted(_key(m) for m in binding.get("members") or [])
        if not members:
            continue
        condition = json.dumps(binding.get("condition") or None, sort_keys=True)
        out.append(json.dumps([binding.get("role"), condition, members]))
    return sorted(out)


def binding_view(policy: Mapping[str, Any] | None, grants: Iterable[RoleGrant]) -> dict[str, list[str]]:
    """What the plan can see of a policy, role by role, in the shape `desired_view` produces.

    Authoritative roles show every member of the unconditional binding; additive roles show only the members
    the plan mentions (present or absent): foreign members are not the plan's business and are never drift.
    """
    bindings = list((policy or {}).get("bindings") or [])
    view: dict[str, list[str]] = {}
    for grant in grants:
        members = [m for b in _unconditional(bindings, grant.role) for m in b.get("members") or []]
        if not grant.authoritative:
            mentioned = grant.mentioned()
            members = [m for m in members if _key(m) in mentioned]
        view[grant.role] = sorted({_key(m): m for m in members}.values(), key=_key)
    return view


def desired_view(grants: Iterable[RoleGrant]) -> dict[str, list[str]]:
    """Role -> the members the plan wants in the unconditional binding (among those `binding_view` shows)."""
    return {grant.role: sorted(grant.present, key=_key) for grant in grants}


def nest_roles(view: Mapping[str, Any]) -> dict[str, Any]:
    """Nest role names at their dots so that the engine's dotted field paths read `roles/healthcare.dicomViewer`.

    The diff addresses fields by dotted paths and looks them up by splitting at dots; nesting both the desired
    and the actual view the same way keeps a role name readable and addressable as one path.
    """
    nested: dict[str, Any] = {}
    for role, value in view.items():
        node = nested
        *parents, leaf = role.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigurationError(f"role {role!r} clashes with another role name")
            node = child
        if leaf in node:
            raise ConfigurationError(f"role {role!r} clashes with another role name")
        node[leaf] = value
    return nested


__all__ = [
    "KNOWN_DICOM_ROLES",
    "POLICY_VERSION",
    "MergeResult",
    "RoleGrant",
    "binding_view",
    "check_member",
    "check_role",
    "combine_grants",
    "desired_view",
    "merge_policy",
    "nest_roles",
    "validate_grants",
]
