"""Google sign-in for browser viewers (accounts.google.com's OpenID Connect), as OHIF's Google configuration uses it.

OHIF's `google.js` signs users in with the implicit flow (`response_type: "id_token token"`) and sends the access
token to the Healthcare API. The sandbox plays the authority at `{url}/google` (the plan's OHIF configuration
points there when it is written against the sandbox, as Azure's points at the sandbox's Entra ID):

- `GET /google/.well-known/openid-configuration` and `GET /google/oauth2/v3/certs` (the sandbox's RS256 key),
  with `Access-Control-Allow-Origin: *` as Google's;
- `GET /google/o/oauth2/v2/auth`: the client must be a registered browser OAuth client (`POST
  /_sandbox/gcp/config {"oauth_clients": [...]}`: the console step no public API can do) else "Error 401:
  invalid_client"; the redirect URI must be registered ("Error 400: redirect_uri_mismatch") and its origin be an
  authorized JavaScript origin ("Error 400: origin_mismatch"); `response_type` must ask for a token. `login_hint`
  picks the account at once, otherwise a "Choose an account" page lists the accounts (no password); the choice is
  kept in a session cookie, so `prompt=none` (silent renew) works afterwards and answers `login_required` before.
  The answer is a redirect with `#access_token=ya29...&token_type=Bearer&expires_in=3599&scope=...&id_token=...
  &state=...`: the access token carries the account's e-mail and the granted scopes, the id token (`aud` = the
  client id) the `nonce`;
- `GET /google/v1/userinfo` (bearer) and `GET|POST /google/o/oauth2/revoke?token=` (200).

Accounts (`ACCOUNTS`): alice@example.org, bob@example.org (a member of the group radiology@example.org),
carol@example.net, and the ADC account developer@example.org. Unverified: the exact wording of Google's error
pages, and whether Google's answer carries `authuser`/`prompt` (it does here, harmlessly).
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ..routing import base_url, json_response
from ..tokens import TokenError
from .healthcare import RpcError, authenticate, config_of
from .oauth import ADC_ACCOUNT, GOOGLE_TENANT, access_token

if TYPE_CHECKING:
    from ..tokens import TokenSigner
    from ..world import World

#: e-mail -> display name
ACCOUNTS = {
    "alice@example.org": "Alice Example",
    "bob@example.org": "Bob Example",
    "carol@example.net": "Carol Outsider",
    ADC_ACCOUNT: "Developer (ADC)",
}
#: Google groups (IAM members `group:...`) and their members
GROUPS = {"radiology@example.org": ("bob@example.org",)}
SESSION_COOKIE = "sandbox_google_account"
SESSION_AUDIENCE = "sandbox-google-session"
#: scope names Google writes in full when it answers
_SCOPE_NAMES = {"email": "https://www.googleapis.com/auth/userinfo.email",
                "profile": "https://www.googleapis.com/auth/userinfo.profile"}
_CORS = {"Access-Control-Allow-Origin": "*"}

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;background:#fff;margin:0}}main{{max-width:450px;margin:60px auto;padding:36px 40px;
border:1px solid #dadce0;border-radius:8px}}h1{{font-size:24px;font-weight:400}}a.account{{display:block;padding:12px;
margin:8px 0;border-bottom:1px solid #dadce0;color:#202124;text-decoration:none}}a.account:hover{{background:#f8f9fa}}
small{{color:#5f6368}}</style></head>
<body><main><p><b>Google</b> <small>(provision sandbox)</small></p>{body}</main></body></html>"""


def subject_of(email: str) -> str:
    """A stable numeric account id, as Google's `sub` is."""
    return str(int(hashlib.sha256(email.encode()).hexdigest()[:15], 16))


def member_matches(member: str, email: str) -> bool:
    """Whether an IAM member (`user:`, `serviceAccount:`, `group:`, `domain:`, `allUsers`, ...) covers `email`."""
    email = email.lower()
    kind, _, value = member.partition(":")
    value = value.lower()
    if member in ("allUsers", "allAuthenticatedUsers"):
        return True
    if kind in ("user", "serviceAccount"):
        return value == email
    if kind == "group":
        return email in GROUPS.get(value, ())
    if kind == "domain":
        return email.endswith("@" + value)
    return False


def _error_page(status: int, error: str, description: str) -> HTMLResponse:
    body = (f"<h1>Access blocked: this app&#8217;s request is invalid</h1><p id=\"error\">Error {status}: "
            f"{html.escape(error)}</p><p>{html.escape(description)}</p>")
    return HTMLResponse(_PAGE.format(title="Error", body=body), status_code=status)


def _hash_half(token: str) -> str:
    digest = hashlib.sha256(token.encode()).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


def routes(world: World, signer: TokenSigner) -> list[BaseRoute]:
    def issuer(request: Request) -> str:
        return f"{base_url(request)}/google"

    async def discovery(request: Request) -> Response:
        base = issuer(request)
        return json_response({
            "issuer": base,
            "authorization_endpoint": f"{base}/o/oauth2/v2/auth",
            "token_endpoint": f"{base}/oauth2/token",
            "userinfo_endpoint": f"{base}/v1/userinfo",
            "revocation_endpoint": f"{base}/o/oauth2/revoke",
            "jwks_uri": f"{base}/oauth2/v3/certs",
            "response_types_supported": ["code", "token", "id_token", "code token", "code id_token",
                                         "token id_token", "code token id_token", "none"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "claims_supported": ["aud", "email", "email_verified", "exp", "iat", "iss", "name", "sub"],
        }, headers=_CORS)

    async def certs(request: Request) -> Response:
        return json_response(signer.jwks(issuer(request)), headers=_CORS)

    def client_of(client_id: str) -> Mapping[str, Any] | None:
        return next((c for c in config_of(world)["oauth_clients"] if c["client_id"] == client_id), None)

    def signed_in(request: Request) -> str | None:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            return None
        try:
            claims = signer.verify(cookie, audiences=(SESSION_AUDIENCE,), tenant_id=GOOGLE_TENANT)
        except TokenError:
            return None
        email = str(claims.get("email", ""))
        return email if email in ACCOUNTS else None

    def answer(request: Request, params: Mapping[str, str], email: str) -> Response:
        """The redirect back to the viewer with the tokens in the fragment (and the session cookie)."""
        now = world.now()
        requested = params.get("scope", "").split()
        granted = " ".join(_SCOPE_NAMES.get(s, s) for s in requested)
        fields = {"state": params.get("state", "")}
        response_types = set(params.get("response_type", "").split())
        token = access_token(signer, issuer=issuer(request), email=email, subject=subject_of(email),
                             client_id=params["client_id"], scope=granted, now=now)
        if "token" in response_types:
            fields.update(access_token=token, token_type="Bearer", expires_in="3599", scope=granted)
        if "id_token" in response_types:
            iat = int(now)
            claims = {"iss": issuer(request), "azp": params["client_id"], "aud": params["client_id"],
                      "sub": subject_of(email), "email": email, "email_verified": True, "name": ACCOUNTS[email],
                      "iat": iat, "exp": iat + 3599, "at_hash": _hash_half(token)}
            if params.get("nonce"):
                claims["nonce"] = params["nonce"]
            fields["id_token"] = signer.sign(claims)
        fields.update(authuser="0", prompt="none")
        response = RedirectResponse(f"{params['redirect_uri']}#{urlencode(fields)}", status_code=302)
        session = signer.sign({"aud": SESSION_AUDIENCE, "tid": GOOGLE_TENANT, "email": email,
                               "exp": int(now) + 8 * 3600})
        response.set_cookie(SESSION_COOKIE, session, httponly=True, secure=True, samesite="none", path="/google")
        return response

    def error_redirect(params: Mapping[str, str], error: str) -> Response:
        fields = {"error": error, "state": params.get("state", "")}
        return RedirectResponse(f"{params['redirect_uri']}#{urlencode(fields)}", status_code=302)

    async def authorize(request: Request) -> Response:
        params = dict(request.query_params)
        client = client_of(params.get("client_id", ""))
        if client is None:
            return _error_page(401, "invalid_client", "The OAuth client was not found.")
        redirect = params.get("redirect_uri", "")
        if redirect not in client["redirect_uris"]:
            return _error_page(400, "redirect_uri_mismatch",
                               f"You can't sign in to this app because it doesn't comply with Google's OAuth 2.0 "
                               f"policy. Register the redirect URI {redirect} on the OAuth client.")
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(redirect))
        if origin not in client["javascript_origins"]:
            return _error_page(400, "origin_mismatch", f"Register {origin} as an Authorized JavaScript origin.")
        response_types = set(params.get("response_type", "").split())
        if not response_types or not response_types <= {"token", "id_token", "code"}:
            return error_redirect(params, "unsupported_response_type")
        if "openid" not in params.get("scope", "").split() and "id_token" in response_types:
            return error_redirect(params, "invalid_scope")
        hint = params.get("login_hint", "").lower()
        account = params.get("account") or (hint if hint in ACCOUNTS else None) or None
        if account is None and params.get("prompt") != "select_account":
            account = signed_in(request)
        if account in ACCOUNTS:
            return answer(request, params, str(account))
        if params.get("prompt") == "none":
            return error_redirect(params, "login_required")
        items = "".join(
            f'<a class="account" href="{html.escape("?" + urlencode({**params, "account": email}))}">'
            f"{html.escape(name)}<br><small>{html.escape(email)}</small></a>"
            for email, name in ACCOUNTS.items()
        )
        body = (f"<h1>Choose an account</h1><p>to continue to {html.escape(origin)}</p>{items}"
                "<p><small>Sandbox accounts sign in without a password.</small></p>")
        return HTMLResponse(_PAGE.format(title="Sign in - Google Accounts", body=body))

    async def userinfo(request: Request) -> Response:
        try:
            claims = authenticate(signer, request)
        except RpcError as error:
            return error.response()
        email = str(claims.get("email", ""))
        return json_response({"sub": str(claims.get("sub", "")), "email": email, "email_verified": True,
                              "name": ACCOUNTS.get(email, email)}, headers=_CORS)

    async def revoke(request: Request) -> Response:
        return json_response({}, headers=_CORS)

    async def preflight(request: Request) -> Response:
        return Response(b"", status_code=200, headers={
            **_CORS, "Access-Control-Allow-Methods": "GET, POST",
            "Access-Control-Allow-Headers": request.headers.get("access-control-request-headers", "authorization"),
            "Access-Control-Max-Age": "3600"})

    async def userinfo_or_preflight(request: Request) -> Response:
        return await (preflight(request) if request.method == "OPTIONS" else userinfo(request))

    return [
        Route("/google/.well-known/openid-configuration", discovery, methods=["GET"]),
        Route("/google/oauth2/v3/certs", certs, methods=["GET"]),
        Route("/google/o/oauth2/v2/auth", authorize, methods=["GET"]),
        Route("/google/v1/userinfo", userinfo_or_preflight, methods=["GET", "OPTIONS"]),
        Route("/google/o/oauth2/revoke", revoke, methods=["GET", "POST"]),
    ]


__all__ = ["ACCOUNTS", "GROUPS", "member_matches", "routes", "subject_of"]
