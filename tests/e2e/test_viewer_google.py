"""The Google proof: the real OHIF viewer in Debian's Chromium, configured only by the `app-config.js` that
`provision gcp apply playbooks/gcp-ohif.yaml` wrote, signs a user in with Google's OpenID Connect implicit flow
(OHIF's google.js settings, run by the legacy oidc-client library OHIF uses for `id_token token`, which checks
the id token's signature against the JWKS, its issuer, audience and nonce, and loads the user info), lists the
test study from the store's dicomWeb root and opens it (frames are fetched). The negative twin signs in an
account IAM grants nothing (carol@example.net): the store answers 403 PERMISSION_DENIED and OHIF shows "Data
Source Connection Error".

What stands in for Google (docs/viewer-proof.md says what this proves and what it does not): the sandbox plays
accounts.google.com at `{sandbox}/google` (the OHIF config's `authority` points there when apply runs against the
sandbox, as Azure's points at the sandbox's Entra ID), and the browser OAuth client, which no public API can
create, is registered through the sandbox's control API with exactly the JavaScript origin and redirect URI that
apply printed. Screenshots and logs go to test-artifacts/viewer/.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import REPO, Deployment
from e2e_browser import Run, browser_run, wait_until
from e2e_http import client
from e2e_viewer import ViewerServer, ohif_dist

from provision.dicom.orthanc_process import free_port
from provision.dicom.synthetic import multipart_related, synthetic_study
from provision.sandbox import SandboxControl

pytestmark = pytest.mark.slow

PLAYBOOK = REPO / "playbooks" / "gcp-ohif.yaml"
STUDY_DESCRIPTION = "provision google e2e study"
CONNECTION_ERROR = "Data Source Connection Error"


@dataclass
class GoogleDeployment:
    viewer_url: str
    out: Path
    ohif: dict[str, Any]

    @property
    def dicomweb_root(self) -> str:
        return str(self.ohif["dataSources"][0]["configuration"]["qidoRoot"])


def registered_client(apply_output: str) -> dict[str, Any]:
    """The OAuth client as apply told the user to register it (its notes), in the sandbox's terms."""
    client_id = re.search(r"Register on OAuth client (\S+)", apply_output)
    origins = re.search(r"Authorized JavaScript origins: (\S+)", apply_output)
    redirect = re.search(r"Authorized redirect URIs: (\S+)", apply_output)
    assert client_id and origins and redirect, apply_output
    return {"client_id": client_id.group(1), "javascript_origins": [origins.group(1)],
            "redirect_uris": [redirect.group(1)]}


@pytest.fixture(scope="module")
def google(deployment: Deployment) -> GoogleDeployment:
    viewer_url = f"http://127.0.0.1:{free_port()}"
    out = deployment.out.parent / "provision-out-google"
    env = {**deployment.env, "OHIF_VIEWER_URL": viewer_url}
    from concurrent.futures import ThreadPoolExecutor

    from typer.testing import CliRunner

    from provision.cli.main import app

    with client(deployment.info) as http:
        http.post(f"{deployment.info.url}/_sandbox/gcp/config", json={"dataset_init_seconds": 0}).raise_for_status()
    with ThreadPoolExecutor(1) as pool:  # Playwright keeps an event loop in this thread; the CLI needs its own
        applied = pool.submit(CliRunner().invoke, app, ["gcp", "apply", str(PLAYBOOK), "--auto-approve", "--out",
                                                        str(out)], env=env).result()
    assert applied.exit_code == 0, applied.output
    registration = registered_client(applied.stdout)
    deployed = GoogleDeployment(viewer_url, out, json.loads((out / "ohif.json").read_text()))
    oidc = deployed.ohif["oidc"][0]
    assert oidc["authority"] == f"{deployment.info.url}/google" and oidc["response_type"] == "id_token token"
    with client(deployment.info) as http:
        http.post(f"{deployment.info.url}/_sandbox/gcp/config",
                  json={"oauth_clients": [registration]}).raise_for_status()
        # alice (dicomEditor on the store) stores the test study, signed in as the viewer would sign her in
        authorize = http.get(f"{oidc['authority']}/o/oauth2/v2/auth", params={
            "client_id": oidc["client_id"], "redirect_uri": oidc["redirect_uri"], "response_type": "token",
            "scope": oidc["scope"], "login_hint": "alice@example.org"})
        token = parse_qs(urlsplit(authorize.headers["location"]).fragment)["access_token"][0]
        body, content_type = multipart_related([i.data for i in synthetic_study(
            seed="google-e2e", instances=3, study_description=STUDY_DESCRIPTION)])
        stored = http.post(f"{deployed.dicomweb_root}/studies", content=body, headers={
            "Authorization": f"Bearer {token}", "Content-Type": content_type, "Accept": "application/dicom+json"})
    assert stored.status_code == 200, stored.text
    return deployed


@pytest.fixture(scope="module")
def viewer(google: GoogleDeployment) -> Iterator[ViewerServer]:
    with ViewerServer(ohif_dist(), google.out / "app-config.js", google.viewer_url) as server:
        yield server


@pytest.fixture
def run(request: pytest.FixtureRequest, chromium: Any, viewer: ViewerServer, google: GoogleDeployment,
        artifacts: Path) -> Iterator[Run]:
    with browser_run(request, chromium, google.dicomweb_root, artifacts) as current:
        yield current


def test_google_viewer_signs_in_lists_and_opens_the_study(run: Run, viewer: ViewerServer,
                                                          deployment: Deployment) -> None:
    with SandboxControl(deployment.info) as control:
        mark = control.log()[-1]["seq"]
        run.sign_in(viewer.url, "Choose an account", "alice@example.org")
        run.page.get_by_text(STUDY_DESCRIPTION).wait_for(timeout=60_000)
        run.screenshot("study-list")
        google = [(e["method"], e["path"]) for e in control.log(since=mark) if e["path"].startswith("/google/")]
    assert [status for status, _ in run.searches()] == [200]
    # the viewer's OIDC client read Google's discovery document, fetched the keys to check the id token's
    # signature, and loaded the user info with the access token
    for call in (("GET", "/google/.well-known/openid-configuration"), ("GET", "/google/o/oauth2/v2/auth"),
                 ("GET", "/google/oauth2/v3/certs"), ("GET", "/google/v1/userinfo")):
        assert call in google, google

    run.page.get_by_text(STUDY_DESCRIPTION).click()
    run.page.get_by_role("button", name="Basic Viewer").click()
    wait_until(run.page, lambda: any("/frames/" in url for _, url in run.responses), timeout=60)
    assert 200 in [status for status, url in run.responses if "/frames/" in url], run.responses
    skip = run.page.get_by_text("Skip all")
    if skip.count():
        skip.first.click()
    run.page.wait_for_timeout(1500)
    run.screenshot("viewer")
    assert all(status < 400 for status, _ in run.responses), run.responses
    assert not run.failures


def test_google_viewer_without_a_role_meets_permission_denied(run: Run, viewer: ViewerServer) -> None:
    run.sign_in(viewer.url, "Choose an account", "carol@example.net")
    run.page.get_by_text(CONNECTION_ERROR).wait_for(timeout=60_000)
    run.screenshot("forbidden")
    assert [status for status, _ in run.searches()] == [403]
    assert run.page.get_by_text(STUDY_DESCRIPTION).count() == 0
