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


@pytest.fixture(scope="session")
def artifacts() -> Path:
    path = ARTIFACTS / "viewer"
    path.mkdir(parents=True, exist_ok=True)
    return path
