"""Microsoft Graph v1.0 (`/v1.0/...`): applications, service principals, users, groups, oauth2PermissionGrants.

Behaviour worth knowing (see ../../docs/sandbox.md): `PATCH /applications(uniqueName='x')` with
`Prefer: create-if-missing` answers 201 + body when it creates and 204 when it updates (404 without the
header); `POST /applications` is not idempotent; PATCH merges complex values and replaces collections (OData);
arrays come back in a different order than stored; errors are OData `{"error": {code, message, innerError}}`.
Replication (`graph_replication_seconds`): a new object is invisible to GETs and lists for that long, while
writes already see it; `graph_strict_uniqueness: false` lets a second principal for one app through meanwhile.
"""

from __future__ import annotations

import base64
import re
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlparse

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..clock import iso
from ..routing import BodyError, Call, Router, json_response
from ..tokens import TokenError, TokenSigner, bearer_token
from ..world import World
from . import directory
from .entra import GRAPH_RESOURCES
from .odata import ODataError, parse_filter, reorder, reorder_deep, select

GRAPH_AUDIENCES = (*GRAPH_RESOURCES, "https://graph.microsoft.com/")
CONTENT_TYPE = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
SIGN_IN_AUDIENCES = ("AzureADMyOrg", "AzureADMultipleOrgs", "AzureADandPersonalMicrosoftAccount",
                     "PersonalMicrosoftAccount")
FILTERABLE = {
    "applications": ("id", "appId", "uniqueName", "displayName", "identifierUris", "signInAudience",
                     "publisherDomain", "tags", "web/redirectUris", "spa/redirectUris"),
    "servicePrincipals": ("id", "appId", "displayName", "servicePrincipalNames", "servicePrincipalType", "tags",
                          "appOwnerOrganizationId", "accountEnabled"),
    "users": ("id", "mail", "userPrincipalName", "displayName", "givenName", "surname"),
    "groups": ("id", "displayName", "mailNickname", "securityEnabled", "mailEnabled"),
    "oauth2PermissionGrants": ("id", "clientId", "resourceId", "consentType", "principalId"),
}
ODATA_TYPE = {
    "applications": "#microsoft.graph.application",
    "servicePrincipals": "#microsoft.graph.servicePrincipal",
    "users": "#microsoft.graph.user",
    "groups": "#microsoft.graph.group",
}
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class GraphError(Exception):
    def __init__(self, status: int, code: str, message: str, *, details: list[dict[str, Any]] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}


def graph_headers(request: Request, extra: dict[str, str] | None = None) -> dict[str, str]:
    rid = str(uuid.uuid4())
    headers = {
        "request-id": rid,
        "client-request-id": request.headers.get("client-request-id") or rid,
        "x-ms-ags-diagnostic": '{"ServerInfo":{"DataCenter":"Sandbox","Slice":"E","Ring":"5","ScaleUnit":"000",'
                               '"RoleInstance":"SANDBOX"}}',
        "OData-Version": "4.0",
        "Cache-Control": "no-cache",
    }
    headers.update(extra or {})
    return headers


def graph_error_body(request: Request, code: str, message: str, *, request_id: str | None = None,
                     details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    err: dict[str, Any] = {
        "code": code,
        "message": message,
        "innerError": {
            "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            "request-id": request_id or str(uuid.uuid4()),
            "client-request-id": request.headers.get("client-request-id") or request_id or str(uuid.uuid4()),
        },
    }
    if details:
        err["details"] = details
    return {"error": err}


def error_response(request: Request, err: GraphError) -> Response:
    headers = graph_headers(request, err.headers)
    body = graph_error_body(request, err.code, err.message, request_id=headers["request-id"], details=err.details)
    return json_response(body, err.status, headers, content_type="application/json")


def not_found(key: str) -> GraphError:
    return GraphError(404, "Request_ResourceNotFound",
                      f"Resource '{key}' does not exist or one of its queried reference-property objects are not "
                      "present.")


def bad_value(prop: str, resource: str) -> GraphError:
    return GraphError(400, "Request_BadRequest", f"Invalid value specified for property '{prop}' of resource "
                      f"'{resource}'.")


def conflict(prop: str) -> GraphError:
    return GraphError(400, "Request_BadRequest", f"Another object with the same value for property {prop} already "
                      "exists.", details=[{"code": "ObjectConflict", "target": prop}])


# --- rendering ------------------------------------------------------------------------------------------------

def public(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if not k.startswith("_")}


def render_entity(call: Call, collection: str, obj: dict[str, Any]) -> dict[str, Any]:
    sel = call.request.query_params.get("$select")
    ctx = f"{call.base}/v1.0/$metadata#{collection}"
    if sel:
        ctx += f"({sel})"
    return {"@odata.context": ctx + "/$entity", **reorder_deep(select(public(obj), sel))}


def entity_response(call: Call, collection: str, obj: dict[str, Any], status: int = 200,
                    headers: dict[str, str] | None = None) -> Response:
    return json_response(render_entity(call, collection, obj), status, graph_headers(call.request, headers),
                         CONTENT_TYPE)


def no_content(call: Call) -> Response:
    return Response(b"", status_code=204, headers=graph_headers(call.request))


def list_response(call: Call, collection: str, items: list[dict[str, Any]]) -> Response:
    q = call.request.query_params
    try:
        pred = parse_filter(q.get("$filter"), FILTERABLE[collection])
    except ODataError as exc:
        raise GraphError(400, "Request_UnsupportedQuery", str(exc)) from None
    sel = q.get("$select")
    matched = reorder([reorder_deep(select(public(o), sel)) for o in items if pred(o)])
    top = q.get("$top")
    skip = int(q.get("$skiptoken", "0") or 0) if (q.get("$skiptoken") or "0").isdigit() else 0
    ctx = f"{call.base}/v1.0/$metadata#{collection}" + (f"({sel})" if sel else "")
    body: dict[str, Any] = {"@odata.context": ctx}
    if top is not None:
        if not top.isdigit() or not 1 <= int(top) <= 999:
            raise GraphError(400, "Request_BadRequest", f"Invalid page size specified: '{top}'. Must be between "
                             "1 and 999 inclusive.")
        page = matched[skip : skip + int(top)]
        if skip + int(top) < len(matched):
            params = {k: v for k, v in q.items() if k != "$skiptoken"}
            params["$skiptoken"] = str(skip + int(top))
            body["@odata.nextLink"] = f"{call.base}{call.request.url.path}?{urlencode(params, safe='$')}"
        body["value"] = page
    else:
        body["value"] = matched[skip:]
    return json_response(body, 200, graph_headers(call.request), CONTENT_TYPE)


def location_header(call: Call, object_id: str, type_name: str) -> dict[str, str]:
    tenant = call.world.identity.tenant_id
    return {"Location": f"{call.base}/v2/{tenant}/directoryObjects/{object_id}/Microsoft.DirectoryServices.{type_name}"}


# --- validation -----------------------------------------------------------------------------------------------

async def body_object(call: Call) -> dict[str, Any]:
    try:
        body = await call.json()
    except BodyError:
        raise GraphError(400, "BadRequest", "Unable to read JSON request payload. Please ensure Content-Type "
                         "header is set and payload is of valid JSON format.") from None
    if not isinstance(body, dict):
        raise GraphError(400, "BadRequest", "Unable to read JSON request payload. Please ensure Content-Type "
                         "header is set and payload is of valid JSON format.")
    return {k: v for k, v in body.items() if not k.startswith("@odata")}


def _check_properties(body: dict[str, Any], writable: frozenset[str], defaults: dict[str, Any]) -> None:
    for key in body:
        if key not in defaults:
            raise GraphError(400, "Request_BadRequest",
                             f"Property '{key}' does not exist as a declared property or extension property.")
        if key not in writable and key != "id":
            raise GraphError(400, "Request_BadRequest", f"Property '{key}' is read-only and cannot be set.")


def _check_redirect_uris(app: dict[str, Any]) -> None:
    for platform in ("web", "spa", "publicClient"):
        uris = (app.get(platform) or {}).get("redirectUris") or []
        if not isinstance(uris, list) or not all(isinstance(u, str) for u in uris):
            raise bad_value(f"{platform}.redirectUris", "Application")
        for uri in uris:
            parsed = urlparse(uri)
            local = parsed.hostname in ("localhost", "127.0.0.1")
            ok = len(uri) <= 256 and bool(parsed.scheme) and (
                parsed.scheme == "https" or (parsed.scheme == "http" and local) or platform == "publicClient"
            ) and bool(parsed.netloc or platform == "publicClient") and "#" not in uri
            if platform == "spa" and "*" in uri:
                ok = False
            if not ok:
                raise bad_value(f"{platform}.redirectUris", "Application")


def validate_application(app: dict[str, Any]) -> None:
    """Rules Graph enforces on an application (after the patch is applied)."""
    name = app.get("displayName")
    if not isinstance(name, str) or not name.strip():
        raise bad_value("displayName", "Application")
    if app.get("signInAudience") not in SIGN_IN_AUDIENCES:
        raise bad_value("signInAudience", "Application")
    _check_redirect_uris(app)
    for uri in app.get("identifierUris") or []:
        if not isinstance(uri, str) or not re.match(r"^(api|https?|urn|ms-appx)://?", uri):
            raise bad_value("identifierUris", "Application")
    rra = app.get("requiredResourceAccess")
    if not isinstance(rra, list):
        raise bad_value("requiredResourceAccess", "Application")
    for entry in rra:
        if not isinstance(entry, dict) or not _GUID.match(str(entry.get("resourceAppId", ""))):
            raise bad_value("requiredResourceAccess.resourceAppId", "Application")
        for access in entry.get("resourceAccess") or []:
            if (not isinstance(access, dict) or not _GUID.match(str(access.get("id", "")))
                    or access.get("type") not in ("Scope", "Role")):
                raise bad_value("requiredResourceAccess.resourceAccess", "Application")
    for scope in (app.get("api") or {}).get("oauth2PermissionScopes") or []:
        if not isinstance(scope, dict) or not _GUID.match(str(scope.get("id", ""))) or not scope.get("value"):
            raise bad_value("api.oauth2PermissionScopes", "Application")


# --- replication ----------------------------------------------------------------------------------------------

def visible(world: World, obj: dict[str, Any]) -> bool:
    """Whether Graph's reads show the object yet: one younger than `graph_replication_seconds` is known to the
    writes (a duplicate POST sees it) but not to GETs and lists, as a replica that has not caught up."""
    lag = world.config.graph_replication_seconds
    return lag <= 0 or world.now() - float(obj.get("_created", 0)) >= lag


def _readable(world: World, obj: dict[str, Any] | None) -> dict[str, Any] | None:
    return obj if obj is not None and visible(world, obj) else None


def _listed(world: World, collection: str) -> list[dict[str, Any]]:
    return [o for o in directory.collection(world, collection).values() if visible(world, o)]


# --- applications ---------------------------------------------------------------------------------------------

def _unquote(value: str) -> str:
    return value.replace("''", "'")


def _find(world: World, collection: str, prop: str, value: str) -> dict[str, Any] | None:
    v = value.lower()
    return next((o for o in directory.collection(world, collection).values()
                 if isinstance(o.get(prop), str) and o[prop].lower() == v), None)


def _application(call: Call) -> tuple[dict[str, Any] | None, str]:
    p = call.params
    world = call.world
    if "uniqueName" in p:
        key = _unquote(p["uniqueName"])
        return _find(world, "applications", "uniqueName", key), f"uniqueName='{key}'"
    if "appId" in p:
        key = _unquote(p["appId"])
        return _find(world, "applications", "appId", key), f"appId='{key}'"
    return directory.collection(world, "applications").get(p["id"].lower()), p["id"]


def _create_application(call: Call, body: dict[str, Any], *, unique_name: str | None = None) -> Response:
    world = call.world
    defaults = directory.application_defaults()
    _check_properties(body, directory.APPLICATION_WRITABLE, defaults)
    body.pop("id", None)
    if unique_name is not None:
        if body.get("uniqueName") not in (None, unique_name):
            raise bad_value("uniqueName", "Application")
        body["uniqueName"] = unique_name
    if body.get("uniqueName") is not None and _find(world, "applications", "uniqueName", body["uniqueName"]):
        raise conflict("uniqueName")
    now = world.now()
    app = directory.new_application(body, object_id=str(uuid.uuid4()), app_id=str(uuid.uuid4()), created=iso(now),
                                    created_ts=now, domain=world.identity.domain)
    validate_application(app)
    directory.collection(world, "applications")[app["id"]] = app
    world.mark_dirty()
    return entity_response(call, "applications", app, 201, location_header(call, app["id"], "Application"))


def _update_application(call: Call, app: dict[str, Any], body: dict[str, Any]) -> Response:
    defaults = directory.application_defaults()
    _check_properties(body, directory.APPLICATION_WRITABLE, defaults)
    body.pop("id", None)
    if "uniqueName" in body and body["uniqueName"] != app.get("uniqueName"):
        if app.get("uniqueName") is not None:
            raise GraphError(400, "Request_BadRequest", "Property 'uniqueName' cannot be changed once it is set.")
        if _find(call.world, "applications", "uniqueName", body["uniqueName"]):
            raise conflict("uniqueName")
    updated = {**app}
    directory.merge_patch(updated, body)
    validate_application(updated)
    app.clear()
    app.update(updated)
    call.world.mark_dirty()
    return no_content(call)


async def list_applications(call: Call) -> Response:
    return list_response(call, "applications", _listed(call.world, "applications"))


async def create_application(call: Call) -> Response:
    return _create_application(call, await body_object(call))


async def get_application(call: Call) -> Response:
    app, key = _application(call)
    app = _readable(call.world, app)
    if app is None:
        raise not_found(key)
    return entity_response(call, "applications", app)


async def patch_application(call: Call) -> Response:
    app, key = _application(call)
    body = await body_object(call)
    if app is None:
        prefer = (call.header("prefer") or "").lower()
        if "uniqueName" in call.params and "create-if-missing" in {p.strip() for p in prefer.split(",")}:
            return _create_application(call, body, unique_name=_unquote(call.params["uniqueName"]))
        raise not_found(key)
    return _update_application(call, app, body)


async def delete_application(call: Call) -> Response:
    app, key = _application(call)
    if app is None:
        raise not_found(key)
    world = call.world
    for sp in [p for p in directory.collection(world, "servicePrincipals").values()
               if p["appId"].lower() == app["appId"].lower()]:
        directory.delete_service_principal(world, sp["id"])
    del directory.collection(world, "applications")[app["id"]]
    world.mark_dirty()
    return no_content(call)


# --- service principals ---------------------------------------------------------------------------------------

def _service_principal(call: Call) -> tuple[dict[str, Any] | None, str]:
    if "appId" in call.params:
        key = _unquote(call.params["appId"])
        return directory.find_sp_by_app_id(call.world, key), f"appId='{key}'"
    oid = call.params["id"]
    return directory.collection(call.world, "servicePrincipals").get(oid.lower()), oid


async def list_service_principals(call: Call) -> Response:
    return list_response(call, "servicePrincipals", _listed(call.world, "servicePrincipals"))


async def create_service_principal(call: Call) -> Response:
    world = call.world
    body = await body_object(call)
    _check_properties(body, directory.SERVICE_PRINCIPAL_WRITABLE, directory.service_principal_defaults())
    app_id = body.get("appId")
    if not isinstance(app_id, str) or not app_id:
        raise bad_value("appId", "ServicePrincipal")
    existing = directory.find_sp_by_app_id(world, app_id)
    if existing is not None and (world.config.graph_strict_uniqueness or visible(world, existing)):
        message = (f"The service principal cannot be created, updated, or restored because the service principal "
                   f"name {app_id} is already in use.")
        raise GraphError(409, "Request_MultipleObjectsWithSameKeyValue", message,
                         details=[{"code": "ObjectConflict", "message": message, "target": "servicePrincipalNames"}])
    now = world.now()
    oid = str(uuid.uuid4())
    app = _find(world, "applications", "appId", app_id)
    if app is not None:
        sp = directory.service_principal_for_app(app, object_id=oid, tenant_id=world.identity.tenant_id,
                                                 created=iso(now), created_ts=now)
    elif app_id.lower() in directory.FIRST_PARTY_APPS:
        if app_id.lower() == directory.DICOM_APP_ID:
            oid = directory.dicom_sp_object_id(world.identity.tenant_id)
        sp = directory.service_principal_first_party(app_id.lower(), object_id=oid, created=iso(now), created_ts=now)
    else:
        raise GraphError(400, "Request_BadRequest", f"The appId '{app_id}' of the service principal does not "
                         "reference a valid application object.")
    extra = {k: v for k, v in body.items() if k not in ("appId", "id")}
    directory.merge_patch(sp, extra)
    directory.collection(world, "servicePrincipals")[sp["id"]] = sp
    world.mark_dirty()
    return entity_response(call, "servicePrincipals", sp, 201, location_header(call, sp["id"], "ServicePrincipal"))


async def get_service_principal(call: Call) -> Response:
    sp, key = _service_principal(call)
    sp = _readable(call.world, sp)
    if sp is None:
        raise not_found(key)
    return entity_response(call, "servicePrincipals", sp)


async def patch_service_principal(call: Call) -> Response:
    sp, key = _service_principal(call)
    if sp is None:
        raise not_found(key)
    body = await body_object(call)
    _check_properties(body, directory.SERVICE_PRINCIPAL_WRITABLE, directory.service_principal_defaults())
    if "appId" in body and str(body["appId"]).lower() != sp["appId"].lower():
        raise GraphError(400, "Request_BadRequest", "Property 'appId' is read-only and cannot be set.")
    body.pop("id", None)
    directory.merge_patch(sp, body)
    call.world.mark_dirty()
    return no_content(call)


async def delete_service_principal(call: Call) -> Response:
    sp, key = _service_principal(call)
    if sp is None:
        raise not_found(key)
    directory.delete_service_principal(call.world, sp["id"])
    return no_content(call)


# --- users and groups -----------------------------------------------------------------------------------------

async def list_users(call: Call) -> Response:
    return list_response(call, "users", list(directory.collection(call.world, "users").values()))


async def get_user(call: Call) -> Response:
    key = call.params["idOrUpn"]
    users = directory.collection(call.world, "users")
    user = users.get(key.lower()) or _find(call.world, "users", "userPrincipalName", key)
    if user is None:
        raise not_found(key)
    return entity_response(call, "users", user)


async def list_groups(call: Call) -> Response:
    return list_response(call, "groups", list(directory.collection(call.world, "groups").values()))


async def get_group(call: Call) -> Response:
    group = directory.collection(call.world, "groups").get(call.params["id"].lower())
    if group is None:
        raise not_found(call.params["id"])
    return entity_response(call, "groups", group)


async def get_directory_object(call: Call) -> Response:
    oid = call.params["id"].lower()
    for coll, obj in directory.directory_objects(call.world):
        if coll in ODATA_TYPE and obj["id"] == oid and visible(call.world, obj):
            body = {"@odata.context": f"{call.base}/v1.0/$metadata#directoryObjects/$entity",
                    "@odata.type": ODATA_TYPE[coll], **reorder_deep(select(public(obj),
                                                                             call.request.query_params.get("$select")))}
            return json_response(body, 200, graph_headers(call.request), CONTENT_TYPE)
    raise not_found(call.params["id"])


async def get_organization(call: Call) -> Response:
    ident = call.world.identity
    org = {
        "id": ident.tenant_id,
        "displayName": "Contoso (sandbox)",
        "tenantType": "AAD",
        "verifiedDomains": [{"capabilities": "Email, OfficeCommunicationsOnline", "isDefault": True,
                             "isInitial": True, "name": ident.domain, "type": "Managed"}],
    }
    return json_response({"@odata.context": f"{call.base}/v1.0/$metadata#organization", "value": [org]}, 200,
                         graph_headers(call.request), CONTENT_TYPE)


# --- oauth2PermissionGrants -----------------------------------------------------------------------------------

def grant_id(client_id: str, resource_id: str, principal_id: str | None) -> str:
    """Graph's grant ids are the base64url of the client, resource (and user) object ids."""
    raw = uuid.UUID(client_id).bytes_le + uuid.UUID(resource_id).bytes_le
    if principal_id:
        raw += uuid.UUID(principal_id).bytes_le
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


async def list_grants(call: Call) -> Response:
    return list_response(call, "oauth2PermissionGrants", _listed(call.world, "oauth2PermissionGrants"))


async def create_grant(call: Call) -> Response:
    world = call.world
    body = await body_object(call)
    allowed = {"clientId", "consentType", "principalId", "resourceId", "scope", "id"}
    for key in body:
        if key not in allowed:
            raise GraphError(400, "Request_BadRequest",
                             f"Property '{key}' does not exist as a declared property or extension property.")
    sps = directory.collection(world, "servicePrincipals")
    for prop in ("clientId", "resourceId"):
        if not isinstance(body.get(prop), str) or body[prop].lower() not in sps:
            raise bad_value(prop, "OAuth2PermissionGrant")
    consent = body.get("consentType")
    principal = body.get("principalId")
    if consent == "AllPrincipals":
        if principal is not None:
            raise bad_value("principalId", "OAuth2PermissionGrant")
    elif consent == "Principal":
        if not isinstance(principal, str) or principal.lower() not in directory.collection(world, "users"):
            raise bad_value("principalId", "OAuth2PermissionGrant")
    else:
        raise bad_value("consentType", "OAuth2PermissionGrant")
    scope = body.get("scope", "")
    if not isinstance(scope, str):
        raise bad_value("scope", "OAuth2PermissionGrant")
    client, resource = body["clientId"].lower(), body["resourceId"].lower()
    gid = grant_id(client, resource, principal.lower() if principal else None)
    grants = directory.collection(world, "oauth2PermissionGrants")
    if gid in grants:
        raise GraphError(409, "Request_MultipleObjectsWithSameKeyValue", "Permission entry already exists.")
    grant = {"clientId": client, "consentType": consent, "id": gid,
             "principalId": principal.lower() if principal else None, "resourceId": resource, "scope": scope,
             "_created": world.now()}
    grants[gid] = grant
    world.mark_dirty()
    return entity_response(call, "oauth2PermissionGrants", grant, 201)


def _grant(call: Call) -> dict[str, Any]:
    grant = directory.collection(call.world, "oauth2PermissionGrants").get(call.params["id"])
    if grant is None:
        raise not_found(call.params["id"])
    return grant


async def get_grant(call: Call) -> Response:
    grant = _readable(call.world, _grant(call))
    if grant is None:
        raise not_found(call.params["id"])
    return entity_response(call, "oauth2PermissionGrants", grant)


async def patch_grant(call: Call) -> Response:
    grant = _grant(call)
    body = await body_object(call)
    for key in body:
        if key != "scope":
            raise GraphError(400, "Request_BadRequest", f"Property '{key}' is read-only and cannot be set.")
    if "scope" in body:
        if not isinstance(body["scope"], str):
            raise bad_value("scope", "OAuth2PermissionGrant")
        grant["scope"] = body["scope"]
    call.world.mark_dirty()
    return no_content(call)


async def delete_grant(call: Call) -> Response:
    grant = _grant(call)
    del directory.collection(call.world, "oauth2PermissionGrants")[grant["id"]]
    call.world.mark_dirty()
    return no_content(call)


# --- assembly -------------------------------------------------------------------------------------------------

def _router() -> Router:
    r = Router()
    app_item = {"GET": get_application, "PATCH": patch_application, "DELETE": delete_application}
    sp_item = {"GET": get_service_principal, "PATCH": patch_service_principal, "DELETE": delete_service_principal}
    r.add("/applications", {"GET": list_applications, "POST": create_application})
    r.add("/applications(uniqueName='{uniqueName}')", app_item)
    r.add("/applications(appId='{appId}')", app_item)
    r.add("/applications/{id}", app_item)
    r.add("/servicePrincipals", {"GET": list_service_principals, "POST": create_service_principal})
    r.add("/servicePrincipals(appId='{appId}')", sp_item)
    r.add("/servicePrincipals/{id}", sp_item)
    r.add("/users", {"GET": list_users})
    r.add("/users/{idOrUpn}", {"GET": get_user})
    r.add("/groups", {"GET": list_groups})
    r.add("/groups/{id}", {"GET": get_group})
    r.add("/oauth2PermissionGrants", {"GET": list_grants, "POST": create_grant})
    r.add("/oauth2PermissionGrants/{id}", {"GET": get_grant, "PATCH": patch_grant, "DELETE": delete_grant})
    r.add("/directoryObjects/{id}", {"GET": get_directory_object})
    r.add("/organization", {"GET": get_organization})
    return r


def _auth_error(exc: TokenError) -> GraphError:
    message = {
        "missing": "Access token is empty.",
        "expired": "Lifetime validation failed, the token is expired.",
        "audience": "Access token validation failure. Invalid audience.",
        "tenant": "Access token validation failure. Invalid issuer.",
        "signature": "Access token validation failure.",
    }.get(exc.reason, "IDX14100: JWT is not well formed.")
    return GraphError(401, "InvalidAuthenticationToken", message,
                      headers={"WWW-Authenticate": 'Bearer realm="", authorization_uri='
                               '"https://login.microsoftonline.com/common/oauth2/authorize", '
                               'client_id="00000003-0000-0000-c000-000000000000"'})


def routes(world: World, signer: TokenSigner) -> list[BaseRoute]:
    router = _router()

    async def endpoint(request: Request) -> Response:
        sub_path = request.url.path[len("/v1.0"):] or "/"
        try:
            try:
                claims = signer.verify(bearer_token(request.headers.get("authorization")),
                                       audiences=GRAPH_AUDIENCES, tenant_id=world.identity.tenant_id)
            except TokenError as exc:
                raise _auth_error(exc) from None
            found = router.resolve(sub_path)
            if found is None:
                segment = sub_path.strip("/").split("/")[0].split("(")[0]
                raise GraphError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")
            route, params = found
            handler = route.handlers.get(request.method)
            if handler is None:
                raise GraphError(405, "Request_BadRequest",
                                 "Specified HTTP method is not allowed for the request target.")
            return await handler(Call(request, params, world, signer, claims))
        except GraphError as err:
            return error_response(request, err)

    return [
        Route("/v1.0", endpoint, methods=["GET", "POST", "PATCH", "DELETE", "PUT"]),
        Route("/v1.0/{rest:path}", endpoint, methods=["GET", "POST", "PATCH", "DELETE", "PUT"]),
    ]
