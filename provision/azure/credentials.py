"""Credentials and the one HTTP connection pool every Azure SDK client of a session shares.

Imports azure-identity and aiohttp: only `provision.azure.session.open_session` imports this module.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import ssl
import time
from pathlib import Path
from typing import Any

import aiohttp
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError, ServiceResponseError
from azure.core.pipeline.transport import AioHttpTransport

from provision.azure.clouds import Cloud
from provision.azure.errors import connection_failed, identity_failed
from provision.core.target import SandboxEndpoints

#: refresh a cached token this long before it expires (azure-core's own policy uses 300 s too)
REFRESH_MARGIN = 300


def ssl_context(*ca_bundles: Path | str) -> ssl.SSLContext:
    """The system's trust store plus `ca_bundles` (a TLS-inspecting proxy's CA, the sandbox's)."""
    context = ssl.create_default_context()
    for bundle in ca_bundles:
        context.load_verify_locations(cafile=str(bundle))
    return context


def shared_transport(context: ssl.SSLContext) -> AioHttpTransport:
    """One aiohttp session for the credential and every ARM client, so connections are reused.

    The SSL context sits on the connector: passing `connection_verify=<path>` instead would make azure-core
    build a new SSLContext per request, which also defeats aiohttp's connection pooling (the context is part of
    the pool key), so every request would pay a TLS handshake.
    """
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=context, limit=64),
        trust_env=True,
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
    )
    return AioHttpTransport(session=session, session_owner=False)


class SharedTokens:
    """An async credential that asks its inner credential once per scope and hands the token to every client.

    Several SDK clients start at the same moment; each has its own bearer-token policy, so without this they
    would each fetch the same token concurrently. A claims challenge (CAE) always goes to the inner credential.
    """

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._tokens: dict[tuple[str, ...], AccessToken] = {}
        self._locks: dict[tuple[str, ...], asyncio.Lock] = {}
        #: how many tokens were actually requested from the inner credential
        self.fetched = 0

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        if claims or tenant_id:
            return await self._fetch(*scopes, claims=claims, tenant_id=tenant_id, enable_cae=enable_cae, **kwargs)
        key = tuple(scopes)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            cached = self._tokens.get(key)
            if cached is not None and cached.expires_on - REFRESH_MARGIN > time.time():
                return cached
            fresh = await self._fetch(*scopes, enable_cae=enable_cae, **kwargs)
            self._tokens[key] = fresh
            return fresh

    async def _fetch(self, *scopes: str, **kwargs: Any) -> AccessToken:
        """A token from the inner credential. Its failures become the tool's errors here, once for every client
        (ARM, Graph, the DICOM data plane): Entra ID unavailable is temporary (the engine retries it, and says
        for how long it tried), wrong or missing credentials are permanent, with the sign-in hint."""
        self.fetched += 1
        try:
            token: AccessToken = await self._inner.get_token(*scopes, **kwargs)
        except ClientAuthenticationError as error:
            raise identity_failed("signing in to Azure", error.message, error.status_code) from error
        except (ServiceRequestError, ServiceResponseError) as error:
            raise connection_failed("signing in to Azure", error) from error
        return token

    async def close(self) -> None:
        await self._inner.close()

    async def __aenter__(self) -> SharedTokens:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()


def sandbox_credential(info: SandboxEndpoints, transport: AioHttpTransport) -> Any:
    """The sandbox's test service principal, against the sandbox's token endpoint (no instance discovery)."""
    from azure.identity.aio import ClientSecretCredential

    return ClientSecretCredential(
        info.tenant_id,
        info.client_id,
        info.client_secret,
        authority=info.url,
        disable_instance_discovery=True,
        transport=transport,
    )


def default_credential(cloud: Cloud, transport: AioHttpTransport) -> Any:
    """azure-identity's default chain: environment (secret, certificate, workload identity federation in CI),
    managed identity, Azure CLI, ... against the cloud's login host."""
    from azure.identity.aio import DefaultAzureCredential

    return DefaultAzureCredential(authority=cloud.login, transport=transport)


def token_claims(token: str) -> dict[str, Any]:
    """The (unverified) claims of a JWT access token; {} when it is not a JWT."""
    try:
        payload = token.split(".")[1]
        padded = payload + "=" * (-len(payload) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except (IndexError, ValueError, binascii.Error):
        return {}
    return claims if isinstance(claims, dict) else {}
