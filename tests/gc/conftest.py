"""Fixtures for pull-request environments: `provision ...` in-process against the session sandbox."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from provision.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
AZURE = str(ROOT / "playbooks/azure-ephemeral.yaml")
GCP = str(ROOT / "playbooks/gcp-ephemeral.yaml")
LOCATION = "us-central1"


class Cli:
    """`provision ...` in-process, pointed at the session sandbox through PROVISION_SANDBOX, no terminal."""

    def __init__(self, sandbox: Any, out: Path) -> None:
        self.sandbox = sandbox
        self.out = out
        self.runner = CliRunner()
        self.azure_playbook, self.gcp_playbook = AZURE, GCP
        self.env = {"PROVISION_SANDBOX": str(Path(sandbox.info.state_dir) / "sandbox.json"), "NO_COLOR": "1",
                    "AZURE_SUBSCRIPTION_ID": "", "GOOGLE_CLOUD_PROJECT": ""}

    def __call__(self, *args: str, pr: str | None = None, code: int = 0) -> str:
        env = {**self.env, **({"PR_NUMBER": pr} if pr is not None else {})}
        result = self.runner.invoke(app, list(args), env=env)
        assert result.exit_code == code, f"provision {' '.join(args)} -> {result.exit_code}\n{result.output}"
        return result.output

    def apply(self, pr: str) -> None:
        self("azure", "apply", AZURE, "--auto-approve", "--out", str(self.out / f"azure-{pr}"), pr=pr)
        self("gcp", "apply", GCP, "--auto-approve", "--out", str(self.out / f"gcp-{pr}"), pr=pr)

    def destroy(self, pr: str) -> None:
        self("azure", "destroy", AZURE, "--auto-approve", pr=pr)
        self("gcp", "destroy", GCP, "--auto-approve", pr=pr)

    def gc(self, *args: str, code: int = 0) -> dict[str, Any]:
        output = self("gc", "--gcp-location", LOCATION, "--output", "json", *args, code=code)
        return dict(json.loads(output))


@pytest.fixture
def cli(clean_sandbox: Any, tmp_path: Path) -> Iterator[Cli]:
    info = clean_sandbox.info
    # a new dataset answers "not initialized" for 1 s by default; the next reset puts that back
    httpx.post(f"{info.url}/_sandbox/gcp/config", json={"dataset_init_seconds": 0},
               verify=ssl.create_default_context(cafile=info.ca_bundle)).raise_for_status()
    yield Cli(clean_sandbox, tmp_path)


@pytest.fixture
def arm(clean_sandbox: Any) -> Iterator[httpx.Client]:
    """ARM over HTTPS with the sandbox's own token (control calls too); throttling is switched off afterwards."""
    info = clean_sandbox.info
    verify = ssl.create_default_context(cafile=info.ca_bundle)
    token = httpx.post(
        f"{info.url}/{info.tenant_id}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "client_id": info.client_id, "client_secret": info.client_secret,
              "scope": "https://management.azure.com/.default"},
        verify=verify,
    ).json()["access_token"]
    with httpx.Client(base_url=info.url, verify=verify, headers={"Authorization": f"Bearer {token}"}) as client:
        try:
            yield client
        finally:
            client.post("/_sandbox/throttling", json={"enabled": False, "defaults": True})
