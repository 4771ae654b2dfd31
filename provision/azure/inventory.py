"""Everything in one Azure subscription (and its tenant) that carries provision's ownership marks, and the
teardown of one environment's share of it. The reaper's (`provision gc`) view of Azure.

Found by their marks, never by name (creation time: the tool's own tag, else what the cloud recorded):

- resource groups and workspaces: tags `provision-plan`, `provision-env` (subscription-wide listings); created:
  tag `provision-created`, else `systemData.createdAt`;
- DICOM services: the same tags, in each marked workspace;
- role assignments: description `provision-plan=P provision-env=E` (every assignment in the subscription);
  created: `createdOn`;
- app registrations: Graph tags `provision-plan:P`, `provision-env:E` (every application of the tenant);
  created: tag `provision-created:T`, else `createdDateTime`.

Teardown of one environment, each step retried on temporary errors (429 after its Retry-After) and, except for
role assignments (whose delete is synchronous), waited on until the object is really gone. All at once:

1. its role assignments, and its apps (an app takes its service principal and consent grant with it);
2. each of its resource groups whose every resource carries the environment's tags, checked right before the
   delete: one delete takes the group, its workspace and DICOM service (one long-running operation instead of
   three in a row). A group holding anything else is not deleted: the environment's DICOM services and
   workspaces in it are deleted one by one and the group stays (reported as kept);
3. its workspaces elsewhere (a group the plan does not create): their DICOM services, then the workspace
   unless it holds someone else's service.

Nothing without the environment's exact marks is deleted. Clients, credentials, error classes, LRO polling and
"wait until gone" are the Azure target's own (`ArmApi`, `GraphApi`, `credentials`, `waiting`).
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, cast

from provision.azure.arm import ArmApi, arm_errors
from provision.azure.clouds import Cloud, sandbox_cloud
from provision.azure.graph import GraphApi, graph_errors
from provision.azure.ownership import CREATED_TAG, ENV_TAG, PLAN_TAG, Owner
from provision.azure.resources.access import RoleAssignment
from provision.azure.resources.arm import DicomService, ResourceGroup, Workspace
from provision.azure.resources.entra import Application
from provision.azure.session import _trusted
from provision.azure.waiting import wait_gone
from provision.core.target import TargetOptions
from provision.errors import ConfigurationError
from provision.reaper.model import Environment, Found, parse_created
from provision.reaper.run import Progress, Retrier, Teardown

__all__ = ["AzureInventory", "InventoryArm", "InventoryGraph", "open_inventory"]

Body = dict[str, Any]

_GROUP_OF = re.compile(r"/resourceGroups/([^/]+)", re.IGNORECASE)
_DESCRIPTION = re.compile(rf"^{PLAN_TAG}=(\S+) {ENV_TAG}=(\S+)$")
#: what a Graph application listing asks for (one page holds up to 999)
_APP_FIELDS = ["id", "appId", "uniqueName", "displayName", "tags", "createdDateTime"]


def _serialized(item: Any) -> Body:
    """An SDK model as the wire JSON (older msrest-style models, and the newer mapping-style ones)."""
    if hasattr(item, "serialize"):
        return cast(Body, item.serialize(keep_readonly=True))
    return cast(Body, item.as_dict())


class InventoryArm(ArmApi):
    """The target's ARM facade plus the subscription-wide listings a reaper needs."""

    async def list_resource_groups(self) -> list[Body]:
        with arm_errors("listing the subscription's resource groups"):
            return [_serialized(item) async for item in self._resources.resource_groups.list()]

    async def list_workspaces(self) -> list[Body]:
        with arm_errors("listing the subscription's Health Data Services workspaces"):
            return [_serialized(item) async for item in self._health.workspaces.list_by_subscription()]

    async def list_dicom_services(self, group: str, workspace: str) -> list[Body]:
        with arm_errors(f"listing the DICOM services of workspace {workspace}"):
            return [
                _serialized(item) async for item in self._health.dicom_services.list_by_workspace(group, workspace)
            ]

    async def list_all_role_assignments(self) -> list[Body]:
        """Every role assignment in the subscription (at its scope and below)."""
        with arm_errors("listing the subscription's role assignments"):
            return [_serialized(item) async for item in self._authz.role_assignments.list_for_subscription()]

    async def group_contents(self, name: str) -> list[Body]:
        """`{id, name, type, tags}` of every resource in the group (nested ones such as DICOM services too)."""
        with arm_errors(f"listing the resources of resource group {name}"):
            return [
                {"id": item.id, "name": item.name, "type": item.type, "tags": dict(item.tags or {})}
                async for item in self._resources.resources.list_by_resource_group(name)
            ]


class InventoryGraph(GraphApi):
    """The target's Graph facade plus a listing of the tenant's applications."""

    async def list_applications(self) -> list[Body]:
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.applications.applications_request_builder import ApplicationsRequestBuilder

        query = ApplicationsRequestBuilder.ApplicationsRequestBuilderGetQueryParameters(select=_APP_FIELDS, top=999)
        info = self._client.applications.to_get_request_information(RequestConfiguration(query_parameters=query))
        apps: list[Body] = []
        pages = 0
        while True:
            with graph_errors("listing the tenant's applications"):
                page = await self._send(info) or {}
            apps.extend(page.get("value") or [])
            following = page.get("@odata.nextLink")
            pages += 1
            if not following or pages > 1000:
                return apps
            info = self._client.applications.with_url(str(following)).to_get_request_information()


def _arm_marks(tags: Mapping[str, Any] | None) -> tuple[str, str] | None:
    tags = tags or {}
    plan, env = tags.get(PLAN_TAG), tags.get(ENV_TAG)
    return (str(plan), str(env)) if plan and env else None


def _graph_marks(tags: Any) -> tuple[str | None, str | None, str | None]:
    """(plan, env, created) from Graph's `key:value` string tags."""
    values: dict[str, str] = {}
    for tag in tags or ():
        key, _, value = str(tag).partition(":")
        values.setdefault(key, value)
    return values.get(PLAN_TAG), values.get(ENV_TAG), values.get(CREATED_TAG)


def _created(body: Mapping[str, Any]) -> Any:
    """The tool's own tag first, else what ARM recorded."""
    tags = body.get("tags") or {}
    return parse_created(tags.get(CREATED_TAG)) or parse_created((body.get("systemData") or {}).get("createdAt"))


def _group_of(resource_id: str) -> str:
    match = _GROUP_OF.search(resource_id)
    return match.group(1) if match else ""


def _owner_of(item: Found) -> Owner:
    return Owner(item.plan, item.env)


class AzureInventory:
    """Implements `provision.reaper.run.Inventory` for one subscription and its tenant."""

    cloud = "azure"

    def __init__(self, *, arm: InventoryArm, graph: InventoryGraph, credential: Any = None, transport: Any = None,
                 cloud_endpoints: Cloud | None = None) -> None:
        self.arm = arm
        self.graph = graph
        self.scope = arm.subscription_id
        self._credential = credential
        self._transport = transport
        self.endpoints = cloud_endpoints

    async def aclose(self) -> None:
        await self.arm.close()
        await self.graph.close()
        if self._credential is not None:
            await self._credential.close()
        if self._transport is not None and self._transport.session is not None:
            await self._transport.session.close()

    # -- discovery ------------------------------------------------------------------------------------------

    def _found(self, kind: str, label: str, resource_id: str, marks: tuple[str, str], created: Any,
               **detail: Any) -> Found:
        return Found(self.cloud, self.scope, kind, label, resource_id, marks[0], marks[1], created, detail)

    async def discover(self, retrier: Retrier) -> list[Found]:
        def read(what: str, call: Callable[[], Awaitable[Any]]) -> Awaitable[Any]:
            return retrier.call(call, what=what, limit=ResourceGroup.timeouts.read)

        groups, workspaces, assignments, apps = await asyncio.gather(
            read("listing resource groups", self.arm.list_resource_groups),
            read("listing workspaces", self.arm.list_workspaces),
            read("listing role assignments", self.arm.list_all_role_assignments),
            read("listing applications", self.graph.list_applications),
        )
        found: list[Found] = []
        for body in groups:
            marks = _arm_marks(body.get("tags"))
            if marks:
                name = str(body.get("name"))
                found.append(self._found("resource_group", name, str(body.get("id")), marks, _created(body),
                                         group=name))
        marked = [(body, marks) for body in workspaces if (marks := _arm_marks(body.get("tags")))]

        async def services(body: Body) -> list[Body]:
            group, name = _group_of(str(body.get("id"))), str(body.get("name")).rsplit("/", 1)[-1]
            return list(await read(f"listing the DICOM services of {name}",
                                   lambda: self.arm.list_dicom_services(group, name)))

        children = await asyncio.gather(*(services(body) for body, _ in marked))
        for (body, marks), dicoms in zip(marked, children, strict=True):
            group, name = _group_of(str(body.get("id"))), str(body.get("name")).rsplit("/", 1)[-1]
            found.append(self._found("workspace", name, str(body.get("id")), marks, _created(body),
                                     group=group, name=name))
            for dicom in dicoms:
                dicom_marks = _arm_marks(dicom.get("tags"))
                if dicom_marks:
                    dicom_name = str(dicom.get("name")).rsplit("/", 1)[-1]
                    found.append(self._found("dicom_service", dicom_name, str(dicom.get("id")), dicom_marks,
                                             _created(dicom), group=group, workspace=name, name=dicom_name))
        for body in assignments:
            props = body.get("properties") or {}
            match = _DESCRIPTION.match(str(props.get("description") or ""))
            if match:
                found.append(self._found(
                    "role_assignment", str(body.get("name")), str(body.get("id")), (match[1], match[2]),
                    parse_created(props.get("createdOn")), scope=str(props.get("scope")), name=str(body.get("name")),
                ))
        for app in apps:
            plan, env, created = _graph_marks(app.get("tags"))
            unique_name = app.get("uniqueName")
            if plan and env and unique_name:  # the tool always writes apps through their uniqueName
                found.append(self._found(
                    "app", str(unique_name), str(app.get("id")), (plan, env),
                    parse_created(created) or parse_created(app.get("createdDateTime")), unique_name=unique_name,
                ))
        return found

    # -- teardown -------------------------------------------------------------------------------------------

    async def teardown(self, environment: Environment, retrier: Retrier, progress: Progress) -> Teardown:
        done = Teardown()
        arm, graph = self.arm, self.graph

        async def delete(item: Found, remove: Callable[[], Awaitable[Any]],
                         gone: Callable[[], Awaitable[Any]] | None, limit: float) -> None:
            what = f"deleting {item.kind.replace('_', ' ')} {item.name}"
            progress(what)
            await retrier.call(remove, what=what, limit=limit, progress=progress)
            if gone is not None:
                await retrier.call(lambda: wait_gone(what, gone, progress), what=f"waiting until {item.name} is gone",
                                   limit=limit, progress=progress)
            done.deleted.append(item)

        def assignment(item: Found) -> Awaitable[None]:
            # RBAC deletes are synchronous: 200 with the deleted assignment, or 204 when there was none; not read
            # again, which would cost a read per assignment from the subscription's throttling budget
            scope, name = item.detail["scope"], item.detail["name"]
            return delete(item, lambda: arm.delete_role_assignment(scope, name), None, RoleAssignment.timeouts.delete)

        def app(item: Found) -> Awaitable[None]:
            unique = item.detail["unique_name"]
            return delete(item, lambda: graph.delete_application(unique), lambda: graph.get_application(unique),
                          Application.timeouts.delete)

        def dicom(item: Found) -> Awaitable[None]:
            group, workspace, name = item.detail["group"], item.detail["workspace"], item.detail["name"]
            return delete(item, lambda: arm.delete_dicom(group, workspace, name, progress),
                          lambda: arm.get_dicom(group, workspace, name), DicomService.timeouts.delete)

        def workspace(item: Found) -> Awaitable[None]:
            group, name = item.detail["group"], item.detail["name"]
            return delete(item, lambda: arm.delete_workspace(group, name, progress),
                          lambda: arm.get_workspace(group, name), Workspace.timeouts.delete)

        dicoms, workspaces = environment.of_kind("dicom_service"), environment.of_kind("workspace")
        handled: set[str] = set()
        #: set once every resource group's delete has been accepted (or found not possible): the long operations
        #: are under way, so the quick deletes need not queue in front of them
        long_ones_started = asyncio.Event()
        groups = environment.of_kind("resource_group")
        pending = {item.id for item in groups}

        def started(item: Found) -> None:
            pending.discard(item.id)
            if not pending:
                long_ones_started.set()

        if not pending:
            long_ones_started.set()

        async def by_group(group_item: Found) -> None:
            name = group_item.detail["group"]
            owner = _owner_of(group_item)
            contents = await retrier.call(lambda: arm.group_contents(name), what=f"listing resource group {name}",
                                          limit=ResourceGroup.timeouts.read, progress=progress)
            foreign = [c for c in contents if not owner.owns_tags(c.get("tags"))]
            inside = [i for i in (*dicoms, *workspaces) if i.detail["group"].lower() == name.lower()]
            handled.update(i.id.lower() for i in inside)
            if not foreign:
                def polling(message: str) -> None:  # the poller reports once the delete has been accepted
                    started(group_item)
                    progress(message)

                try:
                    await delete(group_item, lambda: arm.delete_resource_group(name, polling),
                                 lambda: arm.get_resource_group(name), ResourceGroup.timeouts.delete)
                finally:
                    started(group_item)
                done.deleted.extend(inside)  # gone with their group
                return
            started(group_item)
            names = ", ".join(f"{c['name']} ({c['type']})" for c in foreign[:3])
            done.kept.append(f"resource group {name}: holds resources of others ({names}"
                             f"{' ...' if len(foreign) > 3 else ''})")
            await by_workspace([i for i in inside if i.kind == "workspace"],
                               [i for i in inside if i.kind == "dicom_service"])

        async def remaining_services(group: str, name: str) -> list[Body]:
            return await retrier.call(lambda: arm.list_dicom_services(group, name), what=f"listing workspace {name}",
                                      limit=Workspace.timeouts.read, progress=progress)

        async def by_workspace(spaces: list[Found], services: list[Found]) -> None:
            await asyncio.gather(*(dicom(item) for item in services))
            for space in spaces:
                rest = await remaining_services(space.detail["group"], space.detail["name"])
                if rest:
                    done.kept.append(f"workspace {space.name}: holds DICOM services of others "
                                     f"({', '.join(str(r.get('name')) for r in rest[:3])})")
                    continue
                await workspace(space)

        async def containers() -> None:
            try:
                await asyncio.gather(*(by_group(item) for item in groups))
            finally:
                long_ones_started.set()
            await by_workspace([w for w in workspaces if w.id.lower() not in handled],
                               [d for d in dicoms if d.id.lower() not in handled])

        async def quick_ones() -> None:
            # an assignment's delete is answered at once, long before its scope's delete completes (and after
            # it, a 404 is success too); apps are another API altogether
            await long_ones_started.wait()
            await asyncio.gather(*(assignment(item) for item in environment.of_kind("role_assignment")),
                                 *(app(item) for item in environment.of_kind("app")))

        await asyncio.gather(containers(), quick_ones())
        return done


def named_cloud(name: str) -> Cloud:
    """The endpoints of a named Azure cloud (public, usgov, china)."""
    from provision.plan.models import AZURE_CLOUDS

    endpoints = AZURE_CLOUDS.get(name)
    if endpoints is None:
        raise ConfigurationError(f"unknown Azure cloud {name!r}", hint=f"one of {', '.join(AZURE_CLOUDS)}")
    return Cloud(name=name, login=endpoints.login, arm=endpoints.arm, graph=endpoints.graph,
                 dicom_audience=endpoints.dicom_audience)


async def open_inventory(
    *, subscription_id: str | None, sandbox: Any = None, ca_bundle: Path | None = None, cloud: str = "public"
) -> AzureInventory:
    """Connect to one subscription (the sandbox's when `sandbox` is given) the way `open_session` does: the
    default credential chain (environment, workload identity federation, Azure CLI, managed identity)."""
    from provision.azure.credentials import (
        SharedTokens,
        default_credential,
        sandbox_credential,
        shared_transport,
        ssl_context,
    )

    endpoints = sandbox_cloud(sandbox) if sandbox is not None else named_cloud(cloud)
    subscription = sandbox.subscription_id if sandbox is not None else subscription_id
    if not subscription:
        raise ConfigurationError(
            "no Azure subscription to search", hint="pass --azure-subscription or set AZURE_SUBSCRIPTION_ID"
        )
    context: ssl.SSLContext = ssl_context(*_trusted(TargetOptions(sandbox=sandbox, ca_bundle=ca_bundle)))
    transport = shared_transport(context)
    inner = sandbox_credential(sandbox, transport) if sandbox is not None else default_credential(endpoints, transport)
    credential = SharedTokens(inner)
    arm = InventoryArm(credential=credential, subscription_id=subscription, cloud=endpoints, transport=transport)
    graph = InventoryGraph(credential=credential, cloud=endpoints, context=context)
    return AzureInventory(arm=arm, graph=graph, credential=credential, transport=transport, cloud_endpoints=endpoints)
