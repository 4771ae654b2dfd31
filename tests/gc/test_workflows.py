"""The GitHub Actions examples: valid YAML with the expected triggers, OIDC permission and no stored secret, and
every `provision ...` line in them a real command with real options (parsed by the CLI's own command tree)."""

from __future__ import annotations

import json
import re
import shlex
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import typer
from ruamel.yaml import YAML

from provision.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github/workflows"
NAMES = ("pr-environment.yml", "pr-teardown.yml", "nightly-gc.yml")


@cache
def load(name: str) -> dict[str, Any]:
    document = YAML(typ="safe").load((WORKFLOWS / name).read_text())  # YAML 1.2: `on` is a key, not true
    assert isinstance(document, dict)
    return document


def run_scripts(workflow: dict[str, Any]) -> list[str]:
    return [step["run"] for job in workflow["jobs"].values() for step in job["steps"] if "run" in step]


def provision_commands(script: str) -> list[list[str]]:
    """Each `provision ...` command of a shell script, as argv after `provision`."""
    joined = script.replace("\\\n", " ")
    commands = []
    for line in joined.splitlines():
        for segment in re.split(r"\|\||&&|[|;{}]", line):
            words = segment.strip()
            for keyword in ("then ", "else ", "do "):
                words = words.removeprefix(keyword)
            if words.startswith("provision "):
                commands.append(shlex.split(words)[1:])
    return commands


def check_command(argv: list[str]) -> None:
    """Resolve sub-commands, then let the command parse its options and arguments as it would at run time."""
    command: Any = typer.main.get_command(app)
    context = command.make_context("provision", [], resilient_parsing=True)
    rest = list(argv)
    while hasattr(command, "commands"):
        if not rest:
            pytest.fail(f"provision {' '.join(argv)}: a sub-command is missing")
        name = rest.pop(0)
        sub = command.get_command(context, name)
        if sub is None:
            pytest.fail(f"provision {' '.join(argv)}: no command {name!r}")
        command = sub
        context = command.make_context(name, [], parent=context, resilient_parsing=True)
    try:
        command.make_context(command.name, rest, parent=context.parent)
    except Exception as error:  # click's UsageError family (typer may bundle its own click)
        pytest.fail(f"provision {' '.join(argv)}: {error}")
    for word in rest:
        if word.endswith((".yaml", ".yml")):
            assert (ROOT / word).is_file(), f"{word} does not exist"


@pytest.mark.parametrize("name", NAMES)
def test_workflow_is_valid_and_asks_for_an_oidc_token(name: str) -> None:
    workflow = load(name)
    assert workflow["permissions"]["id-token"] == "write"
    assert workflow["permissions"]["contents"] == "read"
    # workload identity federation: no stored secret anywhere
    assert "secrets." not in re.sub(r"#.*", "", (WORKFLOWS / name).read_text())
    for job_name, job in workflow["jobs"].items():
        assert job["runs-on"] and job["timeout-minutes"], job_name
        for step in job["steps"]:
            assert ("uses" in step) != ("run" in step), f"{name} {job_name}: {step}"
    assert set(workflow["jobs"]) == {"azure", "gcp"}


def test_triggers() -> None:
    assert load("pr-environment.yml")["on"] == {"pull_request": {"types": ["opened", "synchronize", "reopened"]}}
    assert load("pr-teardown.yml")["on"] == {"pull_request": {"types": ["closed"]}}
    nightly = load("nightly-gc.yml")["on"]
    assert set(nightly) == {"schedule", "workflow_dispatch"} and nightly["schedule"][0]["cron"]
    # apply and destroy of one pull request never run at the same time
    groups = {load(name)["concurrency"]["group"] for name in ("pr-environment.yml", "pr-teardown.yml")}
    assert groups == {"pr-environment-${{ github.event.pull_request.number }}"}


COMMANDS = sorted(
    {(name, " ".join(argv)) for name in NAMES for script in run_scripts(load(name))
     for argv in provision_commands(script)}
)


def test_the_workflows_use_the_documented_commands() -> None:
    used = {" ".join(command.split()[:2]) for _, command in COMMANDS}
    assert used == {"azure plan", "azure apply", "azure output", "azure destroy", "gcp plan", "gcp apply",
                    "gcp destroy", "gc --older-than"}
    apply = "azure apply playbooks/azure-ephemeral.yaml --auto-approve --out ohif-config"
    assert ("pr-environment.yml", apply) in COMMANDS
    assert any(name == "nightly-gc.yml" and command.endswith("--yes") for name, command in COMMANDS)


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[f"{n}: {c}" for n, c in COMMANDS])
def test_every_provision_line_parses(name: str, command: str) -> None:
    check_command(shlex.split(command))


def test_the_checker_catches_mistakes() -> None:
    mistakes = (["azure", "aply", "x.yaml"], ["gc", "--older-then", "1h"], ["gc"],
                ["gcp", "destroy", "p.yaml", "--yes"])
    for wrong in mistakes:
        with pytest.raises(pytest.fail.Exception):
            check_command(wrong)
    assert provision_commands("set -o pipefail\nif x; then\n  provision gc --a \\\n --b | tee f\nfi\n") == [
        ["gc", "--a", "--b"]]


def expand(argv: list[str], env: dict[str, str]) -> list[str]:
    return [re.sub(r"\$(\w+)", lambda m: env[m.group(1)], word) for word in argv]


def test_the_workflows_commands_run_against_the_sandbox(cli: Any, tmp_path: Path, monkeypatch: Any) -> None:
    """The exact command lines, in the order the workflows run them: a pull request's environment is made and
    published, provision gc lists it and deletes it, and the teardown that comes after finds nothing to do."""
    (tmp_path / "playbooks").symlink_to(ROOT / "playbooks")
    monkeypatch.chdir(tmp_path)
    env = {"PR_NUMBER": "77", "OLDER_THAN": "0s", "GCP_PROJECT": "sandbox-project", "GCP_LOCATION": "us-central1"}

    def run(name: str, *, delete: bool | None = None) -> list[str]:
        outputs = []
        for script in run_scripts(load(name)):
            for argv in provision_commands(script):
                if delete is None or ("--yes" in argv) == delete:
                    outputs.append(cli(*expand(argv, env), pr="77"))
        return outputs

    published = run("pr-environment.yml")
    assert json.loads(published[2])["dataSources"]  # `azure output`, what the job summary shows
    assert json.loads((tmp_path / "ohif-config/ohif.json").read_text())["dataSources"]  # the artifact
    listed = run("nightly-gc.yml", delete=False)
    assert len(listed) == 2 and all("pr-77" in text and "Dry run: 1 environment(s)" in text for text in listed)
    deleted = run("nightly-gc.yml", delete=True)
    assert len(deleted) == 2 and all("Deleted 1 environment(s)" in text for text in deleted)
    teardown = run("pr-teardown.yml")
    assert all("Nothing to destroy." in text for text in teardown)
