"""Google's OAuth 2.0 token endpoint (oauth2.googleapis.com/token) and the ADC credentials that use it.

`POST /google/oauth2/token` answers the refresh-token grant of `authorized_user` Application Default
Credentials (what `gcloud auth application-default login` writes). The client id, secret and refresh token
are derived from the sandbox identity (`adc_info(info)`). Access tokens are the sandbox's RS256 JWTs for the
audience `https://healthcare.googleapis.com/`, prefixed `ya29.` like Google's.
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
        scope = data.get("scope") or "https://www.googleapis.com/auth/cloud-platform"
        access = signer.issue(
            issuer=f"{base_url(request)}/google",
            audience=GOOGLE_AUDIENCE,
            tenant_id=GOOGLE_TENANT,
            app_id=ident_client_id(),
            object_id=world.identity.sp_object_id,
            now=world.now(),
        )
        return json_response(
            {"access_token": TOKEN_PREFIX + access, "expires_in": 3599, "scope": scope, "token_type": "Bearer"},
            headers={"Cache-Control": "no-cache, no-store, max-age=0, must-revalidate", "Pragma": "no-cache"},
        )

    return [Route(TOKEN_PATH, token, methods=["POST"])]


__all__ = ["GOOGLE_AUDIENCE", "TOKEN_PATH", "adc_info", "routes"]
