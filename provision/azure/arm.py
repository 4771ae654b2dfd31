"""The Azure Resource Manager calls the resources make, through the async azure-mgmt clients.

Every method returns the JSON body as ARM sent it (a dict the normalisers take), None for a 404 on read, and
raises the tool's errors (`provision.azure.errors`) instead of azure-core's. SDK retries are off: the engine
retries whole operations (re-reading first), which is what makes non-idempotent steps safe.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar, cast

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline.transport import AioHttpTransport
from azure.mgmt.authorization.v2022_04_01 import models as authz_models
from azure.mgmt.authorization.v2022_04_01.aio import AuthorizationManagementClient
from azure.mgmt.healthcareapis import models as hc_models
from azure.mgmt.healthcareapis.aio import HealthcareApisManagementClient
from azure.mgmt.resource.resources.aio import ResourceManagementClient

from provision.azure import normalise
from provision.azure.budget import ArmBudget, arm_buckets
from provision.azure.clouds import Cloud
from provision.azure.coalesce import Coalesced
from provision.azure.errors import AzureTemporaryError, classify, connection_failed, identity_failed
from provision.azure.normalise import SETTLED_STATES
from provision.azure.waiting import ProgressPolling
from provision.core.polling import Report, ignore
from provision.errors import ProvisionError

T = TypeVar("T")
Body = dict[str, Any]


def _json_object(response: Any) -> Body:
    """A response's JSON object body ({} when empty or not an object). Works for azure-core's legacy transport
    responses too, which have `text()` but no `json()`."""
    text = response.text()
    try:
        body = json.loads(text) if text else {}
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _raw(pipeline_response: Any, _deserialized: Any, _headers: Any) -> Body:
    """`cls=` for SDK calls: hand back the body exactly as sent (what the normalisers are written against)."""
    return _json_object(pipeline_response.http_response)


async def _body(call: Awaitable[Any]) -> Body:
    """Await an SDK call made with `cls=_raw` (typed as returning a model, it returns the JSON body)."""
    return cast(Body, await call)


def _error_parts(error: HttpResponseError) -> tuple[str | None, str]:
    odata = getattr(error, "error", None)
    code = getattr(odata, "code", None)
    message = getattr(odata, "message", None)
    if code is None and error.response is not None:
        payload = _json_object(error.response).get("error")
        if isinstance(payload, dict):
            code = payload.get("code")
            message = payload.get("message") or message
    return code, str(message or error.reason or error.message or "")


def translate(error: Exception, what: str) -> ProvisionError:
    """The tool's error for an azure-core exception raised while doing `what`."""
    if isinstance(error, ClientAuthenticationError) and error.status_code in (None, 400, 401):
        # raised by azure-identity when no token could be had, and by ARM for a rejected token
        return identity_failed(what, error.message, error.status_code)
    if isinstance(error, HttpResponseError):
        code, message = _error_parts(error)
        headers = dict(cast(Any, error.response).headers) if error.response is not None else None
        return classify(what, status=error.status_code, code=code, message=message, headers=headers)
    if isinstance(error, ServiceRequestError | ServiceResponseError):
        return connection_failed(what, error)
    raise TypeError(f"not an azure-core error: {error!r}")  # pragma: no cover


@contextmanager
def arm_errors(what: str) -> Iterator[None]:
    try:
        yield
    except (HttpResponseError, ServiceRequestError, ServiceResponseError) as error:
        raise translate(error, what) from error


async def read_or_none(what: str, call: Callable[[], Awaitable[T]]) -> T | None:
    """Run a GET; a 404 (of the resource or of a parent) means it does not exist."""
    with arm_errors(what):
        try:
            return await call()
        except ResourceNotFoundError:
            return None


#: role-assignment reads at one scope, made at the same moment, from which one `atScope()` listing replaces a GET
#: each (below it a listing would carry the inherited assignments for nothing)
LIST_ASSIGNMENTS_FROM = 4


class _Listed:
    """Assignments listed around a scope, indexed for lookups at exactly that scope: by name, and by grant."""

    def __init__(self, listed: list[Body], scope: str) -> None:
        self.by_name: dict[str, Body] = {}
        self.by_grant: dict[tuple[str, str], Body] = {}
        for body in listed:
            found = normalise.role_assignment(body)
            if not normalise.same_scope(found["scope"], scope):
                continue
            self.by_name.setdefault((found["name"] or "").lower(), body)
            self.by_grant.setdefault((found["principal_id"] or "", found["role_definition"] or ""), body)

    def pick(self, name: str, principal_id: str, role_guid: str) -> Body | None:
        """The one named `name`, else (given both) the same grant under any name."""
        body = self.by_name.get(name.lower()) if name else None
        if body is None and principal_id and role_guid:
            body = self.by_grant.get((principal_id, role_guid))
        return body


class ArmApi:
    """ARM calls of one subscription. Clients share the session's transport, token cache and request budget."""

    def __init__(self, *, credential: Any, subscription_id: str, cloud: Cloud, transport: AioHttpTransport) -> None:
        self.subscription_id = subscription_id
        #: ARM's request budget of this subscription, as this client sees it
        self.buckets = arm_buckets()
        options: dict[str, Any] = {
            "base_url": cloud.arm,
            "credential_scopes": [cloud.arm_scope],
            "transport": transport,
            "retry_total": 0,
        }
        self._resources = ResourceManagementClient(credential, subscription_id, **options,
                                                   per_call_policies=[ArmBudget(self.buckets)])
        self._health = HealthcareApisManagementClient(credential, subscription_id, **options,
                                                      per_call_policies=[ArmBudget(self.buckets)])
        self._authz = AuthorizationManagementClient(credential, subscription_id, **options,
                                                    per_call_policies=[ArmBudget(self.buckets)])
        self._assignment_reads: Coalesced[tuple[str, Body | None]] = Coalesced(
            self._read_assignments, lambda found, key: found[0] == key, per_request=10_000)

    async def close(self) -> None:
        for client in (self._resources, self._health, self._authz):
            await client.close()

    @property
    def subscription_scope(self) -> str:
        return f"/subscriptions/{self.subscription_id}"

    # -- resource groups ------------------------------------------------------------------------------------

    async def get_resource_group(self, name: str) -> Body | None:
        return await read_or_none(
            f"reading resource group {name}", lambda: _body(self._resources.resource_groups.get(name, cls=_raw))
        )

    async def put_resource_group(self, name: str, location: str, tags: Mapping[str, str]) -> Body:
        with arm_errors(f"creating resource group {name}"):
            return await _body(
                self._resources.resource_groups.create_or_update(
                    name, {"location": location, "tags": dict(tags)}, cls=_raw
                )
            )

    async def patch_resource_group_tags(self, name: str, tags: Mapping[str, str]) -> Body:
        with arm_errors(f"updating the tags of resource group {name}"):
            return await _body(self._resources.resource_groups.update(name, {"tags": dict(tags)}, cls=_raw))

    async def delete_resource_group(self, name: str, report: Report = ignore) -> None:
        what = f"deleting resource group {name}"
        with arm_errors(what):
            poller = await self._resources.resource_groups.begin_delete(name, polling=ProgressPolling(what, report))
            await poller.result()

    async def resources_in_group(self, name: str) -> list[Body]:
        """`{id, name, type, tags}` of every resource in the group (nested ones such as DICOM services too)."""
        with arm_errors(f"listing the resources of resource group {name}"):
            return [
                {"id": item.id, "name": item.name, "type": item.type, "tags": dict(item.tags or {})}
                async for item in self._resources.resources.list_by_resource_group(name)
            ]

    # -- Health Data Services workspaces --------------------------------------------------------------------

    async def get_workspace(self, group: str, name: str) -> Body | None:
        return await read_or_none(
            f"reading workspace {name}", lambda: _body(self._health.workspaces.get(group, name, cls=_raw))
        )

    async def put_workspace(
        self, group: str, name: str, location: str, tags: Mapping[str, str], report: Report
    ) -> Body:
        what = f"creating workspace {name}"
        with arm_errors(what):
            poller = await self._health.workspaces.begin_create_or_update(
                group,
                name,
                hc_models.Workspace(location=location, tags=dict(tags), properties=hc_models.WorkspaceProperties()),
                polling=ProgressPolling(what, report),
                cls=_raw,
            )
            return await _body(poller.result())

    async def patch_workspace_tags(self, group: str, name: str, tags: Mapping[str, str], report: Report) -> Body:
        what = f"updating the tags of workspace {name}"
        with arm_errors(what):
            poller = await self._health.workspaces.begin_update(
                group,
                name,
                hc_models.WorkspacePatchResource(tags=dict(tags)),
                polling=ProgressPolling(what, report),
                cls=_raw,
            )
            return await _body(poller.result())

    async def delete_workspace(self, group: str, name: str, report: Report) -> None:
        what = f"deleting workspace {name}"
        with arm_errors(what):
            poller = await self._health.workspaces.begin_delete(group, name, polling=ProgressPolling(what, report))
            await poller.result()

    # -- DICOM services -------------------------------------------------------------------------------------

    async def get_dicom(self, group: str, workspace: str, name: str) -> Body | None:
        return await read_or_none(
            f"reading DICOM service {name}",
            lambda: _body(self._health.dicom_services.get(group, workspace, name, cls=_raw)),
        )

    async def put_dicom(
        self,
        group: str,
        workspace: str,
        name: str,
        *,
        location: str,
        tags: Mapping[str, str],
        cors: Mapping[str, Any] | None,
        report: Report,
    ) -> Body:
        """Create the service with its CORS configuration in the same PUT."""
        service = hc_models.DicomService(location=location, tags=dict(tags))
        if cors is not None:
            service.cors_configuration = _cors_model(cors)
        return await self._put_dicom(f"creating DICOM service {name}", group, workspace, name, service, report)

    async def update_dicom(
        self,
        group: str,
        workspace: str,
        name: str,
        *,
        tags: Mapping[str, str] | None,
        cors: Mapping[str, Any] | None,
        report: Report,
    ) -> Body:
        """GET, modify, full PUT: the PATCH body only carries tags and identity, so CORS needs a PUT, and the PUT
        must carry identity, storage, encryption, data partitions ... back unchanged (the model keeps them)."""
        what = f"updating DICOM service {name}"
        with arm_errors(what):
            service = await self._health.dicom_services.get(group, workspace, name)
        if service.provisioning_state not in SETTLED_STATES:
            # a PUT now would meet 409: wait (as a temporary error) for the other operation to finish
            raise AzureTemporaryError(
                f"DICOM service {name} is {service.provisioning_state}: another operation is running",
                status=None, code="OperationInProgress",
            )
        if tags is not None:
            service.tags = dict(tags)
        if cors is not None:
            # only the declared fields change; the others stay as the service has them
            current = service.cors_configuration or hc_models.CorsConfiguration()
            for key, value in cors.items():
                setattr(current, key, list(value) if isinstance(value, list | tuple) else value)
            service.cors_configuration = current
        return await self._put_dicom(what, group, workspace, name, service, report)

    async def _put_dicom(
        self, what: str, group: str, workspace: str, name: str, service: Any, report: Report
    ) -> Body:
        with arm_errors(what):
            poller = await self._health.dicom_services.begin_create_or_update(
                group, workspace, name, service, polling=ProgressPolling(what, report), cls=_raw
            )
            return await _body(poller.result())

    async def delete_dicom(self, group: str, workspace: str, name: str, report: Report) -> None:
        what = f"deleting DICOM service {name}"
        with arm_errors(what):
            poller = await self._health.dicom_services.begin_delete(
                group, name, workspace, polling=ProgressPolling(what, report)
            )
            await poller.result()

    # -- role definitions and assignments -------------------------------------------------------------------

    async def find_role_definitions(self, scope: str, role_name: str) -> list[Body]:
        """Role definitions named `role_name` (ARM matches case-insensitively) visible at `scope`."""
        quoted = role_name.replace("'", "''")
        with arm_errors(f"looking up role {role_name!r}"):
            return [
                cast(Body, item.serialize(keep_readonly=True))
                async for item in self._authz.role_definitions.list(scope, filter=f"roleName eq '{quoted}'")
            ]

    async def get_role_assignment(self, scope: str, name: str) -> Body | None:
        return await read_or_none(
            f"reading role assignment {name}", lambda: _body(self._authz.role_assignments.get(scope, name, cls=_raw))
        )

    async def find_role_assignment(self, scope: str, name: str, principal_id: str = "",
                                   role_guid: str = "") -> Body | None:
        """The assignment at exactly `scope` named `name`, else (given a principal and a role) the same grant under
        any name. Reads made at the same moment share requests: one listing per scope asked for often enough."""
        key = "\n".join((scope, name, principal_id.lower(), role_guid.lower()))
        [(_, found)] = await self._assignment_reads.get(key)
        return found

    async def _read_assignments(self, keys: list[str]) -> list[tuple[str, Body | None]]:
        by_scope: dict[str, list[list[str]]] = {}
        for key in keys:
            by_scope.setdefault(key.split("\n", 1)[0].strip("/").lower(), []).append(key.split("\n"))

        async def at(lookups: list[list[str]]) -> list[tuple[str, Body | None]]:
            scope = lookups[0][0]
            if len(lookups) >= LIST_ASSIGNMENTS_FROM:
                listed = _Listed(await self.list_role_assignments_at(scope), scope)
                return [("\n".join(lookup), listed.pick(*lookup[1:])) for lookup in lookups]
            found = await asyncio.gather(*(self._find_one(*lookup) for lookup in lookups))
            return [("\n".join(lookup), body) for lookup, body in zip(lookups, found, strict=True)]

        return [found for scope in await asyncio.gather(*(at(group) for group in by_scope.values()))
                for found in scope]

    async def _find_one(self, scope: str, name: str, principal_id: str, role_guid: str) -> Body | None:
        body = await self.get_role_assignment(scope, name)
        if body is not None or not (principal_id and role_guid):
            return body
        return _Listed(await self.list_role_assignments(scope, principal_id), scope).pick("", principal_id, role_guid)

    async def list_role_assignments(self, scope: str, principal_id: str) -> list[Body]:
        """Assignments of one principal at, above or below `scope` (callers match the scope exactly)."""
        with arm_errors(f"listing role assignments of {principal_id}"):
            return [
                cast(Body, item.serialize(keep_readonly=True))
                async for item in self._authz.role_assignments.list_for_scope(
                    scope, filter=f"principalId eq '{principal_id}'"
                )
            ]

    async def list_role_assignments_at(self, scope: str) -> list[Body]:
        """Every assignment at or above `scope` (`atScope()`; callers match the scope exactly)."""
        with arm_errors(f"listing role assignments at {scope}"):
            return [
                cast(Body, item.serialize(keep_readonly=True))
                async for item in self._authz.role_assignments.list_for_scope(scope, filter="atScope()")
            ]

    async def get_role_definition(self, role_definition_id: str) -> Body | None:
        """A role definition by its full id (`/subscriptions/.../roleDefinitions/{guid}`)."""
        return await read_or_none(
            f"reading role definition {role_definition_id}",
            lambda: _body(self._authz.role_definitions.get_by_id(role_definition_id, cls=_raw)),
        )

    async def put_role_assignment(
        self,
        scope: str,
        name: str,
        *,
        role_definition_id: str,
        principal_id: str,
        principal_type: str,
        description: str,
        what: str,
    ) -> Body:
        parameters = authz_models.RoleAssignmentCreateParameters(
            role_definition_id=role_definition_id,
            principal_id=principal_id,
            principal_type=principal_type,
            description=description,
        )
        with arm_errors(what):
            return await _body(self._authz.role_assignments.create(scope, name, parameters, cls=_raw))

    async def delete_role_assignment(self, scope: str, name: str) -> None:
        with arm_errors(f"deleting role assignment {name}"):
            try:
                await self._authz.role_assignments.delete(scope, name)
            except ResourceNotFoundError:
                return

    # -- subscription-wide listings (provision gc) -----------------------------------------------------------

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


def _serialized(item: Any) -> Body:
    """An SDK model as the wire JSON (older msrest-style models, and the newer mapping-style ones)."""
    if hasattr(item, "serialize"):
        return cast(Body, item.serialize(keep_readonly=True))
    return cast(Body, item.as_dict())


def _cors_model(cors: Mapping[str, Any]) -> Any:
    """The plan's declared CORS fields (snake_case, as the normaliser names them) as the SDK model."""
    return hc_models.CorsConfiguration(
        origins=_list(cors.get("origins")),
        headers=_list(cors.get("headers")),
        methods=_list(cors.get("methods")),
        max_age=cors.get("max_age"),
        allow_credentials=cors.get("allow_credentials"),
    )


def _list(value: Any) -> list[str] | None:
    return None if value is None else list(value)


__all__ = ["ArmApi", "arm_errors", "read_or_none", "translate"]
