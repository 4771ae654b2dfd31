"""Google's OAuth 2.0 token endpoint (oauth2.googleapis.com/token) and the ADC credentials that use it.

`POST /google/oauth2/token` answers the refresh-token grant of `authorized_user` Application Default
Credentials (what `gcloud auth application-default login` writes). The client id, secret and refresh token
are derived from the sandbox identity (`adc_info(info)`). Access tokens are the sandbox's RS256 JWTs for the
audience `https://healthcare.googleapis.com/`, prefixed `ya29.` like Google's, and name the account and the
scopes they were granted (`email`, `scope`): the ADC account is `ADC_ACCOUNT`, who owns every project (as
whoever created a project does), so the tool may do anything; people who sign in through a viewer get only
what IAM grants them (`accounts.py`, `dicomweb.py`).
"""

from __future__ import annotations

import base64
import hashlib
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..routing import base_url, json_response

if TYPE_CHECKING:
    from ..tokens import TokenSigner
    from ..world import World

GOOGLE_AUDIENCE = "https://healthcare.googleapis.com/"
GOOGLE_TENANT = "google"  # the `tid` of Google tokens, so Azure tokens are never accepted here (and vice versa)
TOKEN_PREFIX = "ya29."
TOKEN_PATH = "/google/oauth2/token"
#: the account whose `gcloud auth application-default login` the sandbox's ADC stands for (owner of every project)
ADC_ACCOUNT = "developer@example.org"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"


def access_token(signer: TokenSigner, *, issuer: str, email: str, subject: str, client_id: str, scope: str,
                 now: float, lifetime: int = 3599) -> str:
    """A Google access token (`ya29.` + a sandbox JWT) for `email` with the granted `scope` (space-separated)."""
    iat = int(now)
    return TOKEN_PREFIX + signer.sign({
        "aud": GOOGLE_AUDIENCE, "iss": issuer, "iat": iat, "exp": iat + lifetime, "tid": GOOGLE_TENANT,
        "sub": subject, "email": email, "azp": client_id, "scope": scope,
    })


def _client_id(info_client_id: str) -> str:
    return f"{info_client_id.split('.')[0]}.apps.googleusercontent.com"


def _refresh_token(client_secret: str) -> str:
    digest = hashlib.sha256(f"google-adc:{client_secret}".encode()).digest()
    return "1//" + base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def adc_info(info: Any) -> dict[str, str]:
    """The `authorized_user` credentials (ADC) of a sandbox, with `token_uri` pointing at the sandbox.

    `info` is a SandboxInfo (url, client_id, client_secret). Build google-auth user credentials from it:
    `google.oauth2.credentials.Credentials(None, refresh_token=..., token_uri=..., client_id=..., client_secret=...)`.
    """
    return {
        "type": "authorized_user",
        "client_id": _client_id(str(info.client_id)),
        "client_secret": str(info.client_secret),
        "refresh_token": _refresh_token(str(info.client_secret)),
        "token_uri": f"{str(info.url).rstrip('/')}{TOKEN_PATH}",
    }


def _form_token_error(status: int, error: str, description: str) -> Response:
    return json_response({"error": error, "error_description": description}, status,
                         headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def routes(world: World, signer: TokenSigner) -> list[BaseRoute]:
    """`POST /google/oauth2/token` (see the module docstring)."""

    def ident_client_id() -> str:
        return _client_id(world.identity.client_id)

    async def token(request: Request) -> Response:
        # form-encoded like any OAuth token request (parsed here: no python-multipart needed)
        data = {k: v[-1] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        grant = data.get("grant_type", "")
        if grant != "refresh_token":
            return _form_token_error(400, "unsupported_grant_type", f"Invalid grant_type: {grant}")
        if data.get("client_id") != ident_client_id():
            return _form_token_error(401, "invalid_client", "The OAuth client was not found.")
        if data.get("client_secret") != world.identity.client_secret:
            return _form_token_error(401, "invalid_client", "Unauthorized")
        if data.get("refresh_token") != _refresh_token(world.identity.client_secret):
            return _form_token_error(400, "invalid_grant", "Bad Request")
        scope = data.get("scope") or CLOUD_PLATFORM
        access = access_token(signer, issuer=f"{base_url(request)}/google", email=ADC_ACCOUNT,
                              subject=world.identity.sp_object_id, client_id=ident_client_id(), scope=scope,
                              now=world.now())
        return json_response(
            {"access_token": access, "expires_in": 3599, "scope": scope, "token_type": "Bearer"},
            headers={"Cache-Control": "no-cache, no-store, max-age=0, must-revalidate", "Pragma": "no-cache"},
        )

    return [Route(TOKEN_PATH, token, methods=["POST"])]


__all__ = ["ADC_ACCOUNT", "GOOGLE_AUDIENCE", "TOKEN_PATH", "access_token", "adc_info", "routes"]
