"""`provision gc` for Azure: everything in one subscription (and its tenant) that carries provision's
ownership marks, and the teardown of one environment's share of it.

Found by their marks, never by name (creation time: the tool's own tag, else what the cloud recorded):

- resource groups and workspaces: tags `provision-plan`, `provision-env` (subscription-wide listings); created:
  tag `provision-created`, else `systemData.createdAt`;
- DICOM services: the same tags, in each marked workspace;
- role assignments: description `provision-plan=P provision-env=E` (every assignment in the subscription);
  created: `createdOn`;
- app registrations: Graph tags `provision-plan:P`, `provision-env:E` (every application of the tenant);
  created: tag `provision-created:T`, else `createdDateTime`.

Teardown builds the target's own resources from what was found and runs the engine's destroy on them (each
resource's own `delete`, retries, waiting until gone). What the engine does with them:

- a resource group whose every resource carries the environment's tags, checked right before, is deleted in one
  operation that takes its workspace and DICOM service along (`Delete(container=...)`); one that holds anything
  else is kept (reported), and the environment's workspaces and DICOM services in it are deleted one by one;
- a workspace that holds someone else's DICOM service (seen when it was found) is kept;
- role assignments and apps (an app takes its service principal and consent grant with it) go concurrently.

Nothing without the environment's exact marks is deleted.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from provision.azure import normalise
from provision.azure.clouds import Cloud, sandbox_cloud
from provision.azure.ownership import CREATED_TAG, ENV_TAG, PLAN_TAG, Owner
from provision.core.commands import GcCall
from provision.core.gc import Environment, Found, Inventory, Progress, Retrier, Teardown, parse_created
from provision.core.target import Connection
from provision.errors import ConfigurationError

if TYPE_CHECKING:  # the SDK facades and resources load when a search starts, not when the CLI mounts `gc`
    from provision.azure.arm import ArmApi
    from provision.azure.graph import GraphApi
    from provision.azure.resources.base import Azure
    from provision.core import Resource

__all__ = ["AzureInventory", "gc_places", "open_inventory"]

#: how long one listing may take, retries included
LISTING_LIMIT = 120.0

Body = dict[str, Any]

_GROUP_OF = re.compile(r"/resourceGroups/([^/]+)", re.IGNORECASE)
_DESCRIPTION = re.compile(rf"^{PLAN_TAG}=(\S+) {ENV_TAG}=(\S+)$")


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


class AzureInventory:
    """Implements `provision.core.gc.Inventory` for one subscription and its tenant."""

    cloud = "azure"

    def __init__(self, *, arm: ArmApi, graph: GraphApi, credential: Any = None, transport: Any = None,
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
            return retrier.call(call, what=what, limit=LISTING_LIMIT)

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
                                         group=name, actual=normalise.resource_group(body)))
        marked = [(body, marks) for body in workspaces if (marks := _arm_marks(body.get("tags")))]

        async def services(body: Body) -> list[Body]:
            group, name = _group_of(str(body.get("id"))), str(body.get("name")).rsplit("/", 1)[-1]
            return list(await read(f"listing the DICOM services of {name}",
                                   lambda: self.arm.list_dicom_services(group, name)))

        children = await asyncio.gather(*(services(body) for body, _ in marked))
        for (body, marks), dicoms in zip(marked, children, strict=True):
            group, name = _group_of(str(body.get("id"))), str(body.get("name")).rsplit("/", 1)[-1]
            others = [str(d.get("name")).rsplit("/", 1)[-1] for d in dicoms if _arm_marks(d.get("tags")) != marks]
            found.append(self._found("workspace", name, str(body.get("id")), marks, _created(body),
                                     group=group, name=name, others=others, actual=normalise.workspace(body)))
            for dicom in dicoms:
                dicom_marks = _arm_marks(dicom.get("tags"))
                if dicom_marks:
                    dicom_name = str(dicom.get("name")).rsplit("/", 1)[-1]
                    found.append(self._found("dicom_service", dicom_name, str(dicom.get("id")), dicom_marks,
                                             _created(dicom), group=group, workspace=name, name=dicom_name,
                                             actual=normalise.dicom_service(dicom)))
        for body in assignments:
            props = body.get("properties") or {}
            match = _DESCRIPTION.match(str(props.get("description") or ""))
            if match:
                found.append(self._found(
                    "role_assignment", str(body.get("name")), str(body.get("id")), (match[1], match[2]),
                    parse_created(props.get("createdOn")), scope=str(props.get("scope")), name=str(body.get("name")),
                    actual=normalise.role_assignment(body),
                ))
        for app in apps:
            plan, env, created = _graph_marks(app.get("tags"))
            unique_name = app.get("uniqueName")
            if plan and env and unique_name:  # the tool always writes apps through their uniqueName
                found.append(self._found(
                    "app", str(unique_name), str(app.get("id")), (plan, env),
                    parse_created(created) or parse_created(app.get("createdDateTime")), unique_name=unique_name,
                    actual=normalise.application(app),
                ))
        return found

    # -- teardown -------------------------------------------------------------------------------------------

    def _azure(self, environment: Environment) -> Azure:
        from provision.azure.resources.base import Azure

        return Azure(owner=Owner(environment.key.plan, environment.key.env), location="",
                     subscription_id=self.scope, arm_api=self.arm, graph_api=self.graph)

    async def teardown(self, environment: Environment, retrier: Retrier, progress: Progress) -> Teardown:
        """The engine's destroy of the environment's resources, built from what discovery found."""
        from provision.azure.resources.arm import ResourceGroup
        from provision.core import Delete, Engine, NoOp, Plan, Step

        azure = self._azure(environment)
        found: dict[str, tuple[Found, Resource]] = {}
        for item in environment.resources:
            resource = _resource_of(azure, item)
            found[resource.address] = (item, resource)
        present = set(found)
        for _, resource in found.values():  # only what this environment holds is waited for or covers
            resource.depends_on = tuple(d for d in resource.depends_on if d in present)
            if resource.deleted_with not in present:
                resource.deleted_with = None
        resources = [resource for _, resource in found.values()]
        steps = [Step(resource, Delete(), dict(item.detail["actual"])) for item, resource in found.values()]
        engine = Engine(resources, concurrency=TEARDOWN_CONCURRENCY, on_event=retrier.events(progress))
        plan = Plan(steps)
        done = Teardown()
        covers: dict[str, bool] = {}
        for step in plan.steps:
            item, resource = found[step.resource.address]
            if isinstance(resource, ResourceGroup):
                others = await retrier.call(resource.foreign_contents, what=f"listing resource group {item.name}",
                                            limit=resource.timeouts.read, progress=progress)
                covers[resource.address] = not others
                if others:  # the group stays; what is the environment's in it goes one by one
                    done.kept.append(f"resource group {item.name}: holds resources of others "
                                     f"({', '.join(others[:3])}{' ...' if len(others) > 3 else ''})")
                    step.action = NoOp("holds resources of others")
        await engine.plan_covering(plan, known=covers)
        for step in plan.steps:
            item, _ = found[step.resource.address]
            others = item.detail.get("others") or []
            if item.kind == "workspace" and others and isinstance(step.action, Delete) and not step.action.container:
                done.kept.append(f"workspace {item.name}: holds DICOM services of others ({', '.join(others[:3])})")
                step.action = NoOp("holds DICOM services of others")
        outcome = await engine.destroy(plan)
        done.deleted = [found[step.resource.address][0] for step in outcome.done]
        return done


#: deletes in flight at once within one environment (a handful of resources; ARM's delete budget is shared)
TEARDOWN_CONCURRENCY = 8


def _resource_of(azure: Azure, item: Found) -> Resource:
    """The target's own resource for something discovery found (only ever deleted)."""
    from provision.azure.resources.access import MarkedRoleAssignment
    from provision.azure.resources.arm import DicomService, ResourceGroup, Workspace
    from provision.azure.resources.entra import Application

    detail = item.detail
    if item.kind == "resource_group":
        return ResourceGroup(azure, detail["group"], create=True)
    if item.kind == "workspace":
        return Workspace(azure, detail["name"], resource_group=detail["group"],
                         group_address=ResourceGroup.address_of(detail["group"]))
    if item.kind == "dicom_service":
        return DicomService(azure, detail["name"], resource_group=detail["group"], workspace=detail["workspace"],
                            workspace_address=Workspace.address_of(detail["workspace"]), cors=None)
    if item.kind == "role_assignment":
        return MarkedRoleAssignment(azure, detail["name"], scope=detail["scope"])
    if item.kind == "app":
        return Application(azure, detail["unique_name"], app=None, dicom_api_address=None)
    raise ValueError(f"provision gc cannot delete an Azure {item.kind}")  # pragma: no cover - discover's kinds


def named_cloud(name: str) -> Cloud:
    """The endpoints of a named Azure cloud (public, usgov, china)."""
    from provision.azure.plan import AZURE_CLOUDS

    endpoints = AZURE_CLOUDS.get(name)
    if endpoints is None:
        raise ConfigurationError(f"unknown Azure cloud {name!r}", hint=f"one of {', '.join(AZURE_CLOUDS)}")
    return Cloud(name=name, login=endpoints.login, arm=endpoints.arm, graph=endpoints.graph,
                 dicom_audience=endpoints.dicom_audience)


def gc_places(call: GcCall, *, azure_subscription: str | None, azure_cloud: str) -> list[Inventory]:
    """Azure is searched when a subscription is known: the sandbox's, --azure-subscription or
    AZURE_SUBSCRIPTION_ID (the options are declared in `provision.azure.target`)."""
    sandbox = call.connection.sandbox
    subscription = sandbox.subscription_id if sandbox is not None else (azure_subscription or "").strip() or None
    if subscription is None:
        if call.required:
            raise ConfigurationError("--cloud azure: no Azure subscription to search",
                                     hint="pass --azure-subscription or set AZURE_SUBSCRIPTION_ID")
        return []
    endpoints = sandbox_cloud(sandbox) if sandbox is not None else named_cloud(azure_cloud)
    return [open_inventory(subscription, endpoints, call.connection)]


def open_inventory(subscription: str, endpoints: Cloud, connection: Connection) -> AzureInventory:
    """Connect to one subscription the way `open_session` does: the sandbox's service principal, else the
    default credential chain (environment, workload identity federation, Azure CLI, managed identity)."""
    from provision.azure.arm import ArmApi
    from provision.azure.credentials import (
        SharedTokens,
        default_credential,
        sandbox_credential,
        shared_transport,
        ssl_context,
    )
    from provision.azure.graph import GraphApi

    context: ssl.SSLContext = ssl_context(*connection.trusted())
    transport = shared_transport(context)
    sandbox = connection.sandbox
    inner = sandbox_credential(sandbox, transport) if sandbox is not None else default_credential(endpoints, transport)
    credential = SharedTokens(inner)
    arm = ArmApi(credential=credential, subscription_id=subscription, cloud=endpoints, transport=transport)
    graph = GraphApi(credential=credential, cloud=endpoints, context=context)
    return AzureInventory(arm=arm, graph=graph, credential=credential, transport=transport, cloud_endpoints=endpoints)
