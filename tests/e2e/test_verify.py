"""`provision azure verify playbooks/azure-ohif.yaml` against the live sandbox after apply: it passes, and each
out-of-band break (a CORS origin removed, a role removed, an app that is not there) fails the right check with
a fix that names what to do."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import PLAYBOOK, Deployment

from provision.sandbox.azure.directory import ALICE_ID


def verify(deployment: Deployment, *args: str, plan: Path = PLAYBOOK) -> tuple[int, dict[str, Any]]:
    result = deployment.provision("azure", "verify", str(plan), "-o", "json", *args)
    assert result.stdout.strip(), result.output + repr(result.exception)
    return result.exit_code, json.loads(result.stdout)


def by_area(report: dict[str, Any], area: str) -> list[dict[str, Any]]:
    return [c for c in report["checks"] if c["area"] == area]


def test_verify_passes_after_apply(deployment: Deployment) -> None:
    code, report = verify(deployment, "--write-test")
    assert code == 0, report
    assert report["ok"] is True
    areas = [c["area"] for c in report["checks"]]
    for area in ("app registration", "token", "CORS", "QIDO", "STOW", "WADO", "cleanup", "role"):
        assert area in areas
    (cors,) = by_area(report, "CORS")
    assert cors["subject"] == deployment.viewer_url
    assert any("signed in through the viewer app" in c["detail"] for c in by_area(report, "QIDO"))
    assert len(by_area(report, "role")) == 2
    # the write test leaves nothing behind: only the session's study is listed
    with_studies = by_area(report, "QIDO")[0]["detail"]
    assert with_studies.startswith("200")


def test_text_report_is_a_table_with_a_summary(deployment: Deployment) -> None:
    result = deployment.provision("azure", "verify", str(PLAYBOOK))
    assert result.exit_code == 0, result.output
    assert "PASS" in result.stdout and "FAIL" not in result.stdout
    assert "passed, 0 failed." in result.stdout


def test_removed_cors_origin_fails_and_names_the_origin(deployment: Deployment) -> None:
    deployment.arm.set_cors_origins(deployment.dicom_id, ["https://other.example"])
    try:
        code, report = verify(deployment)
        assert code == 1 and report["ok"] is False
        (cors,) = by_area(report, "CORS")
        assert cors["ok"] is False
        assert deployment.viewer_url in cors["fix"] and "add the origin" in cors["fix"]
        assert all(c["ok"] for c in report["checks"] if c["area"] != "CORS")
        text = deployment.provision("azure", "verify", str(PLAYBOOK))
        assert text.exit_code == 1
        assert f"FAIL CORS {deployment.viewer_url}: add the origin {deployment.viewer_url}" in text.stdout
    finally:
        deployment.apply()
    assert verify(deployment)[0] == 0


def test_removed_role_fails_the_role_and_the_search(deployment: Deployment) -> None:
    assert deployment.arm.delete_role_assignments(deployment.dicom_id, ALICE_ID) == 1
    try:
        code, report = verify(deployment)
        assert code == 1
        failed = {(c["area"], c["subject"]) for c in report["checks"] if not c["ok"]}
        assert failed == {("role", "user alice@contoso.com: DICOM Data Owner"), ("QIDO", "/v2/studies")}
        (search,) = by_area(report, "QIDO")
        assert search["detail"].startswith("403") and "DICOM Data Reader or Owner" in search["fix"]
    finally:
        deployment.apply()


def test_missing_app_registration_fails_with_apply_as_the_fix(deployment: Deployment, tmp_path: Path) -> None:
    plan = tmp_path / "other-app.yaml"
    plan.write_text(PLAYBOOK.read_text().replace("unique_name: ohif-viewer", "unique_name: ohif-viewer-absent"))
    code, report = verify(deployment, plan=plan)
    assert code == 1
    registration = by_area(report, "app registration")
    assert [c["ok"] for c in registration] == [False, False, False]
    assert all(c["fix"] == f"run `provision azure apply {plan}`" for c in registration)


def test_unregistered_redirect_uri_fails_sign_in_with_entras_message_as_text(deployment: Deployment,
                                                                              tmp_path: Path) -> None:
    plan = tmp_path / "other-viewer.yaml"
    elsewhere = "http://127.0.0.1:9"
    plan.write_text(PLAYBOOK.read_text().replace("${OHIF_VIEWER_URL:-http://localhost:3000}", elsewhere))
    code, report = verify(deployment, plan=plan)
    assert code == 1
    (uris,) = [c for c in by_area(report, "app registration") if c["subject"] == "redirect URIs"]
    assert uris["ok"] is False and f"register {elsewhere}/callback on the spa platform" in uris["fix"]
    (sign_in,) = [c for c in by_area(report, "token") if c["subject"].startswith("viewer sign-in")]
    assert sign_in["ok"] is False
    # the sandbox's error page escapes quotes; the report shows Entra's message as text
    assert f"AADSTS50011: The redirect URI '{elsewhere}/callback'" in sign_in["detail"], sign_in["detail"]
