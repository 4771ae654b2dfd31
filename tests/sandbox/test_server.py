"""Start-up, `sandbox.json`, persistence across restarts, and `provision sandbox serve`."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from provision.errors import ConfigurationError
from provision.sandbox import SandboxControl, SandboxInfo, start_sandbox

from .conftest import arm_kwargs, make_credential


def test_starts_quickly_and_writes_its_info(tmp_path: Path) -> None:
    began = time.perf_counter()
    with start_sandbox(tmp_path / "state") as running:
        elapsed = time.perf_counter() - began
        info = running.info
        assert SandboxInfo.load(tmp_path / "state") == info
        assert SandboxInfo.load(tmp_path / "state" / "sandbox.json") == info
        assert json.loads(info.to_json())["url"] == info.url
        assert info.url.startswith("https://127.0.0.1:")
        assert info.gcp_project == "sandbox-project"
    assert elapsed < 2.0, f"start-up took {elapsed:.2f}s"


def test_info_load_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no sandbox info"):
        SandboxInfo.load(tmp_path)
    (tmp_path / "sandbox.json").write_text("{}")
    with pytest.raises(ConfigurationError, match="lacks"):
        SandboxInfo.load(tmp_path)


def test_state_survives_a_restart_on_another_port(tmp_path: Path) -> None:
    from azure.mgmt.healthcareapis import HealthcareApisManagementClient
    from azure.mgmt.healthcareapis.models import DicomService, Workspace
    from azure.mgmt.resource.resources import ResourceManagementClient

    state = tmp_path / "state"
    with start_sandbox(state, lro_seconds=0.1) as first:
        info1 = first.info
        cred = make_credential(info1)
        rc = ResourceManagementClient(cred, info1.subscription_id, **arm_kwargs(info1))
        rc.resource_groups.create_or_update("rg-keep", {"location": "westus2", "tags": {"k": "v"}})
        hc = HealthcareApisManagementClient(cred, info1.subscription_id, **arm_kwargs(info1))
        hc.workspaces.begin_create_or_update("rg-keep", "wskeep", Workspace(location="westus2")).result()
        hc.dicom_services.begin_create_or_update("rg-keep", "wskeep", "dcm", DicomService(location="westus2")).result()
        ca_before = Path(info1.ca_bundle).read_bytes()
    with start_sandbox(state) as second:
        info2 = second.info
        assert info2.url != info1.url
        for field in ("tenant_id", "subscription_id", "client_id", "client_secret", "ca_bundle"):
            assert getattr(info2, field) == getattr(info1, field)
        assert Path(info2.ca_bundle).read_bytes() == ca_before  # clients keep trusting it
        cred = make_credential(info2)
        rc = ResourceManagementClient(cred, info2.subscription_id, **arm_kwargs(info2))
        assert rc.resource_groups.get("rg-keep").tags == {"k": "v"}
        hc = HealthcareApisManagementClient(cred, info2.subscription_id, **arm_kwargs(info2))
        dicom = hc.dicom_services.get("rg-keep", "wskeep", "dcm")
        assert dicom.provisioning_state == "Succeeded"
        assert dicom.service_url == f"{info2.url}/dicom/wskeep-dcm"  # derived from the request, not stored


def test_reset_keeps_identity_and_clears_resources(clean_sandbox: Any, sandbox_control: SandboxControl) -> None:
    from azure.mgmt.resource.resources import ResourceManagementClient

    info = clean_sandbox.info
    rc = ResourceManagementClient(make_credential(info), info.subscription_id, **arm_kwargs(info))
    rc.resource_groups.create_or_update("rg-gone", {"location": "westus2"})
    sandbox_control.reset()
    assert rc.resource_groups.check_existence("rg-gone") is False  # the cached token still works
    assert SandboxInfo.load(info.state_dir) == info


def test_a_target_without_a_sandbox_package_is_skipped() -> None:
    from provision.sandbox import azure, gcp, server

    assert server.emulated_targets(("orthanc", "gcp", "azure")) == [gcp, azure]


@pytest.mark.parametrize("google_first", [True, False], ids=["google-first", "google-last"])
def test_google_token_path_is_googles_whatever_the_mount_order(tmp_path: Path, google_first: bool) -> None:
    """Entra's `{tenant}` segment takes only what can name a tenant, so `/google/oauth2/token` is never Entra's."""
    from provision.sandbox import server
    from provision.sandbox.gcp.oauth import adc_info
    from provision.sandbox.tokens import TokenSigner
    from provision.sandbox.world import World

    targets = server.emulated_targets(("gcp", "azure") if google_first else ("azure", "gcp"))
    world = World(tmp_path, targets=targets)
    ident = world.identity
    adc = adc_info(SimpleNamespace(url="https://testserver", client_id=ident.client_id,
                                   client_secret=ident.client_secret))
    app = server.build_app(world, TokenSigner.load_or_create(tmp_path), targets)

    async def exchange() -> tuple[httpx.Response, ...]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="https://testserver") as client:
            google = await client.post("/google/oauth2/token", data={
                "grant_type": "refresh_token", **{k: adc[k] for k in ("client_id", "client_secret", "refresh_token")}})
            refused = await client.post("/google/oauth2/token", data={"grant_type": "client_credentials"})
            entra = await client.post(f"/{ident.tenant_id}/oauth2/v2.0/token", data={
                "grant_type": "client_credentials", "client_id": ident.client_id,
                "client_secret": ident.client_secret, "scope": "https://management.azure.com/.default"})
            return google, refused, entra

    google, refused, entra = asyncio.run(exchange())
    assert google.status_code == 200, google.text
    assert google.json()["access_token"].startswith("ya29.")
    assert refused.json() == {"error": "unsupported_grant_type",
                              "error_description": "Invalid grant_type: client_credentials"}  # Google's, not AADSTS
    assert entra.status_code == 200, entra.text


def test_cli_serve_prints_one_json_line(tmp_path: Path) -> None:
    state = tmp_path / "served"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    code = "from provision.cli.sandbox import app; app()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "serve", "--state", str(state), "--lro-seconds", "0.5", "--no-dicom-sp"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        info = SandboxInfo.from_dict(json.loads(line))
        assert SandboxInfo.load(state) == info
        with SandboxControl(info) as control:
            assert control.config()["lro_seconds"] == 0.5
            assert control.config()["dicom_sp"] is False
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert out == ""  # exactly one line on stdout
