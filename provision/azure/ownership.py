"""How a plan marks what it created, and how it names what it cannot tag (role assignments).

There is no state file: ARM resources carry ownership tags, Graph objects carry string tags, role assignments
(which take no tags) carry a description and a name derived from what they grant.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

PLAN_TAG = "provision-plan"
ENV_TAG = "provision-env"
CREATED_TAG = "provision-created"

#: namespace of role assignment names; changing it would orphan every existing assignment
ASSIGNMENT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:provision:azure:role-assignment")


@dataclass(frozen=True)
class Owner:
    """One plan in one environment."""

    plan: str
    env: str

    # ARM: tags ------------------------------------------------------------------------------------------------

    def tags(self) -> dict[str, str]:
        """The tags every ARM resource of the plan carries (compared, so drift in them shows)."""
        return {PLAN_TAG: self.plan, ENV_TAG: self.env}

    @staticmethod
    def created_tag() -> dict[str, str]:
        """Written once on create, never compared."""
        return {CREATED_TAG: datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}

    def owns_tags(self, tags: Mapping[str, str] | None) -> bool:
        tags = tags or {}
        return tags.get(PLAN_TAG) == self.plan and tags.get(ENV_TAG) == self.env

    # Graph: string tags ---------------------------------------------------------------------------------------

    def graph_tags(self) -> list[str]:
        return [f"{PLAN_TAG}:{self.plan}", f"{ENV_TAG}:{self.env}"]

    @staticmethod
    def created_graph_tag() -> str:
        """`provision-created:<UTC time>`, written once on create (the reaper reads an environment's age)."""
        return f"{CREATED_TAG}:{Owner.created_tag()[CREATED_TAG]}"

    @staticmethod
    def precise_created_graph_tag() -> str:
        """The created tag to the microsecond: a service principal carries no creation time of Graph's (v1.0), and
        of two made by runs at the same moment the older is kept (`resources.entra.oldest`)."""
        return f"{CREATED_TAG}:{datetime.now(UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')}"

    def owns_graph_tags(self, tags: Iterable[str] | None) -> bool:
        return set(self.graph_tags()) <= set(tags or ())

    def merged_graph_tags(self, tags: Iterable[str] | None) -> list[str]:
        """Existing tags (another tool's, Entra's own) kept, ours added."""
        existing = list(tags or ())
        return existing + [tag for tag in self.graph_tags() if tag not in existing]

    def notes(self) -> str:
        return f"Managed by provision (plan {self.plan}, env {self.env}). Change the plan file, not this object."

    # role assignments: description ----------------------------------------------------------------------------

    def description(self) -> str:
        return f"{PLAN_TAG}={self.plan} {ENV_TAG}={self.env}"

    def owns_description(self, description: str | None) -> bool:
        return description == self.description()


def owner_in_tags(tags: Mapping[str, str] | None) -> str | None:
    """`plan P, env E` from ARM tags, or None when they carry no plan."""
    tags = tags or {}
    plan = tags.get(PLAN_TAG)
    return f"plan {plan}, env {tags.get(ENV_TAG, '?')}" if plan else None


def owner_in_graph_tags(tags: Iterable[str] | None) -> str | None:
    """`plan P, env E` from Graph's `key:value` string tags, or None."""
    values = dict(str(tag).partition(":")[::2] for tag in tags or ())
    return owner_in_tags(values)


def assignment_name(scope: str, principal_id: str, role_definition: str) -> str:
    """Deterministic role assignment name: the same grant always has the same name, so a retry never duplicates.

    `role_definition` is the role definition GUID; ids are compared case-insensitively by ARM.
    """
    key = "|".join(part.strip("/").lower() for part in (scope, principal_id, role_definition))
    return str(uuid.uuid5(ASSIGNMENT_NAMESPACE, key))
