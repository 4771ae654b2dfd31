"""A self-hosted deployment for tests: a plan file in a temporary directory, the `provision` CLI run in-process
against it, and (for the tests that need one) the real Orthanc and nginx started with `provision orthanc up`
and stopped with `down`, whatever happens in between.

The two secrets come from the environment, as for a user: `ORTHANC_ADMIN_PASSWORD`, `PROVISION_SHARE_KEY`.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import ssl
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from provision.dicom.orthanc_process import free_port
from provision.dicom.synthetic import SyntheticInstance, multipart_related, synthetic_study
from provision.orthanc import sharetoken

REPO = Path(__file__).resolve().parents[2]
OHIF_CACHE = Path(os.environ.get("PROVISION_OHIF_CACHE", REPO / ".cache" / "ohif"))
ADMIN_PASSWORD = "admin-password-for-tests-7Q2x"
SIGNING_KEY = "signing-key-for-tests-0123456789abcdefXYZ"
PATIENT_ID = "PROVISION-SHARE-1"
FRAMES = "multipart/related; type=application/octet-stream; transfer-syntax=*"


def required_programs() -> list[str]:
    """What `up` needs that is missing (the tests fail, never skip: .ci/run installs them)."""
    missing = [name for name, path in (("orthanc", "/usr/sbin/Orthanc"), ("nginx", "/usr/sbin/nginx"),
                                       ("orthanc-dicomweb", "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"),
                                       ("orthanc-python", "/usr/share/orthanc/plugins/libOrthancPython.so"),
                                       ("python3-jwt", "/usr/lib/python3/dist-packages/jwt/__init__.py"))
               if not Path(path).exists()]
    if shutil.which("npm") is None and not (OHIF_CACHE / "app-3.13.2" / "dist" / "index.html").is_file():
        missing.append("npm")
    return missing


def plan_text(directory: Path, *, https_port: int, http_port: int, extra: str = "", name: str = "share-test") -> str:
    return f"""version: 1
name: {name}
ohif:
  friendly_name: Orthanc under test
orthanc:
  directory: {directory}
  public_url: https://localhost:{https_port}
  http_port: {http_port}
  tls:
    local_ca: true
  cors_origins: [https://viewer.example.org]
{extra}"""


@dataclass
class Result:
    exit_code: int
    output: str


@dataclass
class Deployment:
    """One plan and its target directory; `provision(...)` runs the CLI in-process with its environment."""

    workdir: Path
    plan: Path
    root: Path
    https_port: int
    http_port: int
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"https://localhost:{self.https_port}"

    @property
    def ca(self) -> str:
        return str(self.root / "tls" / "ca.pem")

    @property
    def loopback(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def provision(self, *args: str) -> Result:
        """In a worker thread: the CLI calls asyncio.run(), which refuses to run inside a running event loop
        (Playwright's sync API keeps one in the test's thread)."""
        from typer.testing import CliRunner

        from provision.cli.main import app

        def invoke() -> Any:
            with contextlib.chdir(self.workdir):
                return CliRunner().invoke(app, list(args), env=self.env)

        with ThreadPoolExecutor(1) as pool:
            done = pool.submit(invoke).result()
        return Result(done.exit_code, done.output)

    def ok(self, *args: str) -> str:
        result = self.provision(*args)
        assert result.exit_code == 0, result.output
        return result.output

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, verify=ssl.create_default_context(cafile=self.ca), timeout=30,
                            trust_env=False)

    def admin(self) -> tuple[str, str]:
        return ("admin", ADMIN_PASSWORD)

    def store(self, instances: list[SyntheticInstance]) -> None:
        body, content_type = multipart_related([instance.data for instance in instances])
        with self.client() as http:
            stored = http.post("/dicom-web/studies", content=body, auth=self.admin(),
                               headers={"Content-Type": content_type, "Accept": "application/dicom+json"})
        assert stored.status_code == 200, stored.text

    def mint(self, studies: list[str], *, lifetime: int = 600, issued_ago: int = 0, upload: bool = False,
             share_id: str | None = None) -> str:
        """A token as `share` signs it (tests need expired ones and many at once)."""
        import secrets
        import time

        now = int(time.time()) - issued_ago
        return sharetoken.mint(SIGNING_KEY.encode(), studies, share_id=share_id or secrets.token_urlsafe(8),
                               issued_at=now, expires_at=now + lifetime, upload=upload)

    def share(self, *args: str) -> tuple[str, str, str]:
        """`provision orthanc share`: (the link, its token, its share id)."""
        output = self.ok("orthanc", "share", str(self.plan), *args)
        link = re.search(r"https://\S+token=(\S+)", output)
        share_id = re.search(r"Share (\S+):", output)
        assert link is not None and share_id is not None, output
        return link.group(0), link.group(1), share_id.group(1)


def new_deployment(workdir: Path, *, extra: str = "", name: str = "share-test") -> Deployment:
    workdir.mkdir(parents=True, exist_ok=True)
    root = workdir / "site"
    https_port, http_port = free_port(), free_port()
    plan = workdir / "plan.yaml"
    plan.write_text(plan_text(root, https_port=https_port, http_port=http_port, extra=extra, name=name))
    env = {"ORTHANC_ADMIN_PASSWORD": ADMIN_PASSWORD, "PROVISION_SHARE_KEY": SIGNING_KEY,
           "PROVISION_OHIF_CACHE": str(OHIF_CACHE), "NO_COLOR": "1", "PROVISION_SANDBOX": ""}
    return Deployment(workdir, plan, root, https_port, http_port, env)


@contextlib.contextmanager
def running(deployment: Deployment) -> Iterator[Deployment]:
    """Applied and up; always down afterwards (and nothing of it left running)."""
    from provision.dicom import processes

    deployment.ok("orthanc", "apply", str(deployment.plan), "--auto-approve")
    try:
        deployment.ok("orthanc", "up", str(deployment.plan))
        yield deployment
    finally:
        deployment.provision("orthanc", "down", str(deployment.plan))
        for name, pid_file in (("nginx", "nginx.pid"), ("Orthanc", "orthanc.pid")):
            pid = processes.running_pid(deployment.root / "run" / pid_file, name)
            if pid is not None:  # down failed: stop our own processes by pid, never by name
                processes.stop(pid, name)


def two_studies_of_one_patient() -> tuple[list[SyntheticInstance], list[SyntheticInstance]]:
    """Study A (the one shared) and study B (a prior of the same patient, never to be shown)."""
    a = synthetic_study(seed="share-A", instances=2, study_description="Shared study A", patient_id=PATIENT_ID,
                        accession_number="SHAREA", study_date="20240301")
    b = synthetic_study(seed="share-B", instances=1, study_description="Prior study B", patient_id=PATIENT_ID,
                        accession_number="SHAREB", study_date="20230101")
    return a, b
