"""What a new user met trying the tool from a fresh clone (issue 12, part 3), each as a check that failed
before it was fixed: exit codes, JSON errors, role typos, `--sandbox`, the gc hint, the installer, packaging."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from provision.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = ROOT / "playbooks" / "azure-ohif.yaml"


def invoke(*args: str, **env: str) -> Any:
    return CliRunner().invoke(app, list(args), env={"NO_COLOR": "1", "PROVISION_SANDBOX": "", **env})


@pytest.mark.parametrize("args", [
    ["azure", "plan", str(PLAYBOOK), "--detailed-exitcode", "--concurrency", "0"],
    ["azure", "plan", str(PLAYBOOK), "--detailed-exitcode", "--no-such-flag"],
    ["azure", "plan", "--detailed-exitcode"],
    ["--no-such-flag"],
])
def test_a_usage_error_exits_1_never_2_which_means_changes(args: list[str]) -> None:
    result = invoke(*args)
    assert result.exit_code == 1, result.output


def test_with_output_json_a_plan_error_is_a_json_document_with_located_diagnostics(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAYBOOK.read_text().replace("role: DICOM Data Owner", "role: DICOM Data Ownr", 1))
    line = next(n for n, text in enumerate(plan.read_text().splitlines(), 1) if "Ownr" in text)
    result = CliRunner().invoke(app, ["azure", "plan", str(plan), "--output", "json"],
                                env={"NO_COLOR": "1", "PROVISION_SANDBOX": ""})
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    (diagnostic,) = document["diagnostics"]
    assert diagnostic["file"] == str(plan) and diagnostic["line"] == line
    assert re.fullmatch(r"azure\.access\[\d\]\.role", diagnostic["path"])
    assert document["error"]["type"] == "PlanError"


def test_a_mistyped_role_is_refused_offline_with_did_you_mean(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAYBOOK.read_text().replace("role: DICOM Data Owner", "role: dicom data ownr", 1))
    result = invoke("azure", "plan", str(plan))  # no sandbox, no cloud: refused before any call
    assert result.exit_code == 1
    assert "unknown role 'dicom data ownr'; did you mean 'DICOM Data Owner'?" in result.output
    assert f"{plan}:" in result.output


def test_a_custom_role_name_is_accepted_for_the_subscription_to_resolve() -> None:
    from provision.plan import parse_plan

    plan = parse_plan(PLAYBOOK.read_text().replace("role: DICOM Data Owner", "role: Imaging Auditors", 1), env={})
    assert {entry.role for entry in plan.azure.access} >= {"Imaging Auditors"}


def test_sandbox_flag_and_provision_sandbox_together_are_refused() -> None:
    result = invoke("azure", "plan", str(PLAYBOOK), "--sandbox", PROVISION_SANDBOX="/somewhere/sandbox.json")
    assert result.exit_code == 1
    assert "--sandbox and PROVISION_SANDBOX=/somewhere/sandbox.json both name a sandbox" in result.output


def test_the_install_script_waits_for_another_apt_instead_of_failing() -> None:
    script = (ROOT / "scripts" / "install-system-deps.sh").read_text()
    calls = [line for line in script.splitlines()
             if re.search(r"\bapt-get\b", line) and not line.lstrip().startswith("#")]
    assert "apt=(-o DPkg::Lock::Timeout=300)" in script
    assert calls and all('apt-get "${apt[@]}"' in line for line in calls), calls


def test_the_license_is_an_spdx_expression() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT"  # the table form is deprecated by setuptools (PEP 639)


def test_gc_dry_run_names_the_flags_that_let_yes_through(sandbox: Any) -> None:
    """A dry run without --env-prefix/--plan must not advise a bare --yes, which is then refused."""
    env = {"PROVISION_SANDBOX": str(Path(sandbox.info.state_dir) / "sandbox.json")}
    applied = invoke("azure", "apply", str(ROOT / "playbooks" / "azure-ephemeral.yaml"), "--auto-approve",
                     "--out", str(Path(sandbox.info.state_dir) / "out"), PR_NUMBER="12", **env)
    assert applied.exit_code == 0, applied.output
    dry = invoke("gc", "--older-than", "0s", **env)
    assert dry.exit_code == 0, dry.output
    assert "Re-run with --yes and --env-prefix PREFIX (or --plan NAME, or --all-environments)" in dry.output
    narrowed = invoke("gc", "--older-than", "0s", "--env-prefix", "pr-12", **env)
    assert "Re-run with --yes to delete them." in narrowed.output
    destroyed = invoke("azure", "destroy", str(ROOT / "playbooks" / "azure-ephemeral.yaml"), "--auto-approve",
                       PR_NUMBER="12", **env)
    assert destroyed.exit_code == 0, destroyed.output


def test_sandbox_up_status_down_and_a_stable_port(tmp_path: Path) -> None:
    """`--sandbox` leaves a sandbox a viewer can keep using: same URL on the next run, and after up/down."""
    from provision.dicom.orthanc_process import free_port

    port = str(free_port())
    env = {**os.environ, "NO_COLOR": "1", "PROVISION_SANDBOX_PORT": port}
    env.pop("PROVISION_SANDBOX", None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "provision", *args], capture_output=True, text=True,
                              env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, timeout=300)

    try:
        first = run("azure", "apply", str(PLAYBOOK), "--sandbox", "--auto-approve")
        assert first.returncode == 0, first.stderr
        assert f"Started the local sandbox at https://127.0.0.1:{port}" in first.stderr
        authority = json.loads((tmp_path / "provision-out/azure/ohif.json").read_text())["oidc"][0]["authority"]
        assert authority.startswith(f"https://127.0.0.1:{port}/")
        status = run("sandbox", "status", "--output", "json")
        assert status.returncode == 0 and json.loads(status.stdout)["url"] == f"https://127.0.0.1:{port}"
        again = run("azure", "apply", str(PLAYBOOK), "--sandbox", "--auto-approve")
        assert again.returncode == 0 and "Started" not in again.stderr and "Apply complete: no changes." in again.stdout
        assert run("sandbox", "down").returncode == 0
        assert run("sandbox", "status").returncode == 1
        env.pop("PROVISION_SANDBOX_PORT")  # the port it had last time wins over the default
        up = run("sandbox", "up")
        assert up.returncode == 0 and f"https://127.0.0.1:{port}" in up.stdout, up.stdout + up.stderr
        same = run("azure", "plan", str(PLAYBOOK), "--sandbox", "--detailed-exitcode")
        assert same.returncode == 0, same.stdout + same.stderr  # the world survived the restart
    finally:
        run("sandbox", "down")


def test_no_azure_credential_is_one_line_and_a_hint_the_full_answer_with_v(tmp_path: Path) -> None:
    """DefaultAzureCredential's 13-line answer (one per credential tried) is summed up; `-v` shows it."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("AZURE_", "PROVISION_", "IDENTITY_", "MSI_"))}
    env.update(NO_COLOR="1", AZURE_SUBSCRIPTION_ID="00000000-0000-0000-0000-000000000001", HOME=str(tmp_path))

    def run(*flags: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "provision", *flags, "azure", "plan", str(PLAYBOOK)],
                              capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
                              stdin=subprocess.DEVNULL)

    short = run()
    assert short.returncode == 1 and "Traceback" not in short.stderr
    lines = short.stderr.strip().splitlines()
    assert lines[0].startswith("Error: signing in to Azure: authentication failed: no usable credential "
                               "(tried Environment, "), lines
    assert len(lines) == 3 and "hint: sign in (az login)" in lines[1] and "provision -v" in lines[2], lines
    full = run("-v")
    assert full.returncode == 1 and "Attempted credentials:" in full.stderr
