"""Interactive sign-in in the sandbox's Entra ID: what a browser viewer (OHIF) does against login.microsoftonline.com.

Endpoints (v2.0; the v1 paths of discovery and keys are wrapped too):

- `GET /{tenant}/oauth2/v2.0/authorize`: authorization code with PKCE (`response_type=code`) and the implicit
  flow (`id_token`, `token`, `id_token token`); `response_mode` query, fragment or form_post.
- `POST /{tenant}/oauth2/v2.0/token`: redeems codes (`authorization_code`) and refresh tokens; every other
  grant goes to `entra.py`'s client-credentials endpoint unchanged.
- `GET /{tenant}/oauth2/v2.0/logout`: ends the sandbox session and returns to `post_logout_redirect_uri`.
- discovery and JWKS of `entra.py`, answered with `Access-Control-Allow-Origin: *` as Entra does, because the
  viewer fetches them from its own origin.

What Entra ID enforces for a viewer app, and the errors it gives (codes as Entra's; wording close to Entra's):

- the client id must be an application of the tenant (AADSTS700016), the redirect URI must be registered on
  one of its platforms, exactly (AADSTS50011); the implicit flow needs the matching `implicitGrantSettings`
  (AADSTS700054 for id_token, AADSTS700051 for token), and an id_token needs a nonce (AADSTS900144);
- a code issued to a `spa` redirect URI is redeemed only cross-origin (AADSTS9002327), only with PKCE
  (AADSTS9002325), and the token response then carries `Access-Control-Allow-Origin`; a code of a `web`
  redirect URI needs a client secret (AADSTS7000218) and is refused cross-origin (AADSTS9002326, no CORS
  header), so a viewer registered on the wrong platform breaks in the browser as it does in Azure;
- the sign-in audience: `/common` and `/organizations` are refused for single-tenant apps (AADSTS50194), and
  the sandbox has no personal accounts (`/consumers`: AADSTS500202);
- scopes: one resource per request (AADSTS28000), the resource's service principal must exist in the tenant
  (AADSTS650052), the scope must be one it publishes (AADSTS70011), and a delegated scope needs consent, an
  `oauth2PermissionGrant` (AllPrincipals, or Principal for the user) of the app's service principal on the
  resource (AADSTS65001; the sandbox has no consent page).

Users sign in without a password: `login_hint=<UPN or mail>` picks the user at once; otherwise a small
"Pick an account" page lists the tenant's users (one click). The choice is kept in a session cookie, so
`prompt=none` (silent renew) works afterwards and answers `login_required` before it.

Tokens are RS256-signed with the sandbox's key (same JWKS): id tokens (v2.0: `iss` = discovery issuer,
`aud` = client id, `nonce`, `oid`, `tid`, `preferred_username`, `at_hash`/`c_hash`) and access tokens carrying
the user's `oid` and `scp` (v1.0 shape for Microsoft resources, like Entra issues for the DICOM API).
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ..routing import base_url, json_response
from ..tokens import TokenError
from . import directory, entra
from .directory import DICOM_APP_ID, GRAPH_APP_ID, find_sp_by_app_id

if TYPE_CHECKING:
    from ..tokens import TokenSigner
    from ..world import World

OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
CODE_LIFETIME = 600
REFRESH_LIFETIME = 24 * 3600  # SPA refresh tokens live 24 hours
SESSION_COOKIE = "sandbox_session"
SESSION_AUDIENCE = "urn:provision-sandbox:session"
MULTI_TENANT = {"common", "organizations", "consumers"}
#: resource identifiers (App ID URIs and app ids) of the Microsoft APIs the sandbox's directory knows
RESOURCE_APP_IDS = {
    "https://dicom.healthcareapis.azure.com": DICOM_APP_ID,
    DICOM_APP_ID: DICOM_APP_ID,
    "https://graph.microsoft.com": GRAPH_APP_ID,
    GRAPH_APP_ID: GRAPH_APP_ID,
}
_NO_STORE = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}
Endpoint = Callable[[Request], Awaitable[Response]]


class SignInError(Exception):
    """An AADSTS error: shown on an error page, or sent to the redirect URI when that one is trusted."""

    def __init__(self, code: int, error: str, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.error = error
        self.message = message
        self.status = status

    @property
    def description(self) -> str:
        return f"AADSTS{self.code}: {self.message}"


@dataclass
class Grant:
    """What an authorization code or refresh token stands for."""

    client_id: str
    user_id: str
    tenant_id: str
    scopes: list[str]
    resource: str | None  # App ID URI of the resource, None for sign-in only
    redirect_uri: str
    platform: str  # "spa" | "web" | "publicClient"
    nonce: str | None = None
    code_challenge: str | None = None
    code_challenge_method: str | None = None
    expires: float = 0.0
    auth_time: int = field(default_factory=lambda: int(time.time()))
    session_id: str = field(default_factory=lambda: str(uuid.uuid4()))


# --- pure helpers -------------------------------------------------------------------------------------------

def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def half_hash(value: str) -> str:
    """`at_hash` / `c_hash`: the left half of SHA-256 of the ASCII value, base64url (RS256 tokens)."""
    return _b64url(hashlib.sha256(value.encode("ascii")).digest()[:16])


def pkce_matches(verifier: str, challenge: str, method: str | None) -> bool:
    if (method or "plain") == "S256":
        return secrets.compare_digest(_b64url(hashlib.sha256(verifier.encode("ascii")).digest()), challenge)
    return secrets.compare_digest(verifier, challenge)


def redirect_platform(app: Mapping[str, Any], redirect_uri: str) -> str | None:
    """The platform (`spa`, `web`, `publicClient`) `redirect_uri` is registered on, spa first; None if none."""
    for platform in ("spa", "web", "publicClient"):
        if redirect_uri in ((app.get(platform) or {}).get("redirectUris") or []):
            return platform
    return None


def split_scopes(scope: str) -> tuple[list[str], dict[str, list[str]]]:
    """OIDC scopes, and resource scopes grouped by resource (`https://x/Scope`, `{appId}/Scope`, bare = Graph)."""
    oidc: list[str] = []
    resources: dict[str, list[str]] = {}
    for item in scope.split():
        if item.lower() in OIDC_SCOPES:
            oidc.append(item.lower())
            continue
        if "/" in item:
            resource, _, value = item.rpartition("/")
        else:
            resource, value = "https://graph.microsoft.com", item
        resources.setdefault(resource.rstrip("/"), []).append(value)
    return oidc, resources


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _iso_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


# --- pages --------------------------------------------------------------------------------------------------

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;background:#f2f2f2;margin:0}}main{{background:#fff;max-width:440px;
margin:60px auto;padding:32px 44px;box-shadow:0 2px 6px rgba(0,0,0,.2)}}h1{{font-size:24px;font-weight:600}}
a.account{{display:block;padding:12px;margin:8px 0;border:1px solid #ccc;color:#000;text-decoration:none}}
a.account:hover{{background:#eee}}small{{color:#666}}code{{word-break:break-all}}</style></head>
<body><main><p><b>Microsoft</b> <small>(provision sandbox)</small></p>{body}</main></body></html>"""


def account_page(users: Sequence[Mapping[str, Any]], link: Callable[[str], str], client_name: str) -> str:
    items = "".join(
        f'<a class="account" href="{html.escape(link(u["userPrincipalName"]))}">'
        f'{html.escape(u["displayName"])}<br><small>{html.escape(u["userPrincipalName"])}</small></a>'
        for u in users
    )
    body = (f"<h1>Pick an account</h1><p>to continue to {html.escape(client_name)}</p>{items}"
            "<p><small>Sandbox users sign in without a password.</small></p>")
    return _PAGE.format(title="Sign in to your account", body=body)


def error_page(error: SignInError, request_id: str) -> str:
    body = (
        "<h1>Sorry, but we&#8217;re having trouble signing you in.</h1>"
        f'<p id="error">{html.escape(error.description)}</p>'
        f"<p><small>Request Id: {request_id}<br>Timestamp: {_iso_now()}</small></p>"
    )
    return _PAGE.format(title="Sign in to your account", body=body)


def form_post_page(action: str, fields: Mapping[str, str]) -> str:
    inputs = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in fields.items()
    )
    return (f'<!doctype html><html><body onload="document.forms[0].submit()"><form method="post" '
            f'action="{html.escape(action)}">{inputs}<noscript><button>Continue</button></noscript></form>'
            "</body></html>")


# --- the service --------------------------------------------------------------------------------------------

class SignIn:
    """State (codes, refresh tokens) and logic of interactive sign-in for one world."""

    def __init__(self, world: World, signer: TokenSigner) -> None:
        self.world = world
        self.signer = signer
        self.codes: dict[str, Grant] = {}
        self.refresh_tokens: dict[str, Grant] = {}

    # -- directory look-ups ---------------------------------------------------------------------------------

    def tenant(self, segment: str) -> str:
        ident = self.world.identity
        if segment.lower() in (ident.tenant_id.lower(), ident.domain.lower()):
            return ident.tenant_id
        raise SignInError(90002, "invalid_tenant", f"Tenant '{segment}' not found. Check to make sure you have "
                          "the correct tenant ID and are signing into the correct cloud.")

    def application(self, client_id: str) -> dict[str, Any]:
        wanted = client_id.lower()
        for app in directory.collection(self.world, "applications").values():
            if app["appId"].lower() == wanted:
                return app
        raise SignInError(700016, "unauthorized_client",
                          f"Application with identifier '{client_id}' was not found in the directory "
                          f"'{self.world.identity.domain}'. This can happen if the application has not been "
                          "installed by the administrator of the tenant or consented to by any user in the tenant. "
                          "You may have sent your authentication request to the wrong tenant.")

    def user(self, hint: str) -> dict[str, Any] | None:
        wanted = hint.strip().lower()
        for user in directory.collection(self.world, "users").values():
            if wanted in (user["id"].lower(), user["userPrincipalName"].lower(), str(user.get("mail") or "").lower()):
                return user
        return None

    def check_audience(self, app: Mapping[str, Any], segment: str) -> None:
        audience = app.get("signInAudience") or "AzureADMyOrg"
        if segment in ("common", "organizations") and audience == "AzureADMyOrg":
            raise SignInError(50194, "invalid_request",
                              f"Application '{app['appId']}'({app['displayName']}) is not configured as a "
                              "multi-tenant application. Usage of the /common endpoint is not supported for such "
                              "applications created after '10/15/2018'. Use a tenant-specific endpoint or "
                              "configure the application to be multi-tenant.")
        if segment == "consumers":
            raise SignInError(500202, "invalid_request", "The sandbox has no personal Microsoft accounts; sign in "
                              "with a work account of the tenant (a tenant-specific or /organizations endpoint).")

    def resolve_scopes(
        self, app: Mapping[str, Any], user: Mapping[str, Any], scope: str
    ) -> tuple[list[str], str | None]:
        """The granted scope list (as echoed in `scope`) and the resource; raises on an invalid or unconsented
        scope."""
        oidc, resources = split_scopes(scope)
        if len(resources) > 1:
            raise SignInError(28000, "invalid_scope",
                              "Provided value for the input parameter scope is not valid because it contains more "
                              f"than one resource. Scope {scope} is not valid.")
        if not resources:
            if "openid" not in oidc:
                raise SignInError(90014, "invalid_request",
                                  "The required field 'scope' is missing from the credential. Ensure that you have "
                                  "all the necessary parameters for the login request.")
            # Sign-in only: Entra issues a Microsoft Graph token for User.Read.
            return [*oidc, "User.Read"], "https://graph.microsoft.com"
        resource, values = next(iter(resources.items()))
        app_id = RESOURCE_APP_IDS.get(resource.lower()) or RESOURCE_APP_IDS.get(resource)
        resource_sp = find_sp_by_app_id(self.world, app_id) if app_id else None
        if resource_sp is None:
            raise SignInError(650052, "invalid_client",
                              f"The app is trying to access a service '{app_id or resource}' that your organization "
                              f"'{self.world.identity.tenant_id}' lacks a service principal for. Contact your IT "
                              "Admin to review the configuration of your service subscriptions or consent to the "
                              "application in order to create the required service principal.")
        published = {s["value"].lower(): s["value"] for s in resource_sp.get("oauth2PermissionScopes", [])}
        wanted: list[str] = []
        for value in values:
            if value == ".default":
                wanted.extend(published.values())
                continue
            if value.lower() not in published:
                raise SignInError(70011, "invalid_scope",
                                  "The provided request must include a 'scope' input parameter. The provided value "
                                  f"for the input parameter 'scope' is not valid. The scope {resource}/{value} is "
                                  "not valid.")
            wanted.append(published[value.lower()])
        self.check_consent(app, user, resource_sp, wanted)
        return [*oidc, *(f"{resource}/{v}" for v in wanted)], resource

    def check_consent(self, app: Mapping[str, Any], user: Mapping[str, Any], resource_sp: Mapping[str, Any],
                      scopes: list[str]) -> None:
        if resource_sp["appId"].lower() == GRAPH_APP_ID:
            return  # sign-in and profile scopes: the sandbox's tenant lets users consent to these themselves
        client_sp = find_sp_by_app_id(self.world, app["appId"])
        granted: set[str] = set()
        if client_sp is not None:
            for grant in directory.collection(self.world, "oauth2PermissionGrants").values():
                if grant["clientId"].lower() != client_sp["id"].lower():
                    continue
                if grant["resourceId"].lower() != resource_sp["id"].lower():
                    continue
                if grant["consentType"] == "AllPrincipals" or (grant.get("principalId") or "").lower() == user["id"]:
                    granted.update(s.lower() for s in str(grant.get("scope") or "").split())
        missing = [s for s in scopes if s.lower() not in granted]
        if missing:
            raise SignInError(65001, "consent_required",
                              f"The user or administrator has not consented to use the application with ID "
                              f"'{app['appId']}' named '{app['displayName']}'. Send an interactive authorization "
                              f"request for this user and resource. (Missing: {', '.join(missing)} on "
                              f"{resource_sp['displayName']}; the sandbox has no consent page: grant admin consent.)")

    # -- tokens --------------------------------------------------------------------------------------------

    def id_token(self, base: str, grant: Grant, user: Mapping[str, Any], *, access_token: str | None = None,
                 code: str | None = None) -> str:
        now = int(self.world.now())
        claims: dict[str, Any] = {
            "aud": grant.client_id,
            "iss": entra.issuer(base, grant.tenant_id),
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "auth_time": grant.auth_time,
            "name": user["displayName"],
            "oid": user["id"],
            "preferred_username": user["userPrincipalName"],
            "rh": _b64url(secrets.token_bytes(24)),
            "sid": grant.session_id,
            # Entra's `sub` is pairwise: stable for one user and one app.
            "sub": _b64url(hashlib.sha256(f"{user['id']}|{grant.client_id}".encode()).digest()),
            "tid": grant.tenant_id,
            "uti": _b64url(uuid.uuid4().bytes),
            "ver": "2.0",
        }
        if grant.nonce:
            claims["nonce"] = grant.nonce
        if "email" in grant.scopes and user.get("mail"):
            claims["email"] = user["mail"]
        if access_token:
            claims["at_hash"] = half_hash(access_token)
        if code:
            claims["c_hash"] = half_hash(code)
        return self.signer.sign(claims)

    def access_token(self, grant: Grant, user: Mapping[str, Any]) -> str:
        now = int(self.world.now())
        resource = grant.resource or "https://graph.microsoft.com"
        audience = GRAPH_APP_ID if resource.lower() == "https://graph.microsoft.com" else resource
        scp = [s.rpartition("/")[2] for s in grant.scopes if s not in OIDC_SCOPES]
        claims = {
            "aud": audience,
            "iss": f"https://sts.windows.net/{grant.tenant_id}/",
            "iat": now,
            "nbf": now,
            "exp": now + 3599,
            "acr": "1",
            "aio": _b64url(secrets.token_bytes(24)),
            "amr": ["pwd"],
            "appid": grant.client_id,
            "appidacr": "0",
            "family_name": user.get("surname"),
            "given_name": user.get("givenName"),
            "idtyp": "user",
            "name": user["displayName"],
            "oid": user["id"],
            "scp": " ".join(scp),
            "sub": _b64url(hashlib.sha256(f"{user['id']}|{audience}".encode()).digest()),
            "tid": grant.tenant_id,
            "unique_name": user["userPrincipalName"],
            "upn": user["userPrincipalName"],
            "uti": _b64url(uuid.uuid4().bytes),
            "ver": "1.0",
        }
        return self.signer.sign(claims)

    def token_response(self, base: str, grant: Grant, user: Mapping[str, Any]) -> dict[str, Any]:
        access = self.access_token(grant, user)
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": " ".join(s for s in grant.scopes if s not in OIDC_SCOPES) or "openid",
            "expires_in": 3599,
            "ext_expires_in": 3599,
            "access_token": access,
        }
        if "openid" in grant.scopes:
            body["id_token"] = self.id_token(base, grant, user)
        if "offline_access" in grant.scopes or grant.platform == "spa":
            refresh = _b64url(secrets.token_bytes(48))
            self.refresh_tokens[refresh] = replace(grant, expires=self.world.now() + REFRESH_LIFETIME)
            body["refresh_token"] = refresh
            if grant.platform == "spa":
                body["refresh_token_expires_in"] = REFRESH_LIFETIME
        return body

    # -- session cookie ------------------------------------------------------------------------------------

    def session_cookie(self, user: Mapping[str, Any]) -> str:
        now = int(self.world.now())
        return self.signer.sign({"aud": SESSION_AUDIENCE, "tid": self.world.identity.tenant_id, "oid": user["id"],
                                 "iat": now, "exp": now + 12 * 3600})

    def session_user(self, request: Request) -> dict[str, Any] | None:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            return None
        try:
            claims = self.signer.verify(cookie, audiences=(SESSION_AUDIENCE,), tenant_id=self.world.identity.tenant_id)
        except TokenError:
            return None
        return directory.collection(self.world, "users").get(str(claims.get("oid", "")).lower())


async def _form(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body (parsed here: Starlette's parser needs python-multipart)."""
    body = (await request.body()).decode("utf-8", "replace")
    return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}


def _endpoint(routes: list[BaseRoute], path: str) -> Endpoint:
    for route in routes:
        if isinstance(route, Route) and route.path == path:
            return route.endpoint
    raise LookupError(f"entra.py has no route {path}")


def routes(world: World, signer: TokenSigner) -> list[BaseRoute]:
    """Mounted before `entra.routes`: the paths they share are answered here and delegated there."""
    service = SignIn(world, signer)
    inner = entra.routes(world, signer)
    discovery_v2 = _endpoint(inner, f"/{entra.TENANT}/v2.0/.well-known/openid-configuration")
    discovery_v1 = _endpoint(inner, f"/{entra.TENANT}/.well-known/openid-configuration")
    keys_v2 = _endpoint(inner, f"/{entra.TENANT}/discovery/v2.0/keys")
    keys_v1 = _endpoint(inner, f"/{entra.TENANT}/discovery/keys")
    client_credentials = _endpoint(inner, f"/{entra.TENANT}/oauth2/v2.0/token")

    def public(endpoint: Endpoint) -> Endpoint:
        async def wrapped(request: Request) -> Response:
            response = await endpoint(request)
            response.headers["Access-Control-Allow-Origin"] = "*"
            return response

        return wrapped

    def error_response(request: Request, error: SignInError) -> Response:
        request_id = str(uuid.uuid4())
        return HTMLResponse(error_page(error, request_id), status_code=error.status,
                            headers={**_NO_STORE, "x-ms-request-id": request_id})

    def to_client(redirect_uri: str, mode: str, fields: dict[str, str]) -> Response:
        if mode == "form_post":
            return HTMLResponse(form_post_page(redirect_uri, fields), headers=_NO_STORE)
        separator = "#" if mode == "fragment" else ("&" if "?" in redirect_uri else "?")
        return RedirectResponse(redirect_uri + separator + urlencode(fields), status_code=302, headers=_NO_STORE)

    async def authorize(request: Request) -> Response:
        params = dict(request.query_params)
        if request.method == "POST":
            params.update(await _form(request))
        segment = request.path_params["tenant"].lower()
        try:
            app = service.application(params.get("client_id", ""))
            tenant_id = world.identity.tenant_id if segment in MULTI_TENANT else service.tenant(segment)
            redirect_uri = params.get("redirect_uri", "")
            platform = redirect_platform(app, redirect_uri)
            if platform is None:
                raise SignInError(50011, "invalid_request",
                                  f"The redirect URI '{redirect_uri}' specified in the request does not match the "
                                  f"redirect URIs configured for the application '{app['appId']}'. Make sure the "
                                  "redirect URI sent in the request matches one added to your application in the "
                                  "Azure portal. Navigate to https://aka.ms/redirectUriMismatchError to learn more "
                                  "about how to fix this.")
        except SignInError as error:
            return error_response(request, error)

        response_type = set(params.get("response_type", "").split())
        implicit = bool(response_type & {"id_token", "token"}) and "code" not in response_type
        mode = params.get("response_mode") or ("fragment" if implicit else "query")
        state = params.get("state")

        def fail(error: SignInError) -> Response:
            fields = {"error": error.error, "error_description": error.description}
            if state is not None:
                fields["state"] = state
            return to_client(redirect_uri, mode, fields)

        try:
            service.check_audience(app, segment)
            if response_type not in ({"code"}, {"id_token"}, {"token"}, {"id_token", "token"}):
                raise SignInError(900144, "invalid_request", "The request body must contain the following "
                                  "parameter: 'response_type' (code, id_token, token or 'id_token token').")
            implicit_settings = ((app.get("web") or {}).get("implicitGrantSettings") or {})
            if "id_token" in response_type and not implicit_settings.get("enableIdTokenIssuance"):
                raise SignInError(700054, "unsupported_response_type",
                                  "response_type 'id_token' is not enabled for the application.")
            if "token" in response_type and not implicit_settings.get("enableAccessTokenIssuance"):
                raise SignInError(700051, "unsupported_response_type",
                                  "response_type 'token' is not enabled for the application.")
            if "id_token" in response_type and not params.get("nonce"):
                raise SignInError(900144, "invalid_request",
                                  "The request body must contain the following parameter: 'nonce'.")
            challenge_method = params.get("code_challenge_method")
            if params.get("code_challenge") and challenge_method not in (None, "plain", "S256"):
                raise SignInError(50002, "invalid_request", "Invalid code_challenge_method.")
        except SignInError as error:
            return fail(error)

        prompt = params.get("prompt", "")
        hint = params.get("login_hint")
        user = service.user(hint) if hint else None
        if hint and user is None:
            unknown = SignInError(50034, "invalid_request",
                                f"The user account {hint} does not exist in the {world.identity.domain} directory. "
                                "To sign into this application, the account must be added to the directory.")
            return fail(unknown) if prompt == "none" else error_response(request, unknown)
        if user is None and prompt not in ("login", "select_account"):
            user = service.session_user(request)
        if user is None:
            if prompt == "none":
                return fail(SignInError(50058, "login_required", "A silent sign-in request was sent but no user "
                                        "is signed in."))
            users = sorted(directory.collection(world, "users").values(), key=lambda u: u["userPrincipalName"])
            base_params = {k: v for k, v in params.items() if k not in ("login_hint", "prompt")}
            path = request.url.path
            page = account_page(users, lambda upn: f"{path}?{urlencode({**base_params, 'login_hint': upn})}",
                                app["displayName"])
            return HTMLResponse(page, headers=_NO_STORE)

        try:
            scopes, resource = service.resolve_scopes(app, user, params.get("scope", ""))
        except SignInError as error:
            return fail(error) if prompt == "none" or error.code != 65001 else error_response(request, error)

        grant = Grant(client_id=app["appId"], user_id=user["id"], tenant_id=tenant_id, scopes=scopes,
                      resource=resource, redirect_uri=redirect_uri, platform=platform, nonce=params.get("nonce"),
                      code_challenge=params.get("code_challenge"), code_challenge_method=challenge_method)
        base = base_url(request)
        fields: dict[str, str] = {}
        if "code" in response_type:
            code = _b64url(secrets.token_bytes(48))
            grant.expires = world.now() + CODE_LIFETIME
            service.codes[code] = grant
            fields["code"] = code
        else:
            access = service.access_token(grant, user) if "token" in response_type else None
            if access is not None:
                fields.update(access_token=access, token_type="Bearer", expires_in="3599",
                              scope=" ".join(s for s in scopes if s not in OIDC_SCOPES))
            if "id_token" in response_type:
                fields["id_token"] = service.id_token(base, grant, user, access_token=access)
        if state is not None:
            fields["state"] = state
        fields["session_state"] = grant.session_id
        response = to_client(redirect_uri, mode, fields)
        response.set_cookie(SESSION_COOKIE, service.session_cookie(user), httponly=True, secure=True,
                            samesite="none", path="/")
        return response

    def token_error(request: Request, error: SignInError, cors: dict[str, str]) -> Response:
        response = entra.aad_error(request, error.status, error.error, error.code, error.message)
        response.headers.update(cors)
        return response

    async def token(request: Request) -> Response:
        data = await _form(request)
        grant_type = data.get("grant_type", "")
        if grant_type not in ("authorization_code", "refresh_token"):
            return await client_credentials(request)
        origin = request.headers.get("origin")
        cors: dict[str, str] = {}
        try:
            segment = request.path_params["tenant"].lower()
            if segment not in MULTI_TENANT:
                service.tenant(segment)
            store = service.codes if grant_type == "authorization_code" else service.refresh_tokens
            key = data.get("code" if grant_type == "authorization_code" else "refresh_token", "")
            grant = store.get(key)
            if grant is None:
                raise SignInError(9002313, "invalid_grant",
                                  "Invalid request. Request is malformed or invalid. The code or refresh token is "
                                  "unknown or was already redeemed.")
            if grant.platform == "spa" and origin:
                cors = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
            if grant.expires < world.now():
                store.pop(key, None)
                raise SignInError(70008, "invalid_grant", "The provided authorization code or refresh token has "
                                  "expired due to inactivity. Send a new interactive authorization request for "
                                  "this user and resource.")
            if data.get("client_id", "").lower() != grant.client_id.lower():
                raise SignInError(70000, "invalid_grant", "Provided grant is invalid or malformed: it was issued "
                                  "to another client.")
            if origin and grant.platform != "spa":
                raise SignInError(9002326, "invalid_request", "Cross-origin token redemption is permitted only for "
                                  "the 'Single-Page Application' client-type. Request origin: "
                                  f"'{origin}'.")
            if grant.platform == "spa" and not origin:
                raise SignInError(9002327, "invalid_request", "Tokens issued for the 'Single-Page Application' "
                                  "client-type may only be redeemed via cross-origin requests.")
            if grant.platform == "web" and not data.get("client_secret"):
                raise SignInError(7000218, "invalid_client", "The request body must contain the following "
                                  "parameter: 'client_assertion' or 'client_secret'.", status=401)
            if grant_type == "authorization_code":
                if data.get("redirect_uri") != grant.redirect_uri:
                    raise SignInError(500112, "invalid_grant", "The reply address "
                                      f"'{data.get('redirect_uri')}' does not match the reply address "
                                      f"'{grant.redirect_uri}' provided when requesting the authorization code.")
                if grant.code_challenge is None and grant.platform == "spa":
                    raise SignInError(9002325, "invalid_request", "Proof Key for Code Exchange is required for "
                                      "cross-origin authorization code redemption.")
                if grant.code_challenge is not None and not pkce_matches(
                        data.get("code_verifier", ""), grant.code_challenge, grant.code_challenge_method):
                    raise SignInError(501481, "invalid_grant", "The Code_Verifier does not match the "
                                      "code_challenge supplied in the authorization request.")
                store.pop(key, None)  # a code is redeemed once
            user = directory.collection(world, "users").get(grant.user_id)
            if user is None:
                raise SignInError(50034, "invalid_grant", "The user account does not exist any more.")
        except SignInError as error:
            return token_error(request, error, cors)
        body = service.token_response(base_url(request), grant, user)
        return json_response(body, headers={**_NO_STORE, **cors, "x-ms-request-id": str(uuid.uuid4())})

    async def token_preflight(request: Request) -> Response:
        origin = request.headers.get("origin")
        if not origin:
            return Response(b"", status_code=400)
        headers = {"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Methods": "POST, OPTIONS",
                   "Access-Control-Max-Age": "86400", "Vary": "Origin"}
        requested = request.headers.get("access-control-request-headers")
        if requested:
            headers["Access-Control-Allow-Headers"] = requested
        return Response(b"", status_code=204, headers=headers)

    async def logout(request: Request) -> Response:
        target = request.query_params.get("post_logout_redirect_uri")
        response: Response
        if target:
            response = RedirectResponse(target, status_code=302)
        else:
            response = HTMLResponse(_PAGE.format(title="Signed out", body="<h1>You signed out of your account</h1>"))
        response.delete_cookie(SESSION_COOKIE, path="/", secure=True, samesite="none")
        return response

    return [
        Route(f"/{entra.TENANT}/oauth2/v2.0/authorize", authorize, methods=["GET", "POST"]),
        Route(f"/{entra.TENANT}/oauth2/v2.0/token", token, methods=["POST"]),
        Route(f"/{entra.TENANT}/oauth2/v2.0/token", token_preflight, methods=["OPTIONS"]),
        Route(f"/{entra.TENANT}/oauth2/v2.0/logout", logout, methods=["GET", "POST"]),
        Route(f"/{entra.TENANT}/v2.0/.well-known/openid-configuration", public(discovery_v2), methods=["GET"]),
        Route(f"/{entra.TENANT}/.well-known/openid-configuration", public(discovery_v1), methods=["GET"]),
        Route(f"/{entra.TENANT}/discovery/v2.0/keys", public(keys_v2), methods=["GET"]),
        Route(f"/{entra.TENANT}/discovery/keys", public(keys_v1), methods=["GET"]),
    ]

