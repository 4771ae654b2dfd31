"""Saved plans, `--target` and `import`, as a CI pipeline and an operator use them (issue 12, part 2): the real
entry point in a child process against the session sandbox, out-of-band changes made as the portal makes them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from e2e_http import Arm

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = ROOT / "playbooks" / "azure-ohif.yaml"
DICOM = "azure.dicom_service[ohif-dicom]"
GROUP = "azure.resource_group[rg-ohif-demo]"
WRITES = ("PUT", "POST", "PATCH", "DELETE")


def provision(sandbox: Any, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "PROVISION_SANDBOX": str(Path(sandbox.info.state_dir) / "sandbox.json")}
    return subprocess.run([sys.executable, "-m", "provision", *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, env=env, cwd=cwd, timeout=300)


def writes(control: Any) -> list[str]:
    return [f"{e['method']} {e['path']}" for e in control.log() if e["method"] in WRITES
            and "/oauth2/" not in e["path"]]


@pytest.fixture
def plan_file(tmp_path: Path) -> Path:
    """A copy of the bundled plan that a test may edit."""
    copy = tmp_path / "plan.yaml"
    copy.write_text(PLAYBOOK.read_text())
    return copy


@pytest.fixture
def arm(clean_sandbox: Any) -> Any:
    portal = Arm(clean_sandbox.info)
    yield portal
    portal.close()


def test_apply_of_a_saved_plan_does_it_once_then_refuses_because_the_state_moved(
        clean_sandbox: Any, sandbox_control: Any, tmp_path: Path, plan_file: Path) -> None:
    saved = provision(clean_sandbox, tmp_path, "azure", "plan", str(plan_file), "--save", "plan.json",
                      "--detailed-exitcode")
    assert saved.returncode == 2, saved.stderr
    assert "Saved the plan to plan.json" in saved.stdout
    assert (tmp_path / "plan.json").stat().st_mode & 0o777 == 0o600  # it records the objects as read
    assert clean_sandbox.info.client_secret not in (tmp_path / "plan.json").read_text()
    assert writes(sandbox_control) == []

    applied = provision(clean_sandbox, tmp_path, "azure", "apply", "plan.json", "-o", "json")  # no question
    assert applied.returncode == 0, applied.stderr
    assert sorted(step["action"] for step in json.loads(applied.stdout)["applied"]) == ["create"] * 8

    sandbox_control.clear_log()
    again = provision(clean_sandbox, tmp_path, "azure", "apply", "plan.json")
    assert again.returncode == 1
    assert f"{DICOM}: was to create, now would no-op" in again.stderr
    assert "nothing was changed" in again.stderr and "Traceback" not in again.stderr
    assert writes(sandbox_control) == []


def test_a_saved_plan_is_refused_when_an_object_it_read_changed_since(
        clean_sandbox: Any, sandbox_control: Any, arm: Any, tmp_path: Path, plan_file: Path) -> None:
    assert provision(clean_sandbox, tmp_path, "azure", "apply", str(plan_file), "--auto-approve").returncode == 0
    plan_file.write_text(plan_file.read_text().replace("max_age: 1440", "max_age: 600"))
    saved = provision(clean_sandbox, tmp_path, "azure", "plan", str(plan_file), "--save", "plan.json")
    assert saved.returncode == 0 and "cors.max_age: 1440 -> 600" in saved.stdout, saved.stdout + saved.stderr

    arm.set_cors_origins(arm.dicom_id("rg-ohif-demo", "ohifws", "ohif-dicom"), ["https://portal.example"])
    sandbox_control.clear_log()
    refused = provision(clean_sandbox, tmp_path, "azure", "apply", "plan.json")
    assert refused.returncode == 1
    assert f"{DICOM}: changed since the plan was saved (cors.origins" in refused.stderr, refused.stderr
    assert writes(sandbox_control) == []


def test_a_saved_plan_is_refused_before_any_call_when_its_plan_file_changed(
        clean_sandbox: Any, sandbox_control: Any, tmp_path: Path, plan_file: Path) -> None:
    assert provision(clean_sandbox, tmp_path, "azure", "plan", str(plan_file), "--save", "plan.json").returncode == 0
    plan_file.write_text(plan_file.read_text() + "\n# edited after review\n")
    sandbox_control.clear_log()
    refused = provision(clean_sandbox, tmp_path, "azure", "apply", "plan.json")
    assert refused.returncode == 1
    assert f"{plan_file} changed since the plan was saved" in refused.stderr
    assert sandbox_control.log() == []
    flagged = provision(clean_sandbox, tmp_path, "azure", "apply", "plan.json", "--target", DICOM)
    assert flagged.returncode == 1 and "applied as it was saved" in flagged.stderr
    other = provision(clean_sandbox, tmp_path, "gcp", "apply", "plan.json")
    assert other.returncode == 1 and "a plan saved for `provision azure`" in other.stderr


def test_a_saved_destroy_plan_destroys(clean_sandbox: Any, tmp_path: Path, plan_file: Path) -> None:
    assert provision(clean_sandbox, tmp_path, "azure", "apply", str(plan_file), "--auto-approve").returncode == 0
    saved = provision(clean_sandbox, tmp_path, "azure", "plan", str(plan_file), "--destroy", "--save", "d.json")
    assert saved.returncode == 0 and "will destroy exactly this" in saved.stdout, saved.stdout + saved.stderr
    destroyed = provision(clean_sandbox, tmp_path, "azure", "apply", "d.json")
    assert destroyed.returncode == 0 and "Destroy complete" in destroyed.stdout, destroyed.stderr
    after = provision(clean_sandbox, tmp_path, "azure", "plan", str(plan_file), "--detailed-exitcode")
    assert after.returncode == 2 and "Plan: 8 to create" in after.stdout


def test_target_plans_and_applies_one_resource_with_what_it_needs(
        clean_sandbox: Any, sandbox_control: Any, tmp_path: Path, plan_file: Path) -> None:
    planned = provision(clean_sandbox, tmp_path, "azure", "plan", str(plan_file), "--target", DICOM, "-o", "json")
    assert planned.returncode == 0, planned.stderr
    assert {s["address"] for s in json.loads(planned.stdout)["steps"]} == {
        GROUP, "azure.workspace[ohifws]", DICOM}

    applied = provision(clean_sandbox, tmp_path, "azure", "apply", str(plan_file), "--target", DICOM,
                        "--auto-approve")
    assert applied.returncode == 0, applied.stderr
    assert "Apply complete: 3 created." in applied.stdout
    assert "the OHIF configuration is written by a full apply" in applied.stdout
    assert not (tmp_path / "provision-out").exists()
    assert not [w for w in writes(sandbox_control) if "graph" in w.lower() or "roleAssignments" in w]

    rest = provision(clean_sandbox, tmp_path, "azure", "plan", str(plan_file))
    assert "Plan: 5 to create" in rest.stdout, rest.stdout

    unknown = provision(clean_sandbox, tmp_path, "azure", "plan", str(plan_file), "--target",
                        "azure.dicom_service[ohif-dicm]")
    assert unknown.returncode == 1 and f"did you mean {DICOM}?" in unknown.stderr


def test_destroy_target_takes_what_depends_on_it_too(clean_sandbox: Any, tmp_path: Path, plan_file: Path) -> None:
    assert provision(clean_sandbox, tmp_path, "azure", "apply", str(plan_file), "--auto-approve").returncode == 0
    # a targeted plan sees only part of the plan: the role assignments it leaves out are not revoked as strays
    targeted = provision(clean_sandbox, tmp_path, "azure", "plan", str(plan_file), "--target", DICOM,
                         "--detailed-exitcode")
    assert targeted.returncode == 0 and "delete" not in targeted.stdout, targeted.stdout + targeted.stderr
    destroyed = provision(clean_sandbox, tmp_path, "azure", "destroy", str(plan_file), "--target", DICOM,
                          "--auto-approve", "-o", "json")
    assert destroyed.returncode == 0, destroyed.stderr
    gone = {s["address"] for s in json.loads(destroyed.stdout)["steps"] if s["action"] == "delete"}
    assert DICOM in gone and GROUP not in gone and "azure.workspace[ohifws]" not in gone
    assert all(a == DICOM or a.startswith("azure.role_assignment[") for a in gone), gone
    after = provision(clean_sandbox, tmp_path, "azure", "plan", str(plan_file), "-o", "json")
    kinds = {s["address"]: s["action"] for s in json.loads(after.stdout)["steps"]}
    assert kinds[DICOM] == "create" and kinds[GROUP] == "no-op" and kinds["azure.app[ohif-viewer]"] == "no-op"


def test_import_takes_over_one_resource_and_nothing_else(
        clean_sandbox: Any, sandbox_control: Any, arm: Any, tmp_path: Path, plan_file: Path) -> None:
    group_id = f"/subscriptions/{clean_sandbox.info.subscription_id}/resourceGroups/rg-ohif-demo"
    arm.http.put(group_id, params={"api-version": "2021-04-01"},
                 json={"location": "westeurope", "tags": {"team": "imaging"}}).raise_for_status()
    blocked = provision(clean_sandbox, tmp_path, "azure", "plan", str(plan_file))
    assert blocked.returncode == 1
    assert f"`import PLAN {GROUP}`" in blocked.stdout, blocked.stdout

    sandbox_control.clear_log()
    imported = provision(clean_sandbox, tmp_path, "azure", "import", str(plan_file), GROUP, "--auto-approve")
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert "Apply complete: 1 updated." in imported.stdout
    assert [w.split("?")[0].lower() for w in writes(sandbox_control)] == [f"patch {group_id.lower()}"]
    tags = arm.get(group_id, "2021-04-01")["tags"]
    assert tags["team"] == "imaging" and any(key.startswith("provision") for key in tags), tags

    rest = provision(clean_sandbox, tmp_path, "azure", "plan", str(plan_file), "--detailed-exitcode")
    assert rest.returncode == 2 and "Plan: 7 to create" in rest.stdout, rest.stdout + rest.stderr
    missing = provision(clean_sandbox, tmp_path, "azure", "import", str(plan_file), DICOM, "--auto-approve")
    assert missing.returncode == 1 and "there is nothing to import" in missing.stderr
