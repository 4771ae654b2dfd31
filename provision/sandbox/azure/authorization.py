"""Microsoft.Authorization (2022-04-01): built-in role definitions and role assignments at any scope."""

from __future__ import annotations

import re
import uuid
from typing import Any

from starlette.responses import Response

from ..clock import iso
from ..routing import BodyError, Call
from ..world import World
from . import arm_state, directory
from .arm import ArmError, ArmRoute, arm_empty, arm_json, gateway_not_found, require_object, rg_not_found

NAMESPACE = "Microsoft.Authorization"
API_VERSIONS = (
    "2015-07-01", "2018-01-01-preview", "2018-07-01", "2018-09-01-preview", "2020-03-01-preview",
    "2020-04-01-preview", "2020-08-01-preview", "2020-10-01-preview", "2021-04-01-preview", "2022-01-01-preview",
    "2022-04-01",
)
ASSIGNMENT_TYPE = "Microsoft.Authorization/roleAssignments"
DEFINITION_TYPE = "Microsoft.Authorization/roleDefinitions"
PRINCIPAL_TYPES = ("User", "Group", "ServicePrincipal", "ForeignGroup", "Device")

OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
USER_ACCESS_ADMINISTRATOR = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"
DICOM_DATA_OWNER = "58a3b984-7adf-4c20-983a-32417c86fbc8"
DICOM_DATA_READER = "e89c7a3c-2f64-4fa1-a847-3e4c9ba4283a"


def _perm(actions: list[str] | None = None, not_actions: list[str] | None = None,
          data_actions: list[str] | None = None) -> list[dict[str, list[str]]]:
    return [{"actions": actions or [], "notActions": not_actions or [], "dataActions": data_actions or [],
             "notDataActions": []}]


BUILTIN_ROLES: dict[str, dict[str, Any]] = {
    OWNER: {"roleName": "Owner", "description": "Grants full access to manage all resources, including the "
            "ability to assign roles in Azure RBAC.", "permissions": _perm(["*"])},
    CONTRIBUTOR: {"roleName": "Contributor", "description": "Grants full access to manage all resources, but does "
                  "not allow you to assign roles in Azure RBAC, manage assignments in Azure Blueprints, or share "
                  "image galleries.", "permissions": _perm(["*"], [
                      "Microsoft.Authorization/*/Delete", "Microsoft.Authorization/*/Write",
                      "Microsoft.Authorization/elevateAccess/Action", "Microsoft.Blueprint/blueprintAssignments/write",
                      "Microsoft.Blueprint/blueprintAssignments/delete", "Microsoft.Compute/galleries/share/action",
                      "Microsoft.Purview/consents/write", "Microsoft.Purview/consents/delete"])},
    READER: {"roleName": "Reader", "description": "View all resources, but does not allow you to make any changes.",
             "permissions": _perm(["*/read"])},
    USER_ACCESS_ADMINISTRATOR: {"roleName": "User Access Administrator", "description": "Lets you manage user "
                                "access to Azure resources.", "permissions": _perm(
                                    ["*/read", "Microsoft.Authorization/*", "Microsoft.Support/*"])},
    DICOM_DATA_OWNER: {"roleName": "DICOM Data Owner", "description": "Full access to DICOM data.",
                       "permissions": _perm(
                           data_actions=["Microsoft.HealthcareApis/workspaces/dicomservices/resources/*"])},
    DICOM_DATA_READER: {"roleName": "DICOM Data Reader", "description": "Read and search DICOM data.",
                        "permissions": _perm(
                            data_actions=["Microsoft.HealthcareApis/workspaces/dicomservices/resources/read"])},
}

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_FILTER_EQ = re.compile(r"^\s*(\w+)\s+eq\s+'((?:[^']|'')*)'\s*$", re.IGNORECASE)
_FILTER_FN = re.compile(r"^\s*(atScope|assignedTo)\(\s*(?:'((?:[^']|'')*)')?\s*\)\s*$", re.IGNORECASE)


# --- scopes ---------------------------------------------------------------------------------------------------

def resolve_scope(world: World, scope: str) -> str:
    """`scope` with a leading slash, after checking that it exists (else the ARM 404 a client would see)."""
    canonical = "/" + scope.strip("/")
    parts = canonical.strip("/").split("/")
    if len(parts) < 2 or parts[0].lower() != "subscriptions":
        raise ArmError(400, "InvalidScope",
                       f"The scope '{canonical}' is not supported by the sandbox; use a subscription, resource "
                       "group or resource scope.")
    if parts[1].lower() != world.identity.subscription_id.lower():
        raise ArmError(404, "SubscriptionNotFound", f"The subscription '{parts[1]}' could not be found.")
    if len(parts) == 2:
        return canonical
    if parts[2].lower() != "resourcegroups" or len(parts) < 4:
        raise ArmError(400, "InvalidScope", f"The scope '{canonical}' is not valid.")
    rg = parts[3]
    if arm_state.get(world, "/".join(["", *parts[:4]])) is None:
        raise rg_not_found(rg)
    if len(parts) == 4:
        return canonical
    if arm_state.get(world, canonical) is None:
        tail = parts[5:] if len(parts) > 5 and parts[4].lower() == "providers" else parts[4:]
        ns, rest = (tail[0], tail[1:]) if tail else ("", [])
        types = "/".join(rest[0::2])
        names = "/".join(rest[1::2])
        raise gateway_not_found(f"{ns}/{types}", names, rg)
    return canonical


def _scope_key(scope: str) -> str:
    return scope.rstrip("/").lower()


def covers(outer: str, inner: str) -> bool:
    """True when `outer` is `inner` or an ancestor scope of it."""
    o, i = _scope_key(outer), _scope_key(inner)
    return i == o or i.startswith(o + "/")


# --- role definitions -----------------------------------------------------------------------------------------

def definition_id(world: World, guid: str, scope: str | None) -> str:
    if scope and scope.strip("/").lower().startswith("subscriptions/"):
        return f"/subscriptions/{world.identity.subscription_id}/providers/{NAMESPACE}/roleDefinitions/{guid}"
    return f"/providers/{NAMESPACE}/roleDefinitions/{guid}"


def render_definition(world: World, guid: str, scope: str | None) -> dict[str, Any]:
    role = BUILTIN_ROLES[guid]
    return {
        "id": definition_id(world, guid, scope),
        "type": DEFINITION_TYPE,
        "name": guid,
        "properties": {
            "roleName": role["roleName"],
            "type": "BuiltInRole",
            "description": role["description"],
            "assignableScopes": ["/"],
            "permissions": role["permissions"],
            "createdOn": "2015-02-02T21:55:09.8806423Z",
            "updatedOn": "2024-04-03T19:27:46.0125495Z",
            "createdBy": None,
            "updatedBy": None,
        },
    }


def role_guid(role_definition_id: str) -> str:
    """The GUID at the end of a roleDefinitionId (or the GUID itself), lower-cased."""
    return role_definition_id.rstrip("/").rsplit("/", 1)[-1].lower()


def _definition_not_found(guid: str) -> ArmError:
    return ArmError(404, "RoleDefinitionDoesNotExist",
                    f"The specified role definition with ID '{guid}' does not exist.")


def _parse_filter(text: str | None) -> list[tuple[str, str | None]]:
    """`a eq 'x' and fn('y')` -> [("a", "x"), ("fn()", "y")]."""
    if not text:
        return []
    clauses = []
    for part in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE):
        m = _FILTER_EQ.match(part)
        if m:
            clauses.append((m.group(1).lower(), m.group(2).replace("''", "'")))
            continue
        m = _FILTER_FN.match(part)
        if m:
            clauses.append((m.group(1).lower() + "()", (m.group(2) or "").replace("''", "'") or None))
            continue
        raise ArmError(400, "BadRequest", f"The filter '{text}' is not supported.")
    return clauses


async def get_definition(call: Call) -> Response:
    guid = call.params["roleDefinitionId"].lower()
    scope = call.params.get("scope")
    if scope:
        resolve_scope(call.world, scope)
    if guid not in BUILTIN_ROLES:
        raise _definition_not_found(guid)
    return arm_json(call, render_definition(call.world, guid, scope))


async def list_definitions(call: Call) -> Response:
    scope = call.params.get("scope")
    if scope:
        resolve_scope(call.world, scope)
    clauses = _parse_filter(call.request.query_params.get("$filter"))
    items = []
    for guid, role in BUILTIN_ROLES.items():
        ok = True
        for name, value in clauses:
            if name == "rolename":
                ok = ok and role["roleName"].lower() == (value or "").lower()
            elif name == "type":
                ok = ok and (value or "").lower() == "builtinrole"
            else:
                raise ArmError(400, "BadRequest", f"The filter property '{name}' is not supported.")
        if ok:
            items.append(render_definition(call.world, guid, scope))
    return arm_json(call, {"value": items})


# --- role assignments -----------------------------------------------------------------------------------------

def render_assignment(world: World, ra: dict[str, Any], *, created_by: bool = True) -> dict[str, Any]:
    return {
        "properties": {
            "roleDefinitionId": definition_id(world, ra["roleDefinition"], ra["scope"]),
            "principalId": ra["principalId"],
            "principalType": ra["principalType"],
            "scope": ra["scope"],
            "condition": ra.get("condition"),
            "conditionVersion": ra.get("conditionVersion"),
            "createdOn": ra["createdOn"],
            "updatedOn": ra["updatedOn"],
            "createdBy": ra["createdBy"] if created_by else None,
            "updatedBy": ra["updatedBy"],
            "delegatedManagedIdentityResourceId": ra.get("delegatedManagedIdentityResourceId"),
            "description": ra.get("description"),
        },
        "id": f"{ra['scope'].rstrip('/')}/providers/{NAMESPACE}/roleAssignments/{ra['name']}",
        "type": ASSIGNMENT_TYPE,
        "name": ra["name"],
    }


def _principal_not_found(world: World, principal_id: str) -> ArmError:
    return ArmError(400, "PrincipalNotFound",
                    f"Principal {principal_id.replace('-', '')} does not exist in the directory "
                    f"{world.identity.tenant_id}. Check that you have the correct principal ID. If you are creating "
                    "this principal and then immediately assigning a role, this error might be related to a "
                    "replication delay. In this case, set the role assignment principalType property to a value, "
                    "such as ServicePrincipal, User, or Group.  See https://aka.ms/docs-principaltype")


def check_principal(world: World, principal_id: str, principal_type: str | None) -> str:
    """The principal's type, after the replication-delay and type checks Azure makes."""
    found = directory.principal(world, principal_id)
    if found is None:
        raise _principal_not_found(world, principal_id)
    actual, obj = found
    cfg = world.config
    young = world.now() - float(obj.get("_created", 0)) < cfg.principal_delay_seconds
    if young and (principal_type is None or cfg.principal_delay_strict):
        raise _principal_not_found(world, principal_id)
    if principal_type is not None and principal_type != actual and not young:
        raise ArmError(400, "UnmatchedPrincipalType",
                       f"The PrincipalId '{principal_id.replace('-', '')}' has type '{actual}' , which is different "
                       f"from specified PrinciaplType '{principal_type}'.")
    return principal_type or actual


def _validate_assignment_body(body: Any) -> dict[str, Any]:
    body = require_object(body)
    props = body.get("properties")
    if not isinstance(props, dict):
        raise ArmError(400, "InvalidRequestContent",
                       "The request content was invalid and could not be deserialized: 'Required property "
                       "'properties' not found in JSON.'.")
    for key in ("roleDefinitionId", "principalId"):
        if not isinstance(props.get(key), str) or not props[key]:
            raise ArmError(400, "InvalidRequestContent",
                           f"The request content was invalid and could not be deserialized: 'Required property "
                           f"'{key}' not found in JSON. Path 'properties'.'.")
    if not _GUID.match(props["principalId"]):
        raise ArmError(400, "InvalidPrincipalId", "A valid principal ID must be provided for role assignment.")
    ptype = props.get("principalType")
    if ptype is not None and ptype not in PRINCIPAL_TYPES:
        raise ArmError(400, "InvalidPrincipalType",
                       f"The PrincipalType property '{ptype}' is not valid. It must be 'User', 'Group' or "
                       "'ServicePrincipal'.")
    return props


def _ra_not_found(name: str) -> ArmError:
    return ArmError(404, "RoleAssignmentNotFound", f"The role assignment '{name}' is not found.")


async def put_assignment(call: Call) -> Response:
    world = call.world
    name = call.params["roleAssignmentName"]
    if not _GUID.match(name):
        raise ArmError(400, "InvalidRoleAssignmentId",
                       f"The role assignment ID '{name}' is not valid. The role assignment ID must be a GUID.")
    try:
        props = _validate_assignment_body(await call.json())
    except BodyError as exc:
        raise ArmError(400, "InvalidRequestContent", str(exc)) from None
    scope = resolve_scope(world, call.params["scope"])
    guid = role_guid(props["roleDefinitionId"])
    if guid not in BUILTIN_ROLES:
        raise ArmError(400, "RoleDefinitionDoesNotExist",
                       f"The specified role definition with ID '{guid}' does not exist.")
    principal_id = props["principalId"].lower()
    existing = arm_state.role_assignments(world).get(name.lower())
    if existing is not None:
        same = (_scope_key(existing["scope"]) == _scope_key(scope) and existing["roleDefinition"] == guid
                and existing["principalId"] == principal_id)
        if not same:
            raise ArmError(400, "RoleAssignmentUpdateNotPermitted",
                           "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.")
        # description and condition are the updatable parts (what `az role assignment update` changes)
        mutable = {key: props.get(key) for key in ("description", "condition", "conditionVersion")}
        if any(existing.get(key) != value for key, value in mutable.items()):
            existing.update(mutable, updatedOn=iso(world.now()), updatedBy=call.claims.get("oid"))
            world.mark_dirty()
        return arm_json(call, render_assignment(world, existing), 201)
    ptype = check_principal(world, principal_id, props.get("principalType"))
    for other in arm_state.role_assignments(world).values():
        if (_scope_key(other["scope"]) == _scope_key(scope) and other["roleDefinition"] == guid
                and other["principalId"] == principal_id):
            raise ArmError(409, "RoleAssignmentExists",
                           "The role assignment already exists. The ID of the existing role assignment is "
                           f"{other['name'].replace('-', '')}.")
    now = iso(world.now())
    actor = call.claims.get("oid")
    ra = {
        "name": name.lower(),
        "scope": scope,
        "roleDefinition": guid,
        "principalId": principal_id,
        "principalType": ptype,
        "description": props.get("description"),
        "condition": props.get("condition"),
        "conditionVersion": props.get("conditionVersion"),
        "delegatedManagedIdentityResourceId": props.get("delegatedManagedIdentityResourceId"),
        "createdOn": now,
        "updatedOn": now,
        "createdBy": actor,
        "updatedBy": actor,
    }
    arm_state.role_assignments(world)[ra["name"]] = ra
    world.mark_dirty()
    return arm_json(call, render_assignment(world, ra, created_by=False), 201)


def _find_assignment(call: Call) -> dict[str, Any] | None:
    ra = arm_state.role_assignments(call.world).get(call.params["roleAssignmentName"].lower())
    if ra is None or _scope_key(ra["scope"]) != _scope_key("/" + call.params["scope"].strip("/")):
        return None
    return ra


async def get_assignment(call: Call) -> Response:
    resolve_scope(call.world, call.params["scope"])
    ra = _find_assignment(call)
    if ra is None:
        raise _ra_not_found(call.params["roleAssignmentName"])
    return arm_json(call, render_assignment(call.world, ra))


async def delete_assignment(call: Call) -> Response:
    resolve_scope(call.world, call.params["scope"])
    ra = _find_assignment(call)
    if ra is None:
        return arm_empty(call, 204)
    del arm_state.role_assignments(call.world)[ra["name"]]
    call.world.mark_dirty()
    return arm_json(call, render_assignment(call.world, ra))


async def list_assignments(call: Call) -> Response:
    world = call.world
    scope = resolve_scope(world, call.params["scope"])
    at_scope = False
    principal: str | None = None
    for name, value in _parse_filter(call.request.query_params.get("$filter")):
        if name == "atscope()":
            at_scope = True
        elif name in ("principalid", "assignedto()") and value:
            principal = value.lower()
        else:
            raise ArmError(400, "BadRequest", f"The filter '{name}' is not supported.")
    items = []
    for ra in arm_state.role_assignments(world).values():
        above_or_at = covers(ra["scope"], scope)
        below = covers(scope, ra["scope"]) and not above_or_at
        if not (above_or_at or (below and not at_scope)):
            continue
        if principal is not None and ra["principalId"] != principal:
            continue
        items.append(render_assignment(world, ra))
    return arm_json(call, {"value": items})


def arm_routes() -> list[ArmRoute]:
    ra = f"/{{scope:path}}/providers/{NAMESPACE}/roleAssignments"
    rd = f"/providers/{NAMESPACE}/roleDefinitions"
    kw = {"api_versions": API_VERSIONS}
    return [
        ArmRoute(ra + "/{roleAssignmentName}", {"PUT": put_assignment, "GET": get_assignment,
                                                "DELETE": delete_assignment}, resource_type=ASSIGNMENT_TYPE, **kw),
        ArmRoute(ra, {"GET": list_assignments}, resource_type=ASSIGNMENT_TYPE, **kw),
        ArmRoute(rd + "/{roleDefinitionId}", {"GET": get_definition}, resource_type=DEFINITION_TYPE, **kw),
        ArmRoute(rd, {"GET": list_definitions}, resource_type=DEFINITION_TYPE, **kw),
        ArmRoute("/{scope:path}" + rd + "/{roleDefinitionId}", {"GET": get_definition}, resource_type=DEFINITION_TYPE,
                 **kw),
        ArmRoute("/{scope:path}" + rd, {"GET": list_definitions}, resource_type=DEFINITION_TYPE, **kw),
    ]


def assignment_name(scope: str, principal_id: str, role: str) -> str:
    """A deterministic assignment name (what a client should use; exposed for tests and examples)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{_scope_key(scope)}|{principal_id.lower()}|{role_guid(role)}"))
