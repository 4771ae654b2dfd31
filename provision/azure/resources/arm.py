"""ARM resources: resource group, Health Data Services workspace, DICOM service (with its CORS)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from provision.azure import normalise
from provision.azure.ownership import CREATED_TAG, owner_in_tags
from provision.azure.resources.access import stray_assignments
from provision.azure.resources.base import (
    CREATED_NOW,
    Azure,
    AzureResource,
    created_now,
    empty_because_new,
    known,
    merged_tags,
    outputs_of,
)
from provision.core import Compare, Context, FieldPolicy, Lifecycle, Stray, Timeouts, Update
from provision.core.polling import wait_gone
from provision.errors import CloudError

LOCATION = FieldPolicy(compare=Compare.CASEFOLD, force_new=True)


def arm_lifecycle(actual: Mapping[str, Any]) -> Lifecycle | None:
    """ARM's `provisioningState` as the engine's lifecycle: None once Succeeded (or not reported)."""
    state = actual.get("provisioning_state")
    if state is None or state == "Succeeded":
        return None
    if state in normalise.FAILED_STATES:
        # a GET does not say why (the operation's status did, to whoever polled it; the activity log keeps it)
        return Lifecycle.failed(state, f"provisioningState is {state}")
    operation = normalise.RUNNING_STATES.get(state, "update")
    # lastModifiedAt is when the PUT that started a create or update was accepted; a DELETE does not change it
    return Lifecycle.in_progress(state, operation, None if operation == "delete" else actual.get("modified_at"))


class _TaggedArmResource(AzureResource):
    """Owned through the `provision-plan` / `provision-env` tags. A failed provisioning is repaired by a PUT of
    the declared state (what ARM expects: the PUT is create-or-update and provisions again)."""

    repairable = True

    def owned(self, actual: dict[str, Any]) -> bool:
        return self.azure.owner.owns_tags(actual.get("tags"))

    def owner_of(self, actual: dict[str, Any]) -> str | None:
        return owner_in_tags(actual.get("tags"))

    def lifecycle(self, actual: dict[str, Any]) -> Lifecycle | None:
        return arm_lifecycle(actual)

    def _create_tags(self, desired: Mapping[str, Any]) -> dict[str, str]:
        return {**desired["tags"], **self.azure.owner.created_tag()}

    @staticmethod
    def _tags_changed(action: Update) -> bool:
        return any(change.path == "tags" or change.path.startswith("tags.") for change in action.changes)


class ResourceGroup(_TaggedArmResource):
    """The resource group; managed (created, tagged, deleted) only when the plan says `create: true`."""

    kind = "azure.resource_group"
    schema: ClassVar[Mapping[str, FieldPolicy]] = {"location": LOCATION}
    timeouts = Timeouts(create=5 * 60.0, update=5 * 60.0, delete=60 * 60.0)

    def __init__(self, azure: Azure, name: str, *, create: bool) -> None:
        super().__init__(azure, name)
        self.managed = create

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {"location": normalise.location(self.azure.location), "tags": self.azure.arm_tags()}

    def kept_on_destroy(self, actual: dict[str, Any]) -> str | None:
        # provision never deletes a resource group it did not create; an adopted one lacks the created mark
        if CREATED_TAG not in (actual.get("tags") or {}):
            return "kept: adopted by this plan, not created by it"
        return None

    async def read(self, ctx: Context) -> dict[str, Any] | None:
        body = await self.azure.arm.get_resource_group(self.name)
        return None if body is None else normalise.resource_group(body)

    async def create(self, ctx: Context, desired: dict[str, Any]) -> dict[str, Any] | None:
        body = await self.azure.arm.put_resource_group(self.name, desired["location"], self._create_tags(desired))
        return created_now(normalise.resource_group(body))

    async def update(
        self, ctx: Context, desired: dict[str, Any], actual: dict[str, Any], action: Update
    ) -> dict[str, Any] | None:
        body = await self.azure.arm.patch_resource_group_tags(self.name, merged_tags(actual, desired["tags"]))
        return normalise.resource_group(body)

    async def repair(
        self, ctx: Context, desired: dict[str, Any], actual: dict[str, Any], action: Update
    ) -> dict[str, Any] | None:
        body = await self.azure.arm.put_resource_group(self.name, desired["location"],
                                                       merged_tags(actual, desired["tags"]))
        return normalise.resource_group(body)

    async def foreign_contents(self) -> list[str]:
        """What the group holds that is not this plan's (no ownership tags of it), as `name (type)`."""
        contents = await self.azure.arm.resources_in_group(self.name)
        owner = self.azure.owner
        return [f"{item['name']} ({item['type']})" for item in contents if not owner.owns_tags(item.get("tags"))]

    async def deletes_contents(self, ctx: Context, actual: dict[str, Any]) -> bool:
        # one delete takes the workspace and DICOM service with it (one long operation instead of three in a row)
        return not await self.foreign_contents()

    async def delete(self, ctx: Context, actual: dict[str, Any]) -> None:
        # checked right before the delete, whether the plan's resources in it are gone already or go with it
        others = await self.foreign_contents()
        if others:
            more = f" and {len(others) - 5} more" if len(others) > 5 else ""
            raise CloudError(
                f"resource group {self.name} still holds resources this plan did not create: "
                f"{', '.join(others[:5])}{more}",
                hint="delete or move them first; provision never deletes resources it does not own",
            )
        await self.azure.arm.delete_resource_group(self.name, ctx.progress)
        await wait_gone(
            f"resource group {self.name}", lambda: self.azure.arm.get_resource_group(self.name), ctx.progress
        )

    def outputs(self, actual: dict[str, Any]) -> dict[str, Any]:
        return outputs_of(actual, "id", "name", "location", CREATED_NOW)


class Workspace(_TaggedArmResource):
    """A Health Data Services workspace (the DICOM service's parent)."""

    kind = "azure.workspace"
    schema: ClassVar[Mapping[str, FieldPolicy]] = {"location": LOCATION}
    timeouts = Timeouts(create=30 * 60.0, update=30 * 60.0, delete=30 * 60.0)

    def __init__(self, azure: Azure, name: str, *, resource_group: str, group_address: str) -> None:
        super().__init__(azure, name, (group_address,), deleted_with=group_address)
        self.resource_group = resource_group
        self.group_address = group_address

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {"location": normalise.location(self.azure.location), "tags": self.azure.arm_tags()}

    async def read(self, ctx: Context) -> dict[str, Any] | None:
        if empty_because_new(ctx, self.group_address):
            return None
        body = await self.azure.arm.get_workspace(self.resource_group, self.name)
        return None if body is None else normalise.workspace(body)

    async def create(self, ctx: Context, desired: dict[str, Any]) -> dict[str, Any] | None:
        body = await self.azure.arm.put_workspace(
            self.resource_group, self.name, desired["location"], self._create_tags(desired), ctx.progress
        )
        return created_now(normalise.workspace(body))

    async def update(
        self, ctx: Context, desired: dict[str, Any], actual: dict[str, Any], action: Update
    ) -> dict[str, Any] | None:
        body = await self.azure.arm.patch_workspace_tags(
            self.resource_group, self.name, merged_tags(actual, desired["tags"]), ctx.progress
        )
        return normalise.workspace(body)

    async def repair(
        self, ctx: Context, desired: dict[str, Any], actual: dict[str, Any], action: Update
    ) -> dict[str, Any] | None:
        body = await self.azure.arm.put_workspace(
            self.resource_group, self.name, desired["location"], merged_tags(actual, desired["tags"]), ctx.progress
        )
        return normalise.workspace(body)

    async def delete(self, ctx: Context, actual: dict[str, Any]) -> None:
        await self.azure.arm.delete_workspace(self.resource_group, self.name, ctx.progress)
        await wait_gone(
            f"workspace {self.name}",
            lambda: self.azure.arm.get_workspace(self.resource_group, self.name),
            ctx.progress,
        )

    def outputs(self, actual: dict[str, Any]) -> dict[str, Any]:
        return outputs_of(actual, "id", "name", CREATED_NOW)


def declared_cors(cors: Any) -> dict[str, Any] | None:
    """The CORS fields a plan declares (`provision.plan.models.AzureCors`), snake_case; None: not managed."""
    if cors is None:
        return None
    declared = {
        "origins": cors.origins,
        "headers": cors.headers,
        "methods": cors.methods,
        "max_age": cors.max_age,
        "allow_credentials": cors.allow_credentials,
    }
    return {
        key: list(value) if isinstance(value, tuple) else value
        for key, value in declared.items()
        if value is not None
    }


class DicomService(_TaggedArmResource):
    """The DICOM service, with its CORS configuration in the same PUT; updates are GET, modify, full PUT."""

    kind = "azure.dicom_service"
    schema: ClassVar[Mapping[str, FieldPolicy]] = {
        "location": LOCATION,
        "cors.origins": FieldPolicy(compare=Compare.SET_CASEFOLD),
        "cors.headers": FieldPolicy(compare=Compare.SET_CASEFOLD),
        "cors.methods": FieldPolicy(compare=Compare.SET_CASEFOLD),
    }
    # real regions take 5-8 minutes to create one, 2 to delete; Terraform allows 90 / 30
    timeouts = Timeouts(create=90 * 60.0, update=90 * 60.0, delete=30 * 60.0)

    def __init__(
        self,
        azure: Azure,
        name: str,
        *,
        resource_group: str,
        workspace: str,
        workspace_address: str,
        cors: Mapping[str, Any] | None,
    ) -> None:
        super().__init__(azure, name, (workspace_address,), deleted_with=workspace_address)
        self.resource_group = resource_group
        self.workspace = workspace
        self.workspace_address = workspace_address
        self.cors = cors
        #: the addresses of the plan's role assignments at this service (`build_resources` fills it in)
        self.assignments: tuple[str, ...] = ()

    async def strays(self, ctx: Context, actual: dict[str, Any]) -> list[Stray]:
        """The role assignments with this plan's mark at this service that `azure.access` no longer declares."""
        declared = [str(name) for name in (ctx.inputs(a).get("name") for a in self.assignments) if known(name)]
        return await stray_assignments(self.azure, str(actual["id"]), declared, set(self.assignments))

    def desired(self, ctx: Context) -> dict[str, Any]:
        desired: dict[str, Any] = {
            "location": normalise.location(self.azure.location),
            "tags": self.azure.arm_tags(),
        }
        if self.cors:
            desired["cors"] = dict(self.cors)
        return desired

    async def read(self, ctx: Context) -> dict[str, Any] | None:
        if empty_because_new(ctx, self.workspace_address):
            return None
        body = await self.azure.arm.get_dicom(self.resource_group, self.workspace, self.name)
        return None if body is None else normalise.dicom_service(body)

    async def create(self, ctx: Context, desired: dict[str, Any]) -> dict[str, Any] | None:
        body = await self.azure.arm.put_dicom(
            self.resource_group,
            self.workspace,
            self.name,
            location=desired["location"],
            tags=self._create_tags(desired),
            cors=desired.get("cors"),
            report=ctx.progress,
        )
        return created_now(normalise.dicom_service(body))

    async def update(
        self, ctx: Context, desired: dict[str, Any], actual: dict[str, Any], action: Update
    ) -> dict[str, Any] | None:
        cors_changed = any(change.path.startswith("cors.") for change in action.changes)
        body = await self.azure.arm.update_dicom(
            self.resource_group,
            self.workspace,
            self.name,
            tags=merged_tags(actual, desired["tags"]) if self._tags_changed(action) or not action.changes else None,
            cors=desired.get("cors") if cors_changed else None,
            report=ctx.progress,
        )
        return normalise.dicom_service(body)

    async def repair(
        self, ctx: Context, desired: dict[str, Any], actual: dict[str, Any], action: Update
    ) -> dict[str, Any] | None:
        """GET, set every declared field, full PUT: the service provisions again."""
        body = await self.azure.arm.update_dicom(
            self.resource_group,
            self.workspace,
            self.name,
            tags=merged_tags(actual, desired["tags"]),
            cors=desired.get("cors"),
            report=ctx.progress,
        )
        return normalise.dicom_service(body)

    async def delete(self, ctx: Context, actual: dict[str, Any]) -> None:
        await self.azure.arm.delete_dicom(self.resource_group, self.workspace, self.name, ctx.progress)
        await wait_gone(
            f"DICOM service {self.name}",
            lambda: self.azure.arm.get_dicom(self.resource_group, self.workspace, self.name),
            ctx.progress,
        )

    def outputs(self, actual: dict[str, Any]) -> dict[str, Any]:
        return outputs_of(actual, "id", "name", "service_url", CREATED_NOW)
