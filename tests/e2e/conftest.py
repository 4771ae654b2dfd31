"""The main job, deployed once per session: a sandbox, `provision azure apply playbooks/azure-ohif.yaml`
against it (the viewer origin set to where the test serves OHIF), and a test study stored as the plan's user.

The system programs (Orthanc, Chromium, certutil) are required, not optional: when one is missing the tests
fail with the command that installs them (`scripts/install-system-deps.sh`, which `.ci/run` calls).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from e2e_http import Arm, user_token
from e2e_system import require_system_programs
from e2e_viewer import REPO

from provision.dicom.orthanc_process import free_port
from provision.dicom.synthetic import SyntheticInstance, multipart_related, synthetic_study
from provision.sandbox import RunningSandbox, SandboxInfo

PLAYBOOK = REPO / "playbooks" / "azure-ohif.yaml"
ARTIFACTS = REPO / "test-artifacts"
USER = "alice@contoso.com"
STUDY_DESCRIPTION = "provision e2e study"


@dataclass
class Deployment:
    """What `provision azure apply` produced, and how to reach it."""

    sandbox: RunningSandbox
    info: SandboxInfo
    out: Path
    ohif: dict[str, Any]
    viewer_url: str
    env: dict[str, str]
    arm: Arm
    dicom_id: str
    study: list[SyntheticInstance]

    @property
    def oidc(self) -> dict[str, Any]:
        return dict(self.ohif["oidc"][0])

    @property
    def dicomweb_root(self) -> str:
        return str(self.ohif["dataSources"][0]["configuration"]["qidoRoot"])

    def provision(self, *args: str) -> Any:
        """Run the `provision` CLI in-process against this deployment's sandbox.

        In a worker thread: the CLI calls asyncio.run(), which refuses to run where an event loop is already
        running, as Playwright's sync API keeps one in the test's thread.
        """
        from concurrent.futures import ThreadPoolExecutor

        from typer.testing import CliRunner

        from provision.cli.main import app

        with ThreadPoolExecutor(1) as pool:
            return pool.submit(CliRunner().invoke, app, list(args), env=self.env).result()

    def apply(self) -> None:
        """Put the live state back to the plan (after a test changed it out of band)."""
        result = self.provision("azure", "apply", str(PLAYBOOK), "--auto-approve", "--out", str(self.out))
        assert result.exit_code == 0, result.output

    def user_token(self, user: str = USER) -> str:
        return str(user_token(self.info, self.oidc, user)["access_token"])


@pytest.fixture(scope="session")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    require_system_programs()
    from e2e_http import client

    from provision.sandbox import start_sandbox

    work = tmp_path_factory.mktemp("e2e")
    viewer_url = f"http://127.0.0.1:{free_port()}"
    with start_sandbox(work / "sandbox", lro_seconds=0.05) as sandbox:
        info = sandbox.info
        env = {"PROVISION_SANDBOX": str(Path(info.state_dir) / "sandbox.json"), "OHIF_VIEWER_URL": viewer_url,
               "NO_COLOR": "1"}
        arm = Arm(info)
        deployment = Deployment(sandbox=sandbox, info=info, out=work / "provision-out", ohif={},
                                viewer_url=viewer_url, env=env, arm=arm,
                                dicom_id=arm.dicom_id("rg-ohif-demo", "ohifws", "ohif-dicom"), study=[])
        deployment.apply()
        deployment.ohif = json.loads((deployment.out / "ohif.json").read_text())
        deployment.study = synthetic_study(seed="e2e", instances=3, study_description=STUDY_DESCRIPTION)
        body, content_type = multipart_related([i.data for i in deployment.study])
        with client(info) as http:
            stored = http.post(f"{deployment.dicomweb_root}/studies", content=body, headers={
                "Authorization": f"Bearer {deployment.user_token()}", "Content-Type": content_type,
                "Accept": "application/dicom+json"})
        assert stored.status_code == 200, stored.text
        try:
            yield deployment
        finally:
            arm.close()


@pytest.fixture(scope="module")
def chromium(deployment: Deployment, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Debian's Chromium for one viewer test module, trusting the sandbox CA through NSS. Per module, not per
    session: Playwright's sync API keeps an event loop running in the test thread while it is open, and every
    later test calling asyncio.run() would fail."""
    from e2e_browser import CHROMIUM_FLAGS, chromium_path, trusted_home
    from playwright.sync_api import sync_playwright

    env = trusted_home(tmp_path_factory.mktemp("browser-home"), deployment.info.ca_bundle)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS,
                                             env=env)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    path = ARTIFACTS / "viewer"
    path.mkdir(parents=True, exist_ok=True)
    return path


DATA_PLAN = """\
version: 1
name: data-plane
env: e2e
azure:
  location: westeurope
  resource_group:
    name: rg-data
  workspace:
    name: dataws
  dicom:
    name: data-dicom
  access:
    - service_principal: {principal}   # the tool's own identity: upload, search and the change feed use it
      role: DICOM Data Owner
"""


@dataclass
class DataStore:
    """A second DICOM service in the deployment's sandbox, for the data-plane tests (upload, search, change feed,
    seeding), so the viewer's service keeps exactly its one test study. The tool's identity owns its data."""

    deployment: Deployment
    plan: Path
    root: str

    def provision(self, *args: str) -> Any:
        return self.deployment.provision(*args)

    def token(self) -> str:
        from e2e_http import DICOM_AUDIENCE, app_token

        return app_token(self.deployment.info, DICOM_AUDIENCE)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token()}", "Accept": "application/dicom+json"}

    def study_uids(self) -> list[str]:
        from e2e_http import client

        with client(self.deployment.info) as http:
            found = http.get(f"{self.root}/studies", params={"limit": "200"}, headers=self.headers())
        return [s["0020000D"]["Value"][0] for s in found.json()] if found.status_code == 200 else []

    def clear(self) -> None:
        """Delete every study (the change feed keeps their history)."""
        from e2e_http import client

        headers = self.headers()
        with client(self.deployment.info) as http:
            for uid in self.study_uids():
                assert http.delete(f"{self.root}/studies/{uid}", headers=headers).status_code == 204


@pytest.fixture(scope="session")
def data_store(deployment: Deployment) -> DataStore:
    plan = deployment.out.parent / "data-plan.yaml"
    plan.write_text(DATA_PLAN.format(principal=deployment.sandbox.world.identity.sp_object_id))
    applied = deployment.provision("azure", "apply", str(plan), "--auto-approve", "--out", str(plan.parent / "data"))
    assert applied.exit_code == 0, applied.output
    return DataStore(deployment, plan, f"{deployment.info.url}/dicom/dataws-data-dicom/v2")
