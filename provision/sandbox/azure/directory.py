"""Directory objects of the sandbox tenant (Entra ID as Microsoft Graph v1.0 shows it): defaults and seed.

Pure builders: they return plain dicts shaped like Graph's JSON. Keys starting with "_" are sandbox
bookkeeping (creation time) and are never rendered.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..clock import iso

if TYPE_CHECKING:
    from ..world import World

COLLECTIONS = ("applications", "servicePrincipals", "users", "groups", "oauth2PermissionGrants")

MICROSOFT_TENANT_ID = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"  # owner of Microsoft's first-party apps

DICOM_APP_ID = "75e725bf-66ce-4cea-9b9a-5c4caae57f33"
DICOM_SCOPE_ID = "e69ab058-b8ae-4c0f-b687-5d97888ddccb"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"

_NS = uuid.UUID("6f0c1d7e-2a51-4c3b-9d0e-5a4b3c2d1e0f")


def _fixed(name: str) -> str:
    return str(uuid.uuid5(_NS, name))


ALICE_ID = _fixed("user:alice")
BOB_ID = _fixed("user:bob")
DICOM_READERS_GROUP_ID = _fixed("group:dicom-readers")
GRAPH_SP_ID = _fixed("sp:microsoft-graph")

_SEED_AGE = 30 * 86400  # seeded objects were "created" long ago (no replication delay)


def _scope(id_: str, value: str, admin_name: str, admin_desc: str, type_: str = "User") -> dict[str, Any]:
    return {
        "adminConsentDescription": admin_desc,
        "adminConsentDisplayName": admin_name,
        "id": id_,
        "isEnabled": True,
        "type": type_,
        "userConsentDescription": admin_desc,
        "userConsentDisplayName": admin_name,
        "value": value,
    }


FIRST_PARTY_APPS: dict[str, dict[str, Any]] = {
    DICOM_APP_ID: {
        "displayName": "Azure API for DICOM",
        "servicePrincipalNames": [DICOM_APP_ID, "https://dicom.healthcareapis.azure.com"],
        "oauth2PermissionScopes": [
            _scope(
                DICOM_SCOPE_ID,
                "Dicom.ReadWrite",
                "Read and write DICOM data",
                "Allows the app to read and write DICOM data on behalf of the signed-in user.",
            )
        ],
    },
    GRAPH_APP_ID: {
        "displayName": "Microsoft Graph",
        "servicePrincipalNames": [GRAPH_APP_ID, "https://graph.microsoft.com", "https://canary.graph.microsoft.com"],
        "oauth2PermissionScopes": [
            _scope("e1fe6dd8-ba31-4d61-89e7-88639da4683d", "User.Read", "Sign in and read user profile",
                   "Allows users to sign-in to the app, and allows the app to read the profile of signed-in users."),
            _scope("37f7f235-527c-4136-accd-4a02d197296e", "openid", "Sign users in",
                   "Allows users to sign in to the app with their work or school accounts."),
            _scope("14dad69e-099b-42c9-810b-d002981feec1", "profile", "View users' basic profile",
                   "Allows the app to see your users' basic profile."),
            _scope("64a6cdd6-aab1-4aaf-94b8-3cc8405e90d0", "email", "View users' email address",
                   "Allows the app to read your users' primary email address."),
            _scope("7427e0e9-2fba-42fe-b0c0-848c9e6a8182", "offline_access", "Maintain access to data you have "
                   "given it access to", "Allows the app to see and update the data you gave it access to."),
        ],
    },
}


def application_defaults() -> dict[str, Any]:
    """What `POST /applications` fills in for properties the request did not send."""
    return {
        "id": None,
        "deletedDateTime": None,
        "appId": None,
        "applicationTemplateId": None,
        "disabledByMicrosoftStatus": None,
        "createdDateTime": None,
        "displayName": None,
        "description": None,
        "groupMembershipClaims": None,
        "identifierUris": [],
        "isDeviceOnlyAuthSupported": None,
        "isFallbackPublicClient": None,
        "nativeAuthenticationApisEnabled": None,
        "notes": None,
        "publisherDomain": None,
        "serviceManagementReference": None,
        "signInAudience": "AzureADandPersonalMicrosoftAccount",
        "tags": [],
        "tokenEncryptionKeyId": None,
        "uniqueName": None,
        "samlMetadataUrl": None,
        "defaultRedirectUri": None,
        "certification": None,
        "optionalClaims": None,
        "requestSignatureVerification": None,
        "servicePrincipalLockConfiguration": None,
        "addIns": [],
        "api": {
            "acceptMappedClaims": None,
            "knownClientApplications": [],
            "requestedAccessTokenVersion": 2,
            "oauth2PermissionScopes": [],
            "preAuthorizedApplications": [],
        },
        "appRoles": [],
        "info": {
            "logoUrl": None,
            "marketingUrl": None,
            "privacyStatementUrl": None,
            "supportUrl": None,
            "termsOfServiceUrl": None,
        },
        "keyCredentials": [],
        "parentalControlSettings": {"countriesBlockedForMinors": [], "legalAgeGroupRule": "Allow"},
        "passwordCredentials": [],
        "publicClient": {"redirectUris": []},
        "requiredResourceAccess": [],
        "verifiedPublisher": {"displayName": None, "verifiedPublisherId": None, "addedDateTime": None},
        "web": {
            "homePageUrl": None,
            "logoutUrl": None,
            "redirectUris": [],
            "implicitGrantSettings": {"enableAccessTokenIssuance": False, "enableIdTokenIssuance": False},
            "redirectUriSettings": [],
        },
        "spa": {"redirectUris": []},
    }


# Properties a client may write (PATCH/POST); everything else in application_defaults() is read-only.
APPLICATION_WRITABLE = frozenset(
    {
        "displayName", "description", "signInAudience", "identifierUris", "web", "spa", "publicClient", "api",
        "requiredResourceAccess", "appRoles", "tags", "notes", "info", "optionalClaims", "groupMembershipClaims",
        "isFallbackPublicClient", "isDeviceOnlyAuthSupported", "serviceManagementReference", "uniqueName",
        "parentalControlSettings", "tokenEncryptionKeyId", "defaultRedirectUri", "addIns", "keyCredentials",
        "servicePrincipalLockConfiguration", "nativeAuthenticationApisEnabled", "samlMetadataUrl", "certification",
        "requestSignatureVerification",
    }
)


def merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """OData PATCH: primitives and collections replace; complex values merge recursively."""
    for key, value in patch.items():
        current = target.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            merge_patch(current, value)
        else:
            target[key] = copy.deepcopy(value)


def new_application(
    body: dict[str, Any], *, object_id: str, app_id: str, created: str, created_ts: float, domain: str
) -> dict[str, Any]:
    app = application_defaults()
    merge_patch(app, body)
    app.update(
        id=object_id,
        appId=app_id,
        createdDateTime=created,
        publisherDomain=domain,
        _created=created_ts,
    )
    return app


def service_principal_defaults() -> dict[str, Any]:
    return {
        "id": None,
        "deletedDateTime": None,
        "accountEnabled": True,
        "alternativeNames": [],
        "appDisplayName": None,
        "appDescription": None,
        "appId": None,
        "applicationTemplateId": None,
        "appOwnerOrganizationId": None,
        "appRoleAssignmentRequired": False,
        "createdDateTime": None,
        "description": None,
        "disabledByMicrosoftStatus": None,
        "displayName": None,
        "homepage": None,
        "loginUrl": None,
        "logoutUrl": None,
        "notes": None,
        "notificationEmailAddresses": [],
        "preferredSingleSignOnMode": None,
        "preferredTokenSigningKeyThumbprint": None,
        "replyUrls": [],
        "servicePrincipalNames": [],
        "servicePrincipalType": "Application",
        "signInAudience": None,
        "tags": [],
        "tokenEncryptionKeyId": None,
        "info": {
            "logoUrl": None,
            "marketingUrl": None,
            "privacyStatementUrl": None,
            "supportUrl": None,
            "termsOfServiceUrl": None,
        },
        "samlSingleSignOnSettings": None,
        "addIns": [],
        "appRoles": [],
        "keyCredentials": [],
        "oauth2PermissionScopes": [],
        "passwordCredentials": [],
        "resourceSpecificApplicationPermissions": [],
        "verifiedPublisher": {"displayName": None, "verifiedPublisherId": None, "addedDateTime": None},
    }


SERVICE_PRINCIPAL_WRITABLE = frozenset(
    {
        "accountEnabled", "alternativeNames", "appRoleAssignmentRequired", "description", "homepage", "loginUrl",
        "logoutUrl", "notes", "notificationEmailAddresses", "preferredSingleSignOnMode", "replyUrls", "tags",
        "appDescription", "displayName", "info", "keyCredentials", "samlSingleSignOnSettings",
        "servicePrincipalNames", "appId", "appRoles", "oauth2PermissionScopes", "preferredTokenSigningKeyThumbprint",
    }
)


def service_principal_for_app(
    app: dict[str, Any], *, object_id: str, tenant_id: str, created: str, created_ts: float
) -> dict[str, Any]:
    """The service principal Entra creates for one of the tenant's own applications."""
    sp = service_principal_defaults()
    sp.update(
        id=object_id,
        appId=app["appId"],
        appDisplayName=app["displayName"],
        displayName=app["displayName"],
        appOwnerOrganizationId=tenant_id,
        createdDateTime=created,
        signInAudience=app.get("signInAudience"),
        servicePrincipalNames=[app["appId"], *app.get("identifierUris", [])],
        replyUrls=list(app.get("web", {}).get("redirectUris", [])) + list(app.get("spa", {}).get("redirectUris", [])),
        appRoles=copy.deepcopy(app.get("appRoles", [])),
        oauth2PermissionScopes=copy.deepcopy(app.get("api", {}).get("oauth2PermissionScopes", [])),
        tags=list(app.get("tags", [])),
        _created=created_ts,
    )
    return sp


def service_principal_first_party(
    app_id: str, *, object_id: str, created: str, created_ts: float
) -> dict[str, Any]:
    """The service principal of a Microsoft first-party application (e.g. Azure API for DICOM)."""
    spec = FIRST_PARTY_APPS[app_id]
    sp = service_principal_defaults()
    sp.update(
        id=object_id,
        appId=app_id,
        appDisplayName=spec["displayName"],
        displayName=spec["displayName"],
        appOwnerOrganizationId=MICROSOFT_TENANT_ID,
        createdDateTime=created,
        signInAudience="AzureADMultipleOrgs",
        servicePrincipalNames=list(spec["servicePrincipalNames"]),
        oauth2PermissionScopes=copy.deepcopy(spec["oauth2PermissionScopes"]),
        verifiedPublisher={"displayName": None, "verifiedPublisherId": None, "addedDateTime": None},
        _created=created_ts,
    )
    return sp


def user(id_: str, given: str, surname: str, upn: str, mail: str, created_ts: float) -> dict[str, Any]:
    return {
        "id": id_,
        "businessPhones": [],
        "displayName": f"{given} {surname}",
        "givenName": given,
        "jobTitle": None,
        "mail": mail,
        "mobilePhone": None,
        "officeLocation": None,
        "preferredLanguage": None,
        "surname": surname,
        "userPrincipalName": upn,
        "_created": created_ts,
    }


def group(id_: str, name: str, nickname: str, created: str, created_ts: float) -> dict[str, Any]:
    return {
        "id": id_,
        "deletedDateTime": None,
        "classification": None,
        "createdDateTime": created,
        "creationOptions": [],
        "description": None,
        "displayName": name,
        "expirationDateTime": None,
        "groupTypes": [],
        "isAssignableToRole": None,
        "mail": None,
        "mailEnabled": False,
        "mailNickname": nickname,
        "membershipRule": None,
        "membershipRuleProcessingState": None,
        "onPremisesSyncEnabled": None,
        "proxyAddresses": [],
        "renewedDateTime": created,
        "resourceBehaviorOptions": [],
        "resourceProvisioningOptions": [],
        "securityEnabled": True,
        "securityIdentifier": None,
        "visibility": None,
        "_created": created_ts,
    }


def seed(world: World, *, dicom_sp: bool) -> None:
    """Populate a fresh tenant: the sandbox's own app, Microsoft Graph, DICOM (optional), users, a group."""
    ident = world.identity
    ts = world.now() - _SEED_AGE
    created = iso(ts)
    apps = collection(world, "applications")
    sps = collection(world, "servicePrincipals")
    own_app = new_application(
        {"displayName": "provision-sandbox", "signInAudience": "AzureADMyOrg"},
        object_id=ident.app_object_id,
        app_id=ident.client_id,
        created=created,
        created_ts=ts,
        domain=ident.domain,
    )
    apps[own_app["id"]] = own_app
    own_sp = service_principal_for_app(
        own_app, object_id=ident.sp_object_id, tenant_id=ident.tenant_id, created=created, created_ts=ts
    )
    sps[own_sp["id"]] = own_sp
    graph_sp = service_principal_first_party(GRAPH_APP_ID, object_id=GRAPH_SP_ID, created=created, created_ts=ts)
    sps[graph_sp["id"]] = graph_sp
    if dicom_sp:
        ensure_dicom_sp(world, True, created_ts=ts)
    users = collection(world, "users")
    for uid, given, surname in ((ALICE_ID, "Alice", "Smith"), (BOB_ID, "Bob", "Jones")):
        login = given.lower()
        users[uid] = user(uid, given, surname, f"{login}@{ident.domain}", f"{login}@contoso.com", ts)
    collection(world, "groups")[DICOM_READERS_GROUP_ID] = group(
        DICOM_READERS_GROUP_ID, "DICOM Readers", "dicom-readers", created, ts
    )
    ensure_test_users(world, world.config.test_users)
    world.mark_dirty()


def ensure_test_users(world: World, count: int) -> None:
    """Users user1..user{count} (`userK@{domain}`, mail `userK@contoso.com`), for plans with many access entries."""
    users = collection(world, "users")
    ts = world.now() - _SEED_AGE
    for k in range(1, count + 1):
        uid = _fixed(f"user:user{k}")
        if uid not in users:
            users[uid] = user(uid, "User", str(k), f"user{k}@{world.identity.domain}", f"user{k}@contoso.com", ts)
            world.mark_dirty()


def empty_state() -> dict[str, Any]:
    return {"directory": {name: {} for name in COLLECTIONS}}


def collection(world: World, name: str) -> dict[str, dict[str, Any]]:
    return world.state["directory"][name]


def principal(world: World, object_id: str) -> tuple[str, dict[str, Any]] | None:
    """(principalType, object) of a user, group or service principal with this object id."""
    oid = object_id.lower()
    for coll, ptype in (("users", "User"), ("groups", "Group"), ("servicePrincipals", "ServicePrincipal")):
        obj = collection(world, coll).get(oid)
        if obj is not None:
            return ptype, obj
    return None


def directory_objects(world: World) -> Iterator[tuple[str, dict[str, Any]]]:
    """(collection, object) for every object in the directory, collection by collection."""
    for coll in COLLECTIONS:
        for obj in collection(world, coll).values():
            yield coll, obj


def dicom_sp_object_id(tenant_id: str) -> str:
    return str(uuid.uuid5(uuid.UUID(tenant_id), "sp:" + DICOM_APP_ID))


def find_sp_by_app_id(world: World, app_id: str) -> dict[str, Any] | None:
    app_id = app_id.lower()
    return next((sp for sp in collection(world, "servicePrincipals").values() if sp["appId"].lower() == app_id), None)


def ensure_dicom_sp(world: World, present: bool, *, created_ts: float | None = None) -> None:
    """Make the first-party DICOM service principal present or absent (its grants go with it)."""
    sps = collection(world, "servicePrincipals")
    existing = find_sp_by_app_id(world, DICOM_APP_ID)
    if present and existing is None:
        ts = world.now() - _SEED_AGE if created_ts is None else created_ts
        sp = service_principal_first_party(
            DICOM_APP_ID, object_id=dicom_sp_object_id(world.identity.tenant_id), created=iso(ts), created_ts=ts
        )
        sps[sp["id"]] = sp
        world.mark_dirty()
    elif not present and existing is not None:
        delete_service_principal(world, existing["id"])


def delete_service_principal(world: World, object_id: str) -> None:
    collection(world, "servicePrincipals").pop(object_id, None)
    grants = collection(world, "oauth2PermissionGrants")
    for gid in [g for g, v in grants.items() if object_id in (v["clientId"], v["resourceId"])]:
        del grants[gid]
    world.mark_dirty()


def managed_identity_sp(
    name: str, resource_id: str, *, object_id: str, created: str, created_ts: float
) -> dict[str, Any]:
    """The service principal behind a resource's system-assigned managed identity."""
    sp = service_principal_defaults()
    app_id = str(uuid.uuid4())
    sp.update(
        id=object_id,
        appId=app_id,
        displayName=name,
        alternativeNames=["isExplicit=False", resource_id],
        appOwnerOrganizationId=MICROSOFT_TENANT_ID,
        createdDateTime=created,
        servicePrincipalNames=[app_id, f"https://identity.azure.net/{uuid.uuid4().hex}"],
        servicePrincipalType="ManagedIdentity",
        signInAudience=None,
        _created=created_ts,
    )
    return sp
