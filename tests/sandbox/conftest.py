"""The real Azure SDKs, configured against the sandbox exactly as a user would (TLS verification on)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

from provision.sandbox import RunningSandbox, SandboxInfo

T = TypeVar("T")
ARM_SCOPE = "https://management.azure.com/.default"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"


def make_credential(info: SandboxInfo, secret: str | None = None) -> Any:
    from azure.identity import ClientSecretCredential

    return ClientSecretCredential(
        info.tenant_id,
        info.client_id,
        secret if secret is not None else info.client_secret,
        authority=info.url,
        disable_instance_discovery=True,
        connection_verify=info.ca_bundle,
    )


def arm_kwargs(info: SandboxInfo) -> dict[str, Any]:
    """What every azure-mgmt-* client needs to talk to the sandbox instead of management.azure.com."""
    return {
        "base_url": info.url,
        "credential_scopes": [ARM_SCOPE],
        "connection_verify": info.ca_bundle,
        "polling_interval": 0.05,  # azure-core waits 30 s between polls when no Retry-After is sent
    }


@dataclass
class Azure:
    info: SandboxInfo
    credential: Any
    resources: Any
    healthcare: Any
    authorization: Any

    @property
    def sub(self) -> str:
        return self.info.subscription_id


@pytest.fixture
def info(clean_sandbox: RunningSandbox) -> SandboxInfo:
    return clean_sandbox.info


@pytest.fixture
def azure(info: SandboxInfo) -> Iterator[Azure]:
    from azure.mgmt.authorization import AuthorizationManagementClient
    from azure.mgmt.healthcareapis import HealthcareApisManagementClient
    from azure.mgmt.resource.resources import ResourceManagementClient

    credential = make_credential(info)
    kw = arm_kwargs(info)
    clients = Azure(
        info,
        credential,
        ResourceManagementClient(credential, info.subscription_id, **kw),
        HealthcareApisManagementClient(credential, info.subscription_id, **kw),
        AuthorizationManagementClient(credential, info.subscription_id, **kw),
    )
    yield clients
    for client in (clients.resources, clients.healthcare, clients.authorization):
        client.close()
    credential.close()


def graph_client(info: SandboxInfo, credential: Any, http_client: Any) -> Any:
    """msgraph-sdk's GraphServiceClient on an httpx.AsyncClient that trusts the sandbox CA."""
    from kiota_authentication_azure.azure_identity_authentication_provider import (
        AzureIdentityAuthenticationProvider,
    )
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph_core import GraphClientFactory

    http = GraphClientFactory.create_with_default_middleware(client=http_client)
    adapter = GraphRequestAdapter(AzureIdentityAuthenticationProvider(credential, scopes=[GRAPH_SCOPE]), client=http)
    adapter.base_url = f"{info.url}/v1.0"
    return GraphServiceClient(request_adapter=adapter)


GraphRunner = Callable[[Callable[[Any], Awaitable[T]]], T]


@pytest.fixture
def graph(info: SandboxInfo) -> GraphRunner[Any]:
    """`graph(scenario)` runs `async def scenario(client)` with a fresh GraphServiceClient and returns its result."""

    def run(scenario: Callable[[Any], Awaitable[T]]) -> T:
        async def main() -> T:
            import httpx
            from azure.identity.aio import ClientSecretCredential

            credential = ClientSecretCredential(
                info.tenant_id, info.client_id, info.client_secret, authority=info.url,
                disable_instance_discovery=True, connection_verify=info.ca_bundle,
            )
            http_client = httpx.AsyncClient(verify=ssl.create_default_context(cafile=info.ca_bundle))
            async with credential, http_client:
                return await scenario(graph_client(info, credential, http_client))

        return asyncio.run(main())

    return run


@pytest.fixture
def http(info: SandboxInfo) -> Iterator[Any]:
    """A plain httpx client (TLS verified) for wire-level checks the SDKs hide."""
    import httpx

    with httpx.Client(base_url=info.url, verify=ssl.create_default_context(cafile=info.ca_bundle),
                      timeout=10) as client:
        yield client


def token(http: Any, info: SandboxInfo, resource: str = "https://management.azure.com") -> str:
    response = http.post(
        f"/{info.tenant_id}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "client_id": info.client_id, "client_secret": info.client_secret,
              "scope": f"{resource}/.default"},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


@pytest.fixture
def arm_token(http: Any, info: SandboxInfo) -> str:
    return token(http, info)


@pytest.fixture
def graph_token(http: Any, info: SandboxInfo) -> str:
    return token(http, info, "https://graph.microsoft.com")
