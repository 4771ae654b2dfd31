"""open_session's choices of cloud, tenant, subscription, credential and trust, without touching a network."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from provision.azure import AzureSession, open_session
from provision.azure.credentials import SharedTokens, token_claims
from provision.cli.target import connection_of
from provision.core.target import Connection
from provision.errors import ConfigurationError, PlanError
from provision.plan import load_plan, parse_plan
from provision.sandbox import SandboxInfo

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
TENANT = "11111111-2222-4333-8444-555555555555"
SUBSCRIPTION = "66666666-7777-4888-9999-000000000000"


def _open(plan: Any, options: Connection) -> AzureSession:
    async def go() -> AzureSession:
        session = await open_session(plan, options)
        await session.aclose()
        return session

    return asyncio.run(go())


@pytest.fixture
def no_azure_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("AZURE_TENANT_ID", "AZURE_SUBSCRIPTION_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_a_missing_subscription_is_a_configuration_error(no_azure_env: pytest.MonkeyPatch) -> None:
    plan = load_plan(PLAYBOOKS / "azure-ohif.yaml", env={})
    with pytest.raises(ConfigurationError, match="AZURE_SUBSCRIPTION_ID"):
        _open(plan, Connection())


def test_real_cloud_takes_tenant_and_subscription_from_the_environment(no_azure_env: pytest.MonkeyPatch) -> None:
    no_azure_env.setenv("AZURE_TENANT_ID", TENANT)
    no_azure_env.setenv("AZURE_SUBSCRIPTION_ID", SUBSCRIPTION)
    session = _open(load_plan(PLAYBOOKS / "azure-ohif.yaml", env={}), Connection())
    assert (session.tenant_id, session.azure.subscription_id) == (TENANT, SUBSCRIPTION)
    assert session.cloud.name == "public" and not session.cloud.sandbox
    assert type(session.credential._inner).__name__ == "DefaultAzureCredential"
    assert len(session.resources) == 11


def test_the_plan_wins_over_the_environment_and_names_the_cloud(no_azure_env: pytest.MonkeyPatch) -> None:
    no_azure_env.setenv("AZURE_TENANT_ID", TENANT)
    text = (PLAYBOOKS / "azure-ohif.yaml").read_text().replace(
        "cloud: public", f"cloud: usgov\n  tenant_id: {SUBSCRIPTION}\n  subscription_id: {TENANT}"
    )
    session = _open(parse_plan(text, env={}), Connection())
    assert (session.tenant_id, session.azure.subscription_id) == (SUBSCRIPTION, TENANT)
    assert session.cloud.arm == "https://management.usgovcloudapi.net"


def test_the_sandbox_overrides_the_plans_tenant_and_subscription(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    import trustme

    trustme.CA().cert_pem.write_to_path(str(ca))
    info = SandboxInfo(url="https://127.0.0.1:1", ca_bundle=str(ca), tenant_id="t", subscription_id="s",
                       client_id="c", client_secret="x", state_dir=str(tmp_path))
    text = (PLAYBOOKS / "azure-ohif.yaml").read_text().replace(
        "cloud: public", f"cloud: china\n  tenant_id: {TENANT}\n  subscription_id: {SUBSCRIPTION}"
    )
    session = _open(parse_plan(text, env={}), connection_of(info))
    assert (session.tenant_id, session.azure.subscription_id, session.cloud.arm) == ("t", "s", info.url)
    assert type(session.credential._inner).__name__ == "ClientSecretCredential"


def test_a_ca_bundle_that_does_not_exist_is_refused(no_azure_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    no_azure_env.setenv("AZURE_SUBSCRIPTION_ID", SUBSCRIPTION)
    plan = load_plan(PLAYBOOKS / "azure-ohif.yaml", env={})
    with pytest.raises(ConfigurationError, match="CA bundle"):
        _open(plan, Connection(ca_bundle=tmp_path / "missing.pem"))


def test_a_plan_without_an_azure_section_is_refused() -> None:
    with pytest.raises(PlanError, match="no `azure:` section"):
        _open(parse_plan("version: 1\nname: no-azure\n", env={}), Connection())


def test_importing_the_target_and_the_cli_loads_no_cloud_sdk() -> None:
    code = (
        "import sys, provision.azure, provision.cli.main; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('azure', 'msgraph', 'kiota_http', 'aiohttp')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


class _Inner:
    def __init__(self) -> None:
        self.calls = 0

    async def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        self.calls += 1
        await asyncio.sleep(0.01)
        return AccessToken(f"token-{self.calls}", 2**31)

    async def close(self) -> None:
        pass


def test_concurrent_clients_share_one_token_per_scope() -> None:
    inner = _Inner()
    shared = SharedTokens(inner)

    async def go() -> list[str]:
        tokens = await asyncio.gather(*(shared.get_token("https://management.azure.com/.default") for _ in range(5)))
        graph = await shared.get_token("https://graph.microsoft.com/.default", enable_cae=True)
        return [t.token for t in tokens] + [graph.token]

    assert asyncio.run(go()) == ["token-1"] * 5 + ["token-2"]
    assert shared.fetched == inner.calls == 2


def test_token_claims_are_read_without_verification() -> None:
    import base64
    import json

    payload = base64.urlsafe_b64encode(json.dumps({"tid": TENANT}).encode()).decode().rstrip("=")
    assert token_claims(f"h.{payload}.s") == {"tid": TENANT}
    assert token_claims("not-a-jwt") == {}
