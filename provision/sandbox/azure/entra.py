"""Entra ID (login.microsoftonline.com): OpenID discovery, JWKS, instance discovery, client-credentials tokens.

What MSAL (and so azure-identity's ClientSecretCredential with `authority=<sandbox url>` and
`disable_instance_discovery=True`) requests: `GET {authority}/{tenant}/v2.0/.well-known/openid-configuration`,
then `POST` to the `token_endpoint` it names, form-encoded `grant_type=client_credentials`, `client_id`,
`client_secret`, `scope=<resource>/.default` (plus `claims` when CAE is on, which is accepted and ignored).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..routing import base_url, json_response
from . import directory
from .directory import DICOM_APP_ID, GRAPH_APP_ID, find_sp_by_app_id

if TYPE_CHECKING:
    from ..tokens import TokenSigner
    from ..world import World

ARM_RESOURCES = ("https://management.azure.com", "https://management.core.windows.net")
GRAPH_RESOURCES = ("https://graph.microsoft.com", GRAPH_APP_ID)
DICOM_RESOURCES = ("https://dicom.healthcareapis.azure.com", DICOM_APP_ID)

# Application permissions the sandbox's own app holds on Microsoft Graph ("rights to everything").
SANDBOX_GRAPH_ROLES = [
    "Application.ReadWrite.All",
    "AppRoleAssignment.ReadWrite.All",
    "DelegatedPermissionGrant.ReadWrite.All",
    "Directory.ReadWrite.All",
    "Group.Read.All",
    "User.Read.All",
]

_NO_STORE = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}


class TenantConvertor(Convertor[str]):
    """The `{tenant:tenant}` path segment: only what can name a tenant at login.microsoftonline.com.

    A GUID, `common`, `organizations`, `consumers` (any case), or a domain name (labels separated by dots, the
    last one starting with a letter, e.g. `contoso.onmicrosoft.com`). So Entra's `/{tenant}/oauth2/token` does
    not swallow `/google/oauth2/token`, whatever order the APIs are mounted in.
    """

    regex = (
        r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
        r"|(?i:common|organizations|consumers)"
        r"|(?:[A-Za-z0-9-]+\.)+[A-Za-z][A-Za-z0-9-]*"
    )

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("tenant", TenantConvertor())
#: the tenant segment of a route path (see TenantConvertor)
TENANT = "{tenant:tenant}"


def _tenant_or_none(world: World, tenant: str) -> str | None:
    """The tenant id a path segment names (id or verified domain), else None."""
    t = tenant.lower()
    ident = world.identity
    if t in (ident.tenant_id.lower(), ident.domain.lower()):
        return ident.tenant_id
    return None


def aad_error(
    request: Request, status: int, error: str, code: int, message: str, extra: dict[str, Any] | None = None
) -> Response:
    now = datetime.now(UTC)
    trace_id = str(uuid.uuid4())
    correlation_id = request.headers.get("client-request-id") or str(uuid.uuid4())
    stamp = now.strftime("%Y-%m-%d %H:%M:%SZ")
    body = {
        "error": error,
        "error_description": (
            f"AADSTS{code}: {message} Trace ID: {trace_id} Correlation ID: {correlation_id} Timestamp: {stamp}"
        ),
        "error_codes": [code],
        "timestamp": stamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": f"{base_url(request)}/error?code={code}",
        **(extra or {}),
    }
    return json_response(body, status, headers={**_NO_STORE, "x-ms-request-id": trace_id})


def _tenant_not_found(request: Request, tenant: str) -> Response:
    return aad_error(
        request,
        400,
        "invalid_tenant",
        90002,
        f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into "
        "the correct cloud. Check with your subscription administrator, this may happen if there are no active "
        "subscriptions for the tenant.",
    )


def openid_configuration(base: str, tenant: str, *, v2: bool = True) -> dict[str, Any]:
    issuer_tenant = "{tenantid}" if tenant in ("common", "organizations", "consumers") else tenant
    suffix = "/v2.0" if v2 else ""
    return {
        "token_endpoint": f"{base}/{tenant}/oauth2{suffix}/token",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": f"{base}/{tenant}/discovery{suffix}/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"{base}/{issuer_tenant}{suffix}",
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": f"{base}/oidc/userinfo",
        "authorization_endpoint": f"{base}/{tenant}/oauth2{suffix}/authorize",
        "device_authorization_endpoint": f"{base}/{tenant}/oauth2{suffix}/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{base}/{tenant}/oauth2{suffix}/logout",
        "claims_supported": [
            "sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name",
            "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name",
            "tid", "ver", "at_hash", "c_hash", "email",
        ],
        "kerberos_endpoint": f"{base}/{tenant}/kerberos",
        "tenant_region_scope": "NA",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }


def issuer(base: str, tenant_id: str) -> str:
    return f"{base}/{tenant_id}/v2.0"


def routes(world: World, signer: TokenSigner) -> list[BaseRoute]:
    async def discovery_instance(request: Request) -> Response:
        base = base_url(request)
        host = base.split("://", 1)[1]
        tenant = world.identity.tenant_id
        return json_response(
            {
                "tenant_discovery_endpoint": f"{base}/{tenant}/v2.0/.well-known/openid-configuration",
                "api-version": "1.1",
                "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
            },
            headers={"Cache-Control": "max-age=86400, private"},
        )

    async def oidc(request: Request) -> Response:
        tenant = request.path_params["tenant"]
        v2 = request.url.path.endswith("/v2.0/.well-known/openid-configuration")
        if tenant.lower() in ("common", "organizations", "consumers"):
            return json_response(openid_configuration(base_url(request), tenant.lower(), v2=v2))
        tid = _tenant_or_none(world, tenant)
        if tid is None:
            return _tenant_not_found(request, tenant)
        return json_response(openid_configuration(base_url(request), tid, v2=v2))

    async def keys(request: Request) -> Response:
        tenant = request.path_params["tenant"]
        if tenant.lower() not in ("common", "organizations", "consumers") and _tenant_or_none(world, tenant) is None:
            return _tenant_not_found(request, tenant)
        return json_response(signer.jwks(issuer(base_url(request), world.identity.tenant_id)))

    async def token(request: Request) -> Response:
        tenant = request.path_params["tenant"]
        v2 = "/v2.0/" in request.url.path
        # application/x-www-form-urlencoded, parsed here (Starlette's form parser needs python-multipart)
        data = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace"),
                                             keep_blank_values=True).items()}
        if tenant.lower() in ("common", "organizations", "consumers"):
            return aad_error(
                request, 400, "invalid_request", 50059,
                "No tenant-identifying information found in either the request or implied by any provided "
                "credentials.",
            )
        tid = _tenant_or_none(world, tenant)
        if tid is None:
            return _tenant_not_found(request, tenant)
        grant_type = data.get("grant_type", "")
        if grant_type != "client_credentials":
            return aad_error(
                request, 400, "unsupported_grant_type", 70003,
                f"The app requested an unsupported grant type '{grant_type}'. The sandbox issues tokens only "
                "for the client_credentials grant.",
            )
        client_id = data.get("client_id", "")
        if not client_id:
            return aad_error(
                request, 400, "invalid_request", 900144,
                "The request body must contain the following parameter: 'client_id'.",
            )
        ident = world.identity
        known_apps = {a["appId"].lower() for a in directory.collection(world, "applications").values()}
        if client_id.lower() not in known_apps:
            return aad_error(
                request, 400, "unauthorized_client", 700016,
                f"Application with identifier '{client_id}' was not found in the directory '{ident.domain}'. "
                "This can happen if the application has not been installed by the administrator of the tenant "
                "or consented to by any user in the tenant. You may have sent your authentication request to "
                "the wrong tenant.",
            )
        secret = data.get("client_secret")
        if secret is None:
            return aad_error(
                request, 401, "invalid_client", 7000216,
                "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' "
                "grant type.",
            )
        if client_id.lower() != ident.client_id.lower() or secret != ident.client_secret:
            return aad_error(
                request, 401, "invalid_client", 7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client "
                f"secret value, not the client secret ID, for a secret added to app '{client_id}'.",
            )
        if v2:
            scopes = data.get("scope", "").split()
            resources = [s[: -len("/.default")] for s in scopes if s.endswith("/.default")]
            others = [s for s in scopes
                      if not s.endswith("/.default") and s not in ("offline_access", "openid", "profile")]
            if len(resources) != 1 or others:
                bad = (others or scopes or [""])[0]
                return aad_error(
                    request, 400, "invalid_scope", 1002012,
                    f"The provided value for scope {bad} is not valid. Client credential flows must have a scope "
                    "value with /.default suffixed to the resource identifier (application ID URI).",
                )
            resource = resources[0]
        else:
            resource = data.get("resource", "")
        audience = _audience(world, resource)
        if audience is None:
            return aad_error(
                request, 400, "invalid_resource", 500011,
                f"The resource principal named {resource} was not found in the tenant named {ident.domain}. "
                "This can happen if the application has not been installed by the administrator of the tenant "
                "or consented to by any user in the tenant. You might have sent your authentication request to "
                "the wrong tenant.",
            )
        roles = SANDBOX_GRAPH_ROLES if audience.rstrip("/") in GRAPH_RESOURCES else None
        access_token = signer.issue(
            issuer=issuer(base_url(request), tid),
            audience=audience,
            tenant_id=tid,
            app_id=ident.client_id,
            object_id=ident.sp_object_id,
            roles=roles,
            now=world.now(),
        )
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "expires_in": 3599,
            "ext_expires_in": 3599,
            "access_token": access_token,
        }
        if not v2:
            body.update(expires_on=str(int(world.now()) + 3599), resource=resource)
        return json_response(body, headers={**_NO_STORE, "x-ms-request-id": str(uuid.uuid4())})

    return [
        Route("/common/discovery/instance", discovery_instance, methods=["GET"]),
        Route(f"/{TENANT}/v2.0/.well-known/openid-configuration", oidc, methods=["GET"]),
        Route(f"/{TENANT}/.well-known/openid-configuration", oidc, methods=["GET"]),
        Route(f"/{TENANT}/discovery/v2.0/keys", keys, methods=["GET"]),
        Route(f"/{TENANT}/discovery/keys", keys, methods=["GET"]),
        Route(f"/{TENANT}/oauth2/v2.0/token", token, methods=["POST"]),
        Route(f"/{TENANT}/oauth2/token", token, methods=["POST"]),
    ]


def _audience(world: World, resource: str) -> str | None:
    """The `aud` a token for `resource` carries, or None when no such resource exists in the tenant."""
    bare = resource.rstrip("/").lower()
    if bare in ARM_RESOURCES or bare in GRAPH_RESOURCES:
        return resource
    if bare in DICOM_RESOURCES:
        return resource if find_sp_by_app_id(world, DICOM_APP_ID) is not None else None
    for app in directory.collection(world, "applications").values():
        if bare == app["appId"].lower() or bare in (u.rstrip("/").lower() for u in app.get("identifierUris", [])):
            return resource
    return None
