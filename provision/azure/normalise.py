"""Pure normalisers: an Azure REST body (ARM or Graph JSON, as the service sends it) -> plain data to diff.

Each function takes the JSON object exactly as the wire carries it (the published examples in the specs are
valid input) and returns a flat-ish dict with snake_case keys. Lists whose order the service does not keep are
sorted here only for display; the resources' schemas compare them as sets.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

#: "Azure API for DICOM", the first-party application whose delegated scope OHIF asks for
DICOM_API_APP_ID = "75e725bf-66ce-4cea-9b9a-5c4caae57f33"
DICOM_SCOPE = "Dicom.ReadWrite"


_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def is_guid(value: str) -> bool:
    return bool(_GUID.match(value))


def location(value: str | None) -> str | None:
    """ARM accepts "West Europe" and answers "westeurope": compare the canonical form."""
    if value is None:
        return None
    return "".join(value.split()).lower()


def _props(body: Mapping[str, Any]) -> Mapping[str, Any]:
    return body.get("properties") or {}


def _tags(body: Mapping[str, Any]) -> dict[str, str]:
    return dict(body.get("tags") or {})


def last_segment(name: str) -> str:
    """Child resources come back with composite names ("ws/dicom"); keep the child's own name."""
    return name.rsplit("/", 1)[-1]


def guid_of(resource_id: str | None) -> str | None:
    """The last path segment of an ARM id, lower-cased (role definition ids come with varying prefixes)."""
    if not resource_id:
        return None
    return resource_id.rstrip("/").rsplit("/", 1)[-1].lower()


# --- Azure Resource Manager -------------------------------------------------------------------------------

#: provisioning states in which a resource's last operation has ended (it accepts a new write)
SETTLED_STATES = frozenset({"Succeeded", "Failed", "Canceled"})
#: ... of which these mean it ended badly
FAILED_STATES = frozenset({"Failed", "Canceled"})
#: provisioning states of an operation still running, by what it does (any other unsettled state: an update)
RUNNING_STATES = {"Creating": "create", "Accepted": "create", "Provisioning": "create", "Updating": "update",
                  "Deleting": "delete"}


def modified_at(body: Mapping[str, Any]) -> float | None:
    """`systemData.lastModifiedAt` in seconds since the epoch: when the last write (a PUT starting an operation)
    was accepted; None when the service does not say (resource groups) or says something unreadable."""
    stamp = (body.get("systemData") or {}).get("lastModifiedAt")
    if not isinstance(stamp, str):
        return None
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def resource_group(body: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": body.get("id"),
        "name": body.get("name"),
        "location": location(body.get("location")),
        "tags": _tags(body),
        "provisioning_state": _props(body).get("provisioningState"),
        "modified_at": modified_at(body),
    }


def workspace(body: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": body.get("id"),
        "name": last_segment(body.get("name") or ""),
        "location": location(body.get("location")),
        "tags": _tags(body),
        "provisioning_state": _props(body).get("provisioningState"),
        "modified_at": modified_at(body),
    }


def cors(configuration: Mapping[str, Any] | None) -> dict[str, Any]:
    """`corsConfiguration`; absent means what the service echoes for `properties: {}`."""
    configuration = configuration or {}
    return {
        "origins": sorted(configuration.get("origins") or []),
        "headers": sorted(configuration.get("headers") or []),
        "methods": sorted(configuration.get("methods") or []),
        "max_age": configuration.get("maxAge"),
        "allow_credentials": bool(configuration.get("allowCredentials") or False),
    }


def dicom_service(body: Mapping[str, Any]) -> dict[str, Any]:
    props = _props(body)
    auth = props.get("authenticationConfiguration") or {}
    return {
        "id": body.get("id"),
        "name": last_segment(body.get("name") or ""),
        "location": location(body.get("location")),
        "tags": _tags(body),
        "provisioning_state": props.get("provisioningState"),
        "modified_at": modified_at(body),
        "service_url": props.get("serviceUrl") or None,
        "cors": cors(props.get("corsConfiguration")),
        "authority": auth.get("authority"),
        "audiences": sorted(auth.get("audiences") or []),
    }


def role_definition(body: Mapping[str, Any]) -> dict[str, Any]:
    props = _props(body)
    return {
        "id": body.get("id"),
        "guid": guid_of(body.get("id")) or (body.get("name") or "").lower(),
        "role_name": props.get("roleName"),
        "type": props.get("type"),
    }


def role_assignment(body: Mapping[str, Any]) -> dict[str, Any]:
    props = _props(body)
    return {
        "id": body.get("id"),
        "name": body.get("name"),
        "scope": props.get("scope"),
        "principal_id": (props.get("principalId") or "").lower() or None,
        "principal_type": props.get("principalType"),
        "role_definition_id": props.get("roleDefinitionId"),
        "role_definition": guid_of(props.get("roleDefinitionId")),
        "description": props.get("description"),
    }


def same_scope(a: str | None, b: str | None) -> bool:
    """ARM ids are case-insensitive; a leading or trailing '/' is not significant."""
    return (a or "").strip("/").lower() == (b or "").strip("/").lower()


# --- Microsoft Graph -----------------------------------------------------------------------------------------


def permission(resource_app_id: str, permission_id: str, kind: str = "Scope") -> str:
    """One entry of `requiredResourceAccess` as a comparable string: `{resourceAppId}/{id}/{type}`."""
    return f"{resource_app_id}/{permission_id}/{kind}".lower()


def application(body: Mapping[str, Any]) -> dict[str, Any]:
    web = body.get("web") or {}
    implicit = web.get("implicitGrantSettings") or {}
    spa = body.get("spa") or {}
    permissions = [
        permission(entry.get("resourceAppId") or "", access.get("id") or "", access.get("type") or "")
        for entry in body.get("requiredResourceAccess") or []
        for access in entry.get("resourceAccess") or []
    ]
    return {
        "id": body.get("id"),
        "app_id": body.get("appId"),
        "unique_name": body.get("uniqueName"),
        "display_name": body.get("displayName"),
        "sign_in_audience": body.get("signInAudience"),
        "spa_redirect_uris": sorted(spa.get("redirectUris") or []),
        "web_redirect_uris": sorted(web.get("redirectUris") or []),
        "logout_url": web.get("logoutUrl"),
        "id_token_issuance": bool(implicit.get("enableIdTokenIssuance") or False),
        "access_token_issuance": bool(implicit.get("enableAccessTokenIssuance") or False),
        "permissions": sorted(permissions),
        "tags": sorted(body.get("tags") or []),
    }


def service_principal(body: Mapping[str, Any]) -> dict[str, Any]:
    scopes = {
        scope.get("value"): (scope.get("id") or "").lower()
        for scope in body.get("oauth2PermissionScopes") or []
        if scope.get("value")
    }
    return {
        "id": body.get("id"),
        "app_id": body.get("appId"),
        "display_name": body.get("displayName"),
        "type": body.get("servicePrincipalType"),
        "tags": sorted(body.get("tags") or []),
        "scopes": scopes,
    }


def permission_grant(body: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": body.get("id"),
        "client_id": body.get("clientId"),
        "resource_id": body.get("resourceId"),
        "consent_type": body.get("consentType"),
        "principal_id": body.get("principalId"),
        "scopes": sorted((body.get("scope") or "").split()),
    }


def user(body: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": body.get("id"),
        "user_principal_name": body.get("userPrincipalName"),
        "mail": body.get("mail"),
        "display_name": body.get("displayName"),
    }


def group(body: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": body.get("id"), "display_name": body.get("displayName")}
