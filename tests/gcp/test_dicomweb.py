"""Google DICOMweb in the sandbox and the Google target's data plane: each store's dicomWeb root backed by a real
Orthanc with the caller's IAM role enforced, Google's answers to duplicates, Google sign-in for browser
viewers, and `provision gcp upload | search` and `gcp.dicom_stores[].seed` against it."""

from __future__ import annotations

import json
import ssl
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from typer.testing import CliRunner

from provision.cli.main import app
from provision.cli.target import connection_of
from provision.dicom.dicomweb import trusted_session
from provision.dicom.synthetic import multipart_related, synthetic_study
from provision.gcp.client import sandbox_credentials

CLIENT_ID = "123456789012-viewer.apps.googleusercontent.com"
VIEWER = "http://localhost:3000"
SCOPE = ("email profile openid https://www.googleapis.com/auth/cloudplatformprojects.readonly "
         "https://www.googleapis.com/auth/cloud-healthcare")
PLAN = f"""\
version: 1
name: gcp-data
env: test
ohif:
  viewer_url: {VIEWER}
gcp:
  project: sandbox-project
  location: us-central1
  dataset:
    id: dataplane
  dicom_stores:
    - id: images
      seed: [seed]
  access:
    - role: viewer
      members: [group:radiology@example.org]
    - role: editor
      store: images
      members: [user:alice@example.org]
  oauth_client_id: {CLIENT_ID}
"""
SEEDED = synthetic_study(seed="gcp-seed", instances=3, patient_id="GCP-SEED")


@pytest.fixture
def cli(sandbox: Any, observer: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    monkeypatch.setenv("PROVISION_SANDBOX", str(Path(sandbox.info.state_dir) / "sandbox.json"))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture
def plan(tmp_path: Path) -> Path:
    (tmp_path / "seed").mkdir()
    for instance in SEEDED:
        (tmp_path / "seed" / f"{instance.sop_instance_uid}.dcm").write_bytes(instance.data)
    path = tmp_path / "plan.yaml"
    path.write_text(PLAN)
    return path


@pytest.fixture
def applied(cli: Any, plan: Path, observer: Any) -> dict[str, Any]:
    """The plan applied (from scratch), and its OHIF configuration; the viewer's OAuth client registered."""
    if cli("gcp", "plan", str(plan), "-o", "json").exit_code == 0:
        cli("gcp", "destroy", str(plan), "--auto-approve")
    result = cli("gcp", "apply", str(plan), "--auto-approve", "--out", "out")
    assert result.exit_code == 0, result.output
    observer.gcp_config(oauth_clients=[{"client_id": CLIENT_ID, "redirect_uris": [f"{VIEWER}/callback"],
                                        "javascript_origins": [VIEWER]}])
    ohif: dict[str, Any] = json.loads(Path("out/ohif.json").read_text())
    return ohif


def http_client(sandbox: Any) -> httpx.Client:
    return httpx.Client(verify=ssl.create_default_context(cafile=sandbox.info.ca_bundle), timeout=30)


def sign_in(sandbox: Any, ohif: dict[str, Any], email: str, scope: str = SCOPE) -> str:
    """What the viewer's browser gets from Google sign-in (the implicit flow): the access token."""
    oidc = ohif["oidc"][0]
    with http_client(sandbox) as http:
        discovery = http.get(f"{oidc['authority']}/.well-known/openid-configuration").json()
        answer = http.get(discovery["authorization_endpoint"], params={
            "client_id": oidc["client_id"], "redirect_uri": oidc["redirect_uri"],
            "response_type": oidc["response_type"], "scope": scope, "state": "s1", "nonce": "n1", "login_hint": email})
    assert answer.status_code == 302, answer.text
    fields = {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["location"]).fragment).items()}
    assert fields["state"] == "s1" and fields["token_type"] == "Bearer"
    return fields["access_token"]


def adc_token(sandbox: Any) -> str:
    """The tool's own token (the ADC account, owner of the project)."""
    from google.auth.transport.requests import Request

    credentials = sandbox_credentials(connection_of(sandbox.info).sandbox)  # type: ignore[arg-type]
    credentials.refresh(Request(session=trusted_session([Path(sandbox.info.ca_bundle)])))
    return str(credentials.token)


def root_of(ohif: dict[str, Any]) -> str:
    return str(ohif["dataSources"][0]["configuration"]["qidoRoot"])


def test_seed_and_upload_through_the_cli(cli: Any, applied: dict[str, Any], plan: Path, tmp_path: Path,
                                          observer: Any) -> None:
    root = root_of(applied)
    assert cli("gcp", "plan", str(plan), "--detailed-exitcode").exit_code == 0  # the seed is there
    more = tmp_path / "more.zip"
    study = synthetic_study(seed="gcp-upload", instances=4, patient_id="GCP-UP")
    with zipfile.ZipFile(more, "w") as archive:
        for instance in study:
            archive.writestr(f"{instance.sop_instance_uid}.dcm", instance.data)
    first = cli("gcp", "upload", str(plan), str(more), str(tmp_path / "seed"), "-o", "json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["summary"] == {"stored": 4, "already present": 3, "failed": 0,
                                                          "skipped": 0, "not sent": 0}
    mark = observer.mark()
    again = cli("gcp", "upload", str(plan), str(more), "-o", "json")
    assert json.loads(again.stdout)["summary"]["already present"] == 4
    assert [e["method"] for e in observer.since(mark) if "/dicomWeb/" in e["path"]] == ["GET"]
    found = cli("gcp", "search", str(plan), "--patient-id", "GCP-UP", "-o", "json")
    assert json.loads(found.stdout)["count"] == 1
    assert root.endswith("/dicomStores/images/dicomWeb")


def test_iam_decides_who_reads_and_who_writes(sandbox: Any, applied: dict[str, Any]) -> None:
    root = root_of(applied)
    body, content_type = multipart_related([synthetic_study(seed="iam-write")[0].data])
    with http_client(sandbox) as http:
        def call(email: str, method: str) -> tuple[int, str]:
            token = sign_in(sandbox, applied, email)
            headers = {"Authorization": f"Bearer {token}", "Origin": VIEWER}
            if method == "GET":
                response = http.get(f"{root}/studies", headers=headers)
            else:
                response = http.post(f"{root}/studies", content=body, headers={**headers,
                                                                              "Content-Type": content_type})
            assert response.headers["access-control-allow-origin"] == VIEWER  # the browser can read the answer
            error = response.json().get("error", {}) if response.status_code >= 400 else {}
            return response.status_code, f"{error.get('status', '')} {error.get('message', '')}".strip()

        assert call("alice@example.org", "GET")[0] == 200  # dicomEditor on the store
        assert call("alice@example.org", "POST")[0] == 200
        assert call("bob@example.org", "GET")[0] == 200  # dicomViewer on the dataset, through his group
        status, message = call("bob@example.org", "POST")
        assert status == 403 and message.startswith(
            "PERMISSION_DENIED Permission 'healthcare.dicomStores.dicomWebWrite' denied on resource 'projects/")
        status, message = call("carol@example.net", "GET")  # no binding at all
        assert status == 403 and "dicomWebRead" in message
        narrow = sign_in(sandbox, applied, "alice@example.org", scope="openid email")
        refused = http.get(f"{root}/studies", headers={"Authorization": f"Bearer {narrow}"})
        assert refused.status_code == 403 and refused.json()["error"]["message"] == \
            "Request had insufficient authentication scopes."
        missing = root.replace("/dicomStores/images/", "/dicomStores/nothere/")
        assert http.get(f"{missing}/studies", headers={"Authorization": f"Bearer {adc_token(sandbox)}"}
                        ).status_code == 404  # the owner learns it does not exist ...
        assert http.get(f"{missing}/studies", headers={
            "Authorization": f"Bearer {sign_in(sandbox, applied, 'carol@example.net')}"}).status_code == 403  # ...
        preflight = http.options(f"{root}/studies", headers={"Origin": VIEWER, "Access-Control-Request-Method": "GET",
                                                             "Access-Control-Request-Headers": "authorization"})
        assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == VIEWER


def test_duplicates_are_answered_as_google_does(sandbox: Any, applied: dict[str, Any]) -> None:
    root = root_of(applied)
    headers = {"Authorization": f"Bearer {adc_token(sandbox)}", "Accept": "application/dicom+json"}
    original = synthetic_study(seed="gcp-dup")[0]
    changed = synthetic_study(seed="gcp-dup", study_description="changed description")[0]
    assert original.sop_instance_uid == changed.sop_instance_uid and original.data != changed.data
    with http_client(sandbox) as http:
        def stow(data: bytes) -> httpx.Response:
            body, content_type = multipart_related([data])
            return http.post(f"{root}/studies", content=body, headers={**headers, "Content-Type": content_type})

        assert stow(original.data).status_code == 200
        same = stow(original.data)  # identical bytes: stored again, nothing changes
        assert same.status_code == 200 and "00081199" in same.json()
        different = stow(changed.data)
        assert different.status_code == 409
        (failed,) = different.json()["00081198"]["Value"]
        assert failed["00081197"]["Value"] == [272] and "already exists" in failed["00090097"]["Value"][0]


def test_google_sign_in_refuses_what_the_console_does_not_allow(sandbox: Any, applied: dict[str, Any]) -> None:
    oidc = applied["oidc"][0]
    assert oidc["authority"] == f"{sandbox.info.url}/google"
    authorize = f"{oidc['authority']}/o/oauth2/v2/auth"
    params = {"client_id": CLIENT_ID, "redirect_uri": f"{VIEWER}/callback", "response_type": "id_token token",
              "scope": SCOPE, "state": "s", "nonce": "n"}
    with http_client(sandbox) as http:
        page = http.get(authorize, params=params)
        assert page.status_code == 200 and "Choose an account" in page.text and "alice@example.org" in page.text
        unknown = http.get(authorize, params={**params, "client_id": "999-other.apps.googleusercontent.com"})
        assert unknown.status_code == 401 and "invalid_client" in unknown.text
        mismatch = http.get(authorize, params={**params, "redirect_uri": "http://localhost:3001/callback"})
        assert mismatch.status_code == 400 and "redirect_uri_mismatch" in mismatch.text
        silent = http.get(authorize, params={**params, "prompt": "none"})
        assert silent.status_code == 302 and "error=login_required" in silent.headers["location"]
        http.get(authorize, params={**params, "login_hint": "bob@example.org"})  # signs in: a session cookie
        renewed = http.get(authorize, params={**params, "prompt": "none"})
        fields = parse_qs(urlsplit(renewed.headers["location"]).fragment)
        token = fields["access_token"][0]
        identity = jwt.decode(fields["id_token"][0], options={"verify_signature": False})
        assert (identity["aud"], identity["email"], identity["nonce"]) == (CLIENT_ID, "bob@example.org", "n")
        info = http.get(f"{oidc['authority']}/v1/userinfo", headers={"Authorization": f"Bearer {token}"}).json()
        assert info["email"] == "bob@example.org"


def test_a_plan_with_several_stores_needs_store_named(cli: Any, tmp_path: Path) -> None:
    plan = tmp_path / "two.yaml"
    plan.write_text(PLAN.replace("      seed: [seed]\n", "    - id: other\n"))
    result = cli("gcp", "upload", str(plan), str(tmp_path))
    assert result.exit_code == 1
    assert "the plan declares 2 DICOM stores (images, other)" in result.output and "--store" in result.output


def test_a_member_removed_from_an_authoritative_entry_loses_access(cli: Any, sandbox: Any, applied: dict[str, Any],
                                                                   tmp_path: Path) -> None:
    """Google's way to take access away by deleting a member from the plan: `mode: authoritative` (additive
    grants leave no record of who the plan added; docs/gcp.md, "Removing access")."""
    def plan_with(members: str) -> str:
        path = tmp_path / f"plan-{len(members)}.yaml"
        path.write_text(PLAN.replace("  oauth_client_id:", "    - role: viewer\n      store: images\n"
                                     f"      mode: authoritative\n      members: [{members}]\n  oauth_client_id:"))
        return str(path)

    def search(email: str) -> int:
        with http_client(sandbox) as http:
            token = sign_in(sandbox, applied, email)
            return http.get(f"{root_of(applied)}/studies", headers={"Authorization": f"Bearer {token}"}).status_code

    granted = cli("gcp", "apply", plan_with("user:carol@example.net, user:dave@example.org"), "--auto-approve")
    assert granted.exit_code == 0, granted.output
    assert search("carol@example.net") == 200

    without_carol = plan_with("user:dave@example.org")
    pending = cli("gcp", "plan", without_carol, "--detailed-exitcode", "-o", "json")

    assert pending.exit_code == 2, pending.output
    [change] = [step for step in json.loads(pending.stdout)["steps"] if step["action"] != "no-op"]
    assert change["address"] == "gcp.iam[dataplane/images]" and change["action"] == "update"
    assert cli("gcp", "apply", without_carol, "--auto-approve").exit_code == 0
    assert search("carol@example.net") == 403
    assert cli("gcp", "plan", without_carol, "--detailed-exitcode").exit_code == 0
