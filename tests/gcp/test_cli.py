"""The `provision gcp ...` commands end to end: the playbook, unchanged, against the sandbox over HTTPS."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from provision.cli.main import app

PLAYBOOK = Path(__file__).resolve().parents[2] / "playbooks" / "gcp-ohif.yaml"


@pytest.fixture
def cli(sandbox: Any, observer: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    monkeypatch.setenv("PROVISION_SANDBOX", str(Path(sandbox.info.state_dir) / "sandbox.json"))
    monkeypatch.chdir(tmp_path)
    for name in ("GCP_PROJECT", "OHIF_VIEWER_URL", "GOOGLE_OAUTH_CLIENT_ID"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        return runner.invoke(app, list(args), catch_exceptions=False)

    return invoke


def test_playbook_plan_apply_again_destroy(cli: Any, observer: Any, google: Any, sandbox: Any) -> None:
    dataset = google.dataset_name("ohif")
    if google.exists(dataset):  # a previous session run on the same state; start from nothing
        cli("gcp", "destroy", str(PLAYBOOK), "--auto-approve")

    planned = cli("gcp", "plan", str(PLAYBOOK), "--detailed-exitcode")
    assert planned.exit_code == 2, planned.output
    assert "roles/healthcare.dicomViewer" in planned.output
    # named by address, as progress and --target name them (issue 12 #9), with Google's name alongside
    assert "+ gcp.iam[ohif] (IAM policy of dataset ohif)  create" in planned.output, planned.output
    assert "Plan: 4 to create" in planned.output

    applied = cli("gcp", "apply", str(PLAYBOOK), "--auto-approve", "--out", "out")
    assert applied.exit_code == 0, applied.output
    assert "Apply complete: 4 created." in applied.output  # as planned, not "2 created, 2 updated"
    # a new dataset's routine "not initialized" window is a wait, not a retried failure
    assert [line for line in applied.output.splitlines() if " retry " in line and "not initialized" in line] == []
    app_config = Path("out/app-config.js").read_text()
    config = json.loads(re.search(r"window\.config = (\{.*\});", app_config, re.S).group(1))  # type: ignore[union-attr]
    root = f"{sandbox.info.url}/v1/{dataset}/dicomStores/main/dicomWeb"
    assert [s["configuration"]["qidoRoot"] for s in config["dataSources"]] == [root]
    assert config["oidc"][0]["client_id"].endswith(".apps.googleusercontent.com")
    assert "Authorized JavaScript origins: http://localhost:3000" in applied.output
    assert "http://localhost:3000/callback" in applied.output

    mark = observer.mark()
    again = cli("gcp", "apply", str(PLAYBOOK), "--auto-approve", "--out", "out")
    assert again.exit_code == 0, again.output
    assert observer.writes(observer.since(mark)) == [], "a second apply sends no write"
    assert cli("gcp", "plan", str(PLAYBOOK), "--detailed-exitcode").exit_code == 0

    destroyed = cli("gcp", "destroy", str(PLAYBOOK), "--auto-approve")
    assert destroyed.exit_code == 0, destroyed.output
    assert not google.exists(dataset)


def test_roles_command(cli: Any, observer: Any, google: Any, dataset_id: str) -> None:
    google.create_dataset(dataset_id)
    store = google.create_store(dataset_id, "main")
    args = ("gcp", "roles", "--store", store, "--viewer", "user:a@example.org", "--editor", "group:b@example.org")
    dry = cli(*args, "--dry-run", "--detailed-exitcode")
    assert dry.exit_code == 2, dry.output
    done = cli(*args, "--auto-approve")
    assert done.exit_code == 0, done.output
    assert "1 IAM policy written" in done.output
    mark = observer.mark()
    assert cli(*args, "--auto-approve").exit_code == 0
    assert not [e for e in observer.since(mark) if e["path"].endswith(":setIamPolicy")]
    assert cli(*args, "--dry-run", "--detailed-exitcode").exit_code == 0


@pytest.mark.parametrize(
    "args",
    [
        ("--store", "projects/p/locations/l/datasets/d", "--viewer", "user:a@example.org"),
        ("--store", "projects/sandbox-project/locations/us/datasets/d/dicomStores/s", "--viewer", "a@example.org"),
        ("--dataset", "projects/sandbox-project/locations/us/datasets/d", "--authoritative", "owner",
         "--editor", "user:a@example.org"),
    ],
)
def test_roles_command_refuses_bad_input_before_any_call(cli: Any, observer: Any, args: tuple[str, ...]) -> None:
    mark = observer.mark()
    result = cli("gcp", "roles", *args, "--auto-approve")
    assert result.exit_code == 1
    assert "Error:" in result.output
    assert observer.since(mark, google_only=False) == []
