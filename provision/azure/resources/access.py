"""Access to the DICOM service: role definitions looked up by name, role assignments named deterministically."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from provision.azure import normalise
from provision.azure.errors import AzureCloudError, AzureTemporaryError
from provision.azure.ownership import assignment_name
from provision.azure.resources.base import Azure, AzureResource, empty_because_new, known, outputs_of
from provision.core import Compare, Context, FieldPolicy, Stray, TemporaryError, Timeouts, Update
from provision.core.polling import poll_delay, wait_gone


class RoleDefinition(AzureResource):
    """A role by name ("DICOM Data Owner"), resolved with `$filter=roleName eq '...'` at the subscription."""

    kind = "azure.role_definition"
    managed = False

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {}

    async def read(self, ctx: Context) -> dict[str, Any] | None:
        arm = self.azure.arm
        for body in await arm.find_role_definitions(arm.subscription_scope, self.name):
            role = normalise.role_definition(body)
            if (role["role_name"] or "").casefold() == self.name.casefold():
                return role
        return None

    def outputs(self, actual: dict[str, Any]) -> dict[str, Any]:
        return outputs_of(actual, "id", "guid")


_GUID = FieldPolicy(compare=Compare.CASEFOLD, force_new=True)


class _Assignment(AzureResource):
    """What every role assignment of the plan shares: the ownership mark in its description, and its delete."""

    kind = "azure.role_assignment"
    # PrincipalNotFound right after a principal is created is retried with backoff until this limit
    timeouts = Timeouts(read=120.0, create=5 * 60.0, update=5 * 60.0, delete=10 * 60.0)

    async def delete(self, ctx: Context, actual: dict[str, Any]) -> None:
        scope = actual["scope"]
        await self.azure.arm.delete_role_assignment(scope, actual["name"])
        await wait_gone(
            f"role assignment {actual['name']}",
            lambda: self.azure.arm.find_role_assignment(scope, actual["name"]),
            ctx.progress,
        )

    def owned(self, actual: dict[str, Any]) -> bool:
        return self.azure.owner.owns_description(actual.get("description"))

    def outputs(self, actual: dict[str, Any]) -> dict[str, Any]:
        return outputs_of(actual, "id", "name")


class MarkedRoleAssignment(_Assignment):
    """A role assignment found by its ownership mark (`provision gc`): known by scope and name, only deleted."""

    def __init__(self, azure: Azure, name: str, *, scope: str) -> None:
        # deleted on its own even when its scope goes with a resource group: that Azure removes the assignments
        # of a deleted scope is not confirmed
        super().__init__(azure, name)
        self.scope = scope

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {}

    async def read(self, ctx: Context) -> dict[str, Any] | None:
        body = await self.azure.arm.get_role_assignment(self.scope, self.name)
        return None if body is None else normalise.role_assignment(body)


class StrayRoleAssignment(MarkedRoleAssignment):
    """An assignment carrying this plan's mark at a scope of the plan that no `azure.access` entry declares any
    more (its entry was deleted from the plan): `plan` shows it as a delete; `apply` and `destroy` delete it.
    Addressed `principal:role`, as the plan's own are."""

    def __init__(self, azure: Azure, name: str, *, scope: str, shown_as: str) -> None:
        super().__init__(azure, name, scope=scope)
        self.address = self.address_of(shown_as)


async def stray_assignments(azure: Azure, scope: str, declared: Iterable[str], taken: set[str]) -> list[Stray]:
    """The assignments at exactly `scope` that carry this plan's mark (description) and are none of `declared`
    (the names of the plan's own assignments, as read). Assignments without the mark (made in the portal, or by
    another plan or environment) are never listed. `taken`: addresses in use, extended with the strays'."""
    names = {name.lower() for name in declared}
    roles: dict[str, str] = {}
    strays = []
    for body in await azure.arm.list_role_assignments_at(scope):
        actual = normalise.role_assignment(body)
        if (not normalise.same_scope(actual["scope"], scope) or not azure.owner.owns_description(actual["description"])
                or str(actual["name"]).lower() in names):
            continue
        shown = f"{await _principal_name(azure, actual)}:{await _role_name(azure, actual, roles)}"
        if StrayRoleAssignment.address_of(shown) in taken:  # e.g. a user deleted and made again: a new id
            shown = f"{shown}:{actual['name']}"
        stray = StrayRoleAssignment(azure, str(actual["name"]), scope=scope, shown_as=shown)
        taken.add(stray.address)
        strays.append(Stray(stray, actual))
    return strays


async def _principal_name(azure: Azure, assignment: Mapping[str, Any]) -> str:
    """The principal's sign-in or display name, as a person reads it; its object id when the directory has none."""
    principal, kind = str(assignment["principal_id"]), assignment.get("principal_type")
    if azure.graph_api is None:
        return principal
    if kind == "User":
        found = await azure.graph.get_user(principal)
        return str(found.get("userPrincipalName") or principal) if found else principal
    if kind == "Group":
        found = await azure.graph.get_group(principal)
    else:
        found = await azure.graph.get_service_principal(principal)
    return str(found.get("displayName") or principal) if found else principal


async def _role_name(azure: Azure, assignment: Mapping[str, Any], known_roles: dict[str, str]) -> str:
    """The role's name ("DICOM Data Owner"), or its id when it cannot be read; `known_roles` caches by id."""
    role_id = str(assignment["role_definition_id"])
    if role_id not in known_roles:
        found = await azure.arm.get_role_definition(role_id)
        known_roles[role_id] = str(normalise.role_definition(found)["role_name"] or role_id) if found else role_id
    return known_roles[role_id]


class RoleAssignment(_Assignment):
    """One role for one principal at the DICOM service's scope.

    Named `uuid5(scope, principal, role)`, so a retry or a second run finds the same assignment. The same grant
    made by someone else under another name is found by listing the principal's assignments. Assignments take no
    tags: the description records the owning plan.
    """

    schema: ClassVar[Mapping[str, FieldPolicy]] = {
        "principal_id": _GUID,
        "role_definition": _GUID,
        "principal_type": FieldPolicy(force_new=True),
    }

    def __init__(
        self,
        azure: Azure,
        name: str,
        *,
        principal_label: str,
        scope_address: str,
        principal_address: str,
        role_address: str,
    ) -> None:
        super().__init__(azure, name, (scope_address, principal_address, role_address))
        self.principal_label = principal_label
        #: when Azure first said PrincipalNotFound for this assignment (None: it has not)
        self._unknown_since: float | None = None
        self.scope_address = scope_address
        self.principal_address = principal_address
        self.role_address = role_address

    def desired(self, ctx: Context) -> dict[str, Any]:
        principal = ctx.inputs(self.principal_address)
        return {
            "principal_id": principal.get("id"),
            "principal_type": principal.get("principal_type"),
            "role_definition": ctx.inputs(self.role_address).get("guid"),
        }

    def _keys(self, ctx: Context) -> tuple[str, str, str] | None:
        scope = ctx.inputs(self.scope_address).get("id")
        principal = ctx.inputs(self.principal_address).get("id")
        role = ctx.inputs(self.role_address).get("guid")
        return (str(scope), str(principal), str(role)) if known(scope, principal, role) else None

    async def _find(self, scope: str, principal: str, role: str) -> dict[str, Any] | None:
        """The assignment under its deterministic name, else the same grant under any name at exactly `scope`."""
        name = assignment_name(scope, principal, role)
        body = await self.azure.arm.find_role_assignment(scope, name, principal, role)
        return None if body is None else normalise.role_assignment(body)

    async def read(self, ctx: Context) -> dict[str, Any] | None:
        keys = self._keys(ctx)
        if keys is None or empty_because_new(ctx, self.scope_address):
            return None
        return await self._find(*keys)

    async def _put(self, ctx: Context, name: str, desired: Mapping[str, Any]) -> dict[str, Any]:
        scope = ctx.inputs(self.scope_address)["id"]
        role_id = ctx.inputs(self.role_address).get("id") or (
            f"{self.azure.arm.subscription_scope}/providers/Microsoft.Authorization/roleDefinitions/"
            f"{desired['role_definition']}"
        )
        try:
            body = await self.azure.arm.put_role_assignment(
                scope,
                name,
                role_definition_id=role_id,
                principal_id=desired["principal_id"],
                principal_type=desired["principal_type"],
                description=self.azure.owner.description(),
                what=f"granting {self.label}",
            )
        except AzureTemporaryError as error:
            if error.code != "PrincipalNotFound":
                raise
            # replication usually takes seconds: retry in proportion to the time waited (10% of it, >= 1 s: each
            # try is a write) rather than an exponential backoff that would overshoot by as much as it waited
            if self._unknown_since is None:
                self._unknown_since = time.monotonic()
            waited = time.monotonic() - self._unknown_since
            raise TemporaryError(
                f"{self.principal_label} ({desired['principal_id']}) is not known to Azure RBAC yet "
                "(directory replication after the principal was created)",
                retry_after=poll_delay(waited, ratio=1.1, minimum=1.0),
                hint="a principal created moments ago becomes visible within minutes; otherwise check the id",
                routine=True,
            ) from error
        self._unknown_since = None
        return normalise.role_assignment(body)

    async def create(self, ctx: Context, desired: dict[str, Any]) -> dict[str, Any] | None:
        scope = ctx.inputs(self.scope_address)["id"]
        principal, role = desired["principal_id"], desired["role_definition"]
        try:
            return await self._put(ctx, assignment_name(scope, principal, role), desired)
        except AzureCloudError as error:
            if error.code != "RoleAssignmentExists":
                raise
        # the same grant exists (under another name, or a lost answer of ours): success once confirmed
        found = await self._find(scope, principal, role)
        if found is None:
            raise TemporaryError(f"{self.label}: Azure says the assignment exists but does not list it yet")
        return found

    async def update(
        self, ctx: Context, desired: dict[str, Any], actual: dict[str, Any], action: Update
    ) -> dict[str, Any] | None:
        # only adoption gets here (every compared field forces a new assignment): record the owner
        return await self._put(ctx, actual["name"], desired)
