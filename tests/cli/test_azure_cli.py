"""`provision azure ...` as a user runs it: the real entry point in a child process, no terminal,
pointed at the session sandbox through PROVISION_SANDBOX."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = str(ROOT / "playbooks" / "azure-ohif.yaml")
WRITES = ("PUT", "POST", "PATCH", "DELETE")


def provision(sandbox: Any, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "PROVISION_SANDBOX": str(Path(sandbox.info.state_dir) / "sandbox.json")}
    return subprocess.run([sys.executable, "-m", "provision", *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, env=env, cwd=cwd, timeout=300)


def writes(control: Any) -> list[str]:
    return [f"{e['method']} {e['path']}" for e in control.log() if e["method"] in WRITES
            and "/oauth2/" not in e["path"]]


def test_plan_apply_output_destroy(clean_sandbox: Any, sandbox_control: Any, tmp_path: Path) -> None:
    secret = clean_sandbox.info.client_secret

    planned = provision(clean_sandbox, tmp_path, "azure", "plan", PLAYBOOK, "--detailed-exitcode")
    assert planned.returncode == 2, planned.stderr
    assert "Plan: 8 to create" in planned.stdout
    assert "+ azure.dicom_service[ohif-dicom]  create" in planned.stdout
    assert "cors.origins = [\"http://localhost:3000\"]" in planned.stdout
    # the permission by its name, not as GUIDs (issue 12 #12); the JSON plan keeps the GUIDs
    assert 'permissions = ["Dicom.ReadWrite (Azure API for DICOM, delegated)"]' in planned.stdout

    refused = provision(clean_sandbox, tmp_path, "azure", "apply", PLAYBOOK)
    assert refused.returncode == 1
    assert "--auto-approve" in refused.stderr and "Traceback" not in refused.stderr
    assert writes(sandbox_control) == []

    applied = provision(clean_sandbox, tmp_path, "azure", "apply", PLAYBOOK, "--auto-approve", "-o", "json")
    assert applied.returncode == 0, applied.stderr
    document = json.loads(applied.stdout)
    assert sorted(step["action"] for step in document["applied"]) == ["create"] * 8
    # one folder per target; the files hold no secret and a web server under another user may read them
    assert document["files"] == ["provision-out/azure/ohif.json", "provision-out/azure/app-config.js"]
    for name in ("ohif.json", "app-config.js"):
        assert (tmp_path / "provision-out" / "azure" / name).stat().st_mode & 0o777 == 0o644
    written = json.loads((tmp_path / "provision-out" / "azure" / "ohif.json").read_text())
    assert written == document["ohif"]
    assert written["oidc"][0]["authority"] == f"{clean_sandbox.info.url}/{clean_sandbox.info.tenant_id}/v2.0/"

    sandbox_control.clear_log()
    again = provision(clean_sandbox, tmp_path, "azure", "plan", PLAYBOOK, "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "No changes." in again.stdout
    shown = provision(clean_sandbox, tmp_path, "azure", "output", PLAYBOOK)
    assert shown.returncode == 0 and json.loads(shown.stdout) == written
    as_json = provision(clean_sandbox, tmp_path, "azure", "output", PLAYBOOK, "--output", "json")
    assert as_json.returncode == 0 and json.loads(as_json.stdout) == written  # --output means the format everywhere
    summary = provision(clean_sandbox, tmp_path, "azure", "output", PLAYBOOK, "--output", "text")
    assert summary.returncode == 0 and "sign-in: " in summary.stdout and "/v2" in summary.stdout
    assert writes(sandbox_control) == []

    for output in (planned, refused, applied, again, shown, as_json, summary):
        assert secret not in output.stdout + output.stderr
    for path in (tmp_path / "provision-out" / "azure").iterdir():
        assert secret not in path.read_text()

    destroyed = provision(clean_sandbox, tmp_path, "azure", "destroy", PLAYBOOK, "--auto-approve", "-o", "json")
    assert destroyed.returncode == 0, destroyed.stderr
    assert json.loads(destroyed.stdout)["deleted"] == 8
    twice = provision(clean_sandbox, tmp_path, "azure", "destroy", PLAYBOOK, "--auto-approve", "-o", "json")
    assert twice.returncode == 0 and json.loads(twice.stdout)["deleted"] == 0

    gone = provision(clean_sandbox, tmp_path, "azure", "output", PLAYBOOK)
    assert gone.returncode == 1 and "Traceback" not in gone.stderr


def test_a_principal_that_does_not_exist_stops_before_any_write(clean_sandbox: Any, sandbox_control: Any,
                                                                 tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(Path(PLAYBOOK).read_text().replace("alice@contoso.com", "nobody@contoso.com"))
    failed = provision(clean_sandbox, tmp_path, "azure", "apply", str(plan), "--auto-approve")
    assert failed.returncode == 1
    assert "nobody@contoso.com" in failed.stdout + failed.stderr
    assert "Traceback" not in failed.stderr
    assert writes(sandbox_control) == []
