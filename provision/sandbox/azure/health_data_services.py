"""Azure Health Data Services, the Microsoft.HealthcareApis ARM provider at 2024-03-31: workspaces and
workspaces/dicomservices, as observed on the wire (Google's Cloud Healthcare API is `gcp/healthcare.py`).

- Workspace PUT: 201 (or 200 on update) synchronously, `provisioningState: Succeeded`, no async header.
- DICOM PUT: 201 `Creating` (200 `Updating` for a PUT on an existing service), `serviceUrl: ""` until the
  first success, `Azure-AsyncOperation` only (no Location, no Retry-After); the operation reports Running
  until `lro_seconds` have passed, then Succeeded.
- DICOM PATCH carries only `tags`/`identity` and answers 200 synchronously (anything else is ignored).
- DELETE: 202 with `Azure-AsyncOperation` and `Location` (`...&operationResultResponseType=Location`).
- 404s: ARM's gateway `ResourceNotFound` when the workspace is missing, the provider's own
  "The resource with identifier '...' is not found." for a missing DICOM service in an existing workspace.

The validators are pure functions raising `ArmError`.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from starlette.responses import Response

from ..clock import iso
from ..routing import BodyError, Call
from . import arm_state, directory
from .arm import (
    HEALTHCARE_REGIONS,
    ArmError,
    ArmRoute,
    arm_empty,
    arm_json,
    async_operation_url,
    gateway_not_found,
    new_etag,
    require_location,
    require_object,
    require_rg,
    rg_id,
    system_data,
    validate_tags,
)

NAMESPACE = "Microsoft.HealthcareApis"
API_VERSIONS = ("2024-03-31",)
WORKSPACE_TYPE = "Microsoft.HealthcareApis/workspaces"
DICOM_TYPE = "Microsoft.HealthcareApis/workspaces/dicomservices"
DICOM_AUDIENCES = ["https://dicom.healthcareapis.azure.com", "https://dicom.healthcareapis.azure.com/"]

WORKSPACE_NAME = re.compile(r"^[a-z0-9]{3,24}$")
DICOM_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,22}[a-z0-9]$")
# CorsConfigurationOriginEntry in healthcare-apis.json (2024-03-31): scheme://host[:port] or "*", no path.
CORS_ORIGIN = re.compile(r"^(?:(?:(?:[hH][tT][tT][pP](?:[sS]|))\:\/\/(?:[a-zA-Z0-9-]+[.]?)+(?:\:[0-9]{1,5})?|[*]))$")
IDENTITY_TYPES = ("None", "SystemAssigned", "UserAssigned", "SystemAssigned,UserAssigned")
CORS_KEYS = ("origins", "headers", "methods", "maxAge", "allowCredentials")
IMMUTABLE = ("storageConfiguration", "encryption", "enableDataPartitions")


# --- pure validators ------------------------------------------------------------------------------------------

def _bad(message: str, target: str | None = None) -> ArmError:
    return ArmError(400, "BadRequest", message, target=target)


def _content(message: str) -> ArmError:
    return ArmError(400, "InvalidRequestContent",
                    f"The request content was invalid and could not be deserialized: '{message}'.")


def validate_workspace_name(name: str) -> None:
    if not WORKSPACE_NAME.match(name):
        raise ArmError(400, "InvalidResourceName",
                       f"The resource name '{name}' is invalid. Workspace names must be 3-24 lowercase letters or "
                       "digits ('^[a-z0-9]{3,24}$').")


def validate_dicom_name(name: str) -> None:
    if not DICOM_NAME.match(name):
        raise ArmError(400, "InvalidResourceName",
                       f"The resource name '{name}' is invalid. DICOM service names must be 3-24 lowercase letters, "
                       "digits or hyphens, starting and ending with a letter or digit "
                       "('^[a-z0-9][a-z0-9-]{1,22}[a-z0-9]$').")


def _string_list(value: Any, path: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _content(f"Error converting value to type 'System.String[]'. Path '{path}'")
    return list(value)


def validate_cors(value: Any) -> dict[str, Any]:
    """A full corsConfiguration (missing members as the service echoes them: [], null, false)."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise _content("Unexpected JSON token; an object was expected. Path 'properties.corsConfiguration'")
    origins = _string_list(value.get("origins"), "properties.corsConfiguration.origins")
    for origin in origins:
        if not CORS_ORIGIN.match(origin):
            raise _bad(f"The CORS origin '{origin}' is invalid. An origin is '*' or scheme://host[:port] with no "
                       "path and no trailing slash.", "properties.corsConfiguration.origins")
    headers = _string_list(value.get("headers"), "properties.corsConfiguration.headers")
    methods = _string_list(value.get("methods"), "properties.corsConfiguration.methods")
    max_age = value.get("maxAge")
    if max_age is not None:
        if isinstance(max_age, bool) or not isinstance(max_age, int):
            raise _content("Error converting value to type 'System.Int32'. Path 'properties.corsConfiguration.maxAge'")
        if not 0 <= max_age <= 99999:
            raise _bad(f"The CORS maxAge {max_age} is out of range; it must be between 0 and 99999.",
                       "properties.corsConfiguration.maxAge")
    allow = value.get("allowCredentials")
    if allow is not None and not isinstance(allow, bool):
        raise _content("Error converting value to type 'System.Boolean'. Path "
                       "'properties.corsConfiguration.allowCredentials'")
    return {"origins": origins, "headers": headers, "methods": methods, "maxAge": max_age,
            "allowCredentials": bool(allow)}


def validate_identity(value: Any) -> dict[str, Any] | None:
    """Normalised `identity` (type required, one of the enum values), or None when absent."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _content("Unexpected JSON token; an object was expected. Path 'identity'")
    type_ = value.get("type")
    if type_ is None:
        raise _bad("The 'type' property of 'identity' is required.", "identity.type")
    wanted = type_.replace(" ", "").lower() if isinstance(type_, str) else None
    canonical = next((t for t in IDENTITY_TYPES if t.lower() == wanted), None)
    if canonical is None:
        raise _bad(f"The identity type '{type_}' is invalid. Allowed values are {', '.join(IDENTITY_TYPES)}.",
                   "identity.type")
    uai = value.get("userAssignedIdentities")
    if "UserAssigned" in canonical:
        if not isinstance(uai, dict) or not uai:
            raise _bad("The 'userAssignedIdentities' property is required when the identity type includes "
                       "'UserAssigned'.", "identity.userAssignedIdentities")
    elif uai:
        raise _bad(f"The 'userAssignedIdentities' property is not allowed with identity type '{canonical}'.",
                   "identity.userAssignedIdentities")
    result: dict[str, Any] = {"type": canonical}
    if uai and "UserAssigned" in canonical:
        result["userAssignedIdentities"] = {k: {} for k in uai}
    return result


def _optional_object(value: Any, path: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _content(f"Unexpected JSON token; an object was expected. Path '{path}'")
    return value


def validate_dicom_body(body: Any) -> dict[str, Any]:
    """The writable parts of a DICOM service PUT body, normalised. Read-only properties are ignored."""
    body = require_object(body)
    props = _optional_object(body.get("properties"), "properties") or {}
    storage = _optional_object(props.get("storageConfiguration"), "properties.storageConfiguration")
    if storage is not None:
        for key in ("storageResourceId", "fileSystemName"):
            if storage.get(key) is not None and not isinstance(storage[key], str):
                raise _content(f"Error converting value to type 'System.String'. Path "
                               f"'properties.storageConfiguration.{key}'")
    encryption = _optional_object(props.get("encryption"), "properties.encryption")
    partitions = props.get("enableDataPartitions")
    if partitions is not None and not isinstance(partitions, bool):
        raise _content("Error converting value to type 'System.Boolean'. Path 'properties.enableDataPartitions'")
    return {
        "tags": validate_tags(body.get("tags")),
        "identity": validate_identity(body.get("identity")),
        "corsConfiguration": validate_cors(props.get("corsConfiguration")),
        "storageConfiguration": storage or None,
        "encryption": encryption or None,
        "enableDataPartitions": bool(partitions),
    }


def _same(a: Any, b: Any) -> bool:
    def norm(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items() if x not in (None, {}, "")} or None
        return v
    return norm(a) == norm(b)


def check_immutable(old: dict[str, Any], new: dict[str, Any]) -> None:
    """Storage, encryption and data partitions are fixed at creation; a full PUT must carry them unchanged."""
    for key in IMMUTABLE:
        if not _same(old.get(key), new.get(key)):
            raise _bad(f"The property '{key}' cannot be changed after the DICOM service is created; send the "
                       "current value back unchanged.", f"properties.{key}")


# --- rendering ------------------------------------------------------------------------------------------------

def workspace_id(sub: str, rg: str, ws: str) -> str:
    return f"{rg_id(sub, rg)}/providers/{NAMESPACE}/workspaces/{ws}"


def dicom_id(sub: str, rg: str, ws: str, name: str) -> str:
    return f"{workspace_id(sub, rg, ws)}/dicomservices/{name}"


def render_workspace(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": record["id"],
        "name": record["name"],
        "type": WORKSPACE_TYPE,
        "etag": record["etag"],
        "location": record["location"],
        "tags": dict(record["tags"]),
        "properties": {
            "privateEndpointConnections": [],
            "publicNetworkAccess": "Enabled",
            "provisioningState": record["properties"]["provisioningState"],
        },
        "systemData": record["systemData"],
    }


def render_dicom(record: dict[str, Any], base: str, tenant_id: str) -> dict[str, Any]:
    props = record["properties"]
    body: dict[str, Any] = {
        "id": record["id"],
        "name": f"{record['workspace']}/{record['name']}",
        "type": DICOM_TYPE,
        "etag": record["etag"],
        "location": record["location"],
        "tags": dict(record["tags"]),
    }
    identity = record.get("identity")
    if identity is not None:
        rendered = dict(identity)
        if "SystemAssigned" in identity["type"]:
            rendered.update(principalId=record["_mi_principal"], tenantId=tenant_id)
        if "userAssignedIdentities" in identity:
            rendered["userAssignedIdentities"] = {
                k: {"principalId": str(uuid.uuid5(uuid.NAMESPACE_URL, k.lower() + "#p")),
                    "clientId": str(uuid.uuid5(uuid.NAMESPACE_URL, k.lower() + "#c"))}
                for k in identity["userAssignedIdentities"]
            }
        body["identity"] = rendered
    out: dict[str, Any] = {
        "provisioningState": props["provisioningState"],
        "authenticationConfiguration": {"authority": f"{base}/{tenant_id}/", "audiences": list(DICOM_AUDIENCES)},
        "corsConfiguration": dict(props["corsConfiguration"]),
        "serviceUrl": f"{base}/dicom/{record['workspace']}-{record['name']}" if record.get("_ready") else "",
        "privateEndpointConnections": [],
        "publicNetworkAccess": "Enabled",
        "eventState": "Disabled",
        "enableDataPartitions": props["enableDataPartitions"],
    }
    if props.get("storageConfiguration"):
        out["storageConfiguration"] = dict(props["storageConfiguration"])
    if props.get("encryption"):
        out["encryption"] = dict(props["encryption"])
    body["properties"] = out
    body["systemData"] = record["systemData"]
    return body


# --- handlers -------------------------------------------------------------------------------------------------

async def _body(call: Call) -> dict[str, Any]:
    try:
        return require_object(await call.json())
    except BodyError as exc:
        raise ArmError(400, "InvalidRequestContent", str(exc)) from None


def _writable_rg(call: Call) -> dict[str, Any]:
    rg = require_rg(call.world, call.params["subscriptionId"], call.params["resourceGroupName"])
    if rg["properties"]["provisioningState"] == "Deleting":
        raise ArmError(409, "ResourceGroupBeingDeleted",
                       f"The resource group '{rg['name']}' is in deprovisioning state and cannot perform this "
                       "operation.")
    return rg


def _location_conflict(record: dict[str, Any], sent: str, rg: str) -> ArmError:
    return ArmError(400, "InvalidResourceLocation",
                    f"The resource '{record['name']}' already exists in location '{record['location']}' in resource "
                    f"group '{rg}'. A resource with the same name cannot be created in location '{sent}'. Please "
                    "select a new resource name.")


def _busy(record: dict[str, Any]) -> ArmError:
    state = record["properties"]["provisioningState"]
    return ArmError(409, "Conflict",
                    f"The resource '{record['name']}' is in provisioning state '{state}'; another operation is in "
                    "progress. Retry when it has finished.")


def _ids(call: Call) -> tuple[str, str, str]:
    p = call.params
    return p["subscriptionId"], p["resourceGroupName"], p["workspaceName"]


def _get_workspace(call: Call) -> dict[str, Any]:
    sub, rg, ws = _ids(call)
    require_rg(call.world, sub, rg)
    record = arm_state.get(call.world, workspace_id(sub, rg, ws))
    if record is None:
        raise gateway_not_found(WORKSPACE_TYPE, ws, rg)
    return record


async def put_workspace(call: Call) -> Response:
    sub, rg, ws = _ids(call)
    validate_workspace_name(ws)
    _writable_rg(call)
    body = await _body(call)
    location = require_location(body, HEALTHCARE_REGIONS, WORKSPACE_TYPE)
    tags = validate_tags(body.get("tags"))
    if body.get("properties") is not None and not isinstance(body["properties"], dict):
        raise _content("Unexpected JSON token; an object was expected. Path 'properties'")
    world = call.world
    rid = workspace_id(sub, rg, ws)
    now = iso(world.now())
    existing = arm_state.get(world, rid)
    if existing is not None:
        if existing["location"] != location:
            raise _location_conflict(existing, str(body["location"]), rg)
        if arm_state.busy(existing):
            raise _busy(existing)
        existing["properties"]["provisioningState"] = "Succeeded"  # a PUT provisions a Failed one again
        existing.update(tags=tags, etag=new_etag(), systemData=system_data(call, existing, now))
        arm_state.put(world, existing)
        return _workspace_response(call, existing, 200)
    record = {
        "id": rid,
        "type": WORKSPACE_TYPE,
        "name": ws,
        "location": location,
        "tags": tags,
        "etag": new_etag(),
        "properties": {"provisioningState": "Succeeded"},
        "systemData": system_data(call, None, now),
        "_ready": True,
    }
    arm_state.put(world, record)
    return _workspace_response(call, record, 201)


def _workspace_response(call: Call, record: dict[str, Any], status: int) -> Response:
    return arm_json(call, render_workspace(record), status, {"ETag": record["etag"]})


async def get_workspace(call: Call) -> Response:
    return _workspace_response(call, _get_workspace(call), 200)


async def patch_workspace(call: Call) -> Response:
    record = _get_workspace(call)
    body = await _body(call)
    if "tags" in body:
        record["tags"] = validate_tags(body["tags"])
    record.update(etag=new_etag(), systemData=system_data(call, record, iso(call.world.now())))
    arm_state.put(call.world, record)
    return _workspace_response(call, record, 200)


async def delete_workspace(call: Call) -> Response:
    sub, rg, ws = _ids(call)
    require_rg(call.world, sub, rg)
    world = call.world
    record = arm_state.get(world, workspace_id(sub, rg, ws))
    if record is None:
        return arm_empty(call, 204)
    children = arm_state.children(world, record["id"], DICOM_TYPE)
    if children:
        names = ", ".join(c["name"] for c in children)
        raise ArmError(409, "Conflict",  # wording unverified
                       f"The workspace '{ws}' cannot be deleted because it still contains child resources "
                       f"(dicomservices: {names}). Delete them first.")
    return _start_delete(call, record)


def _start_delete(call: Call, record: dict[str, Any]) -> Response:
    op = arm_state.begin_delete(call.world, record)
    url = async_operation_url(call, op, call.request.query_params["api-version"], NAMESPACE)
    location = url + "&operationResultResponseType=Location"
    return arm_empty(call, 202, {"Azure-AsyncOperation": url, "Location": location})


async def list_workspaces(call: Call) -> Response:
    world = call.world
    rg = call.params.get("resourceGroupName")
    if rg is not None:
        parent = require_rg(world, call.params["subscriptionId"], rg)["id"]
    else:
        parent = f"/subscriptions/{world.identity.subscription_id}"
    return arm_json(call, {"value": [render_workspace(r) for r in arm_state.children(world, parent, WORKSPACE_TYPE)]})


def _dicom_ids(call: Call) -> tuple[str, str, str, str]:
    sub, rg, ws = _ids(call)
    return sub, rg, ws, call.params["dicomServiceName"]


def _get_dicom(call: Call) -> dict[str, Any]:
    sub, rg, ws, name = _dicom_ids(call)
    world = call.world
    require_rg(world, sub, rg)
    if arm_state.get(world, workspace_id(sub, rg, ws)) is None:
        raise gateway_not_found(DICOM_TYPE.replace("/dicomservices", ""), f"{ws}/dicomservices/{name}", rg)
    rid = dicom_id(sub, rg, ws, name)
    record = arm_state.get(world, rid)
    if record is None:
        raise ArmError(404, "ResourceNotFound", f"The resource with identifier '{rid}' is not found.")
    return record


def _dicom_response(call: Call, record: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> Response:
    body = render_dicom(record, call.base, call.world.identity.tenant_id)
    return arm_json(call, body, status, {"ETag": record["etag"], **(headers or {})})


def _sync_managed_identity(call: Call, record: dict[str, Any]) -> None:
    """Create or remove the service principal behind the system-assigned identity."""
    world = call.world
    identity = record.get("identity")
    wants = identity is not None and "SystemAssigned" in identity["type"]
    current = record.get("_mi_principal")
    sps = directory.collection(world, "servicePrincipals")
    if wants and current is None:
        oid = str(uuid.uuid4())
        now = world.now()
        sps[oid] = directory.managed_identity_sp(record["name"], record["id"], object_id=oid, created=iso(now),
                                                 created_ts=now)
        record["_mi_principal"] = oid
    elif not wants and current is not None:
        directory.delete_service_principal(world, current)
        record.pop("_mi_principal", None)


async def put_dicom(call: Call) -> Response:
    sub, rg, ws, name = _dicom_ids(call)
    validate_workspace_name(ws)
    validate_dicom_name(name)
    world = call.world
    _writable_rg(call)
    workspace = arm_state.get(world, workspace_id(sub, rg, ws))
    if workspace is None:
        raise gateway_not_found(WORKSPACE_TYPE, ws, rg)
    body = await _body(call)
    location = require_location(body, HEALTHCARE_REGIONS, DICOM_TYPE)
    desired = validate_dicom_body(body)
    rid = dicom_id(sub, rg, ws, name)
    now = iso(world.now())
    existing = arm_state.get(world, rid)
    api_version = call.request.query_params["api-version"]
    if existing is not None:
        if existing["location"] != location:
            raise _location_conflict(existing, str(body["location"]), rg)
        if arm_state.busy(existing):  # a Failed one accepts the PUT: that is how it is repaired
            raise _busy(existing)
        check_immutable(existing["properties"], desired)
        record = existing
        status, state = 200, "Updating"
    else:
        if workspace["properties"]["provisioningState"] == "Deleting":
            raise _busy(workspace)
        record = {"id": rid, "type": DICOM_TYPE, "name": name, "workspace": ws, "location": location,
                  "properties": {}, "_ready": False}
        status, state = 201, "Creating"
    op = arm_state.start_operation(world, name=name, target=rid, location=location, effect="succeed")
    record.update(
        tags=desired["tags"],
        identity=desired["identity"],
        etag=new_etag(),
        systemData=system_data(call, existing, now),
        _op=op["id"],
    )
    record["properties"] = {
        "provisioningState": state,
        "corsConfiguration": desired["corsConfiguration"],
        "storageConfiguration": desired["storageConfiguration"],
        "encryption": desired["encryption"],
        "enableDataPartitions": desired["enableDataPartitions"],
    }
    _sync_managed_identity(call, record)
    arm_state.put(world, record)
    url = async_operation_url(call, op, api_version, NAMESPACE)
    return _dicom_response(call, record, status, {"Azure-AsyncOperation": url})


async def get_dicom(call: Call) -> Response:
    return _dicom_response(call, _get_dicom(call), 200)


async def patch_dicom(call: Call) -> Response:
    record = _get_dicom(call)
    if arm_state.busy(record):
        raise _busy(record)
    body = await _body(call)
    if "tags" in body:
        record["tags"] = validate_tags(body["tags"])
    if "identity" in body:
        record["identity"] = validate_identity(body["identity"])
        _sync_managed_identity(call, record)
    record.update(etag=new_etag(), systemData=system_data(call, record, iso(call.world.now())))
    arm_state.put(call.world, record)
    return _dicom_response(call, record, 200)


async def delete_dicom(call: Call) -> Response:
    sub, rg, ws, name = _dicom_ids(call)
    world = call.world
    require_rg(world, sub, rg)
    record = arm_state.get(world, dicom_id(sub, rg, ws, name))
    if record is None:
        return arm_empty(call, 204)
    if record.get("_mi_principal"):
        directory.delete_service_principal(world, record.pop("_mi_principal"))
    return _start_delete(call, record)


async def list_dicom(call: Call) -> Response:
    sub, rg, ws = _ids(call)
    world = call.world
    require_rg(world, sub, rg)
    workspace = arm_state.get(world, workspace_id(sub, rg, ws))
    if workspace is None:
        raise gateway_not_found(WORKSPACE_TYPE, ws, rg)
    tenant = world.identity.tenant_id
    items = [render_dicom(r, call.base, tenant) for r in arm_state.children(world, workspace["id"], DICOM_TYPE)]
    return arm_json(call, {"value": items})


async def get_operation(call: Call) -> Response:
    world = call.world
    op_id = call.params["operationResultId"]
    op = arm_state.operations(world).get(op_id)
    if op is None or op["location"] != call.params["locationName"].lower():
        raise ArmError(404, "NotFound", f"The operation result '{op_id}' could not be found.")
    status = arm_state.operation_status(world, op)
    if call.query.get("operationresultresponsetype", "").lower() == "location":
        if status == "Running":
            url = async_operation_url(call, op, call.request.query_params["api-version"], NAMESPACE)
            return arm_empty(call, 202, {"Location": url + "&operationResultResponseType=Location"})
        return arm_empty(call, 204)
    body: dict[str, Any] = {
        "id": f"/subscriptions/{world.identity.subscription_id}/providers/{NAMESPACE}/locations/{op['location']}"
              f"/operationresults/{op['id']}",
        "name": op["id"],
        "status": status,
        "startTime": iso(op["start"]),
    }
    if status != "Running":
        body["endTime"] = iso(op["end"])
    if status == "Failed":
        body["error"] = dict(op["error"])
    return arm_json(call, body)


def arm_routes() -> list[ArmRoute]:
    sub = "/subscriptions/{subscriptionId}"
    rg = sub + "/resourceGroups/{resourceGroupName}"
    ws = rg + f"/providers/{NAMESPACE}/workspaces/{{workspaceName}}"
    kw = {"api_versions": API_VERSIONS}
    return [
        ArmRoute(sub + f"/providers/{NAMESPACE}/workspaces", {"GET": list_workspaces}, resource_type=WORKSPACE_TYPE,
                 **kw),
        ArmRoute(rg + f"/providers/{NAMESPACE}/workspaces", {"GET": list_workspaces}, resource_type=WORKSPACE_TYPE,
                 **kw),
        ArmRoute(ws, {"PUT": put_workspace, "GET": get_workspace, "PATCH": patch_workspace,
                      "DELETE": delete_workspace}, resource_type=WORKSPACE_TYPE, **kw),
        ArmRoute(ws + "/dicomservices", {"GET": list_dicom}, resource_type=DICOM_TYPE, **kw),
        ArmRoute(ws + "/dicomservices/{dicomServiceName}",
                 {"PUT": put_dicom, "GET": get_dicom, "PATCH": patch_dicom, "DELETE": delete_dicom},
                 resource_type=DICOM_TYPE, **kw),
        ArmRoute(sub + f"/providers/{NAMESPACE}/locations/{{locationName}}/operationresults/{{operationResultId}}",
                 {"GET": get_operation}, resource_type=f"{NAMESPACE}/locations/operationresults", **kw),
    ]
