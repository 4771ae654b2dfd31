"""CLI behaviour that needs no cloud: help, schema, bad input, confirmation, fast start-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from provision.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def provision(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the real console entry point in a child process, with no terminal."""
    return subprocess.run(
        [sys.executable, "-m", "provision", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "NO_COLOR": "1", **(env or {})},
        cwd=cwd or ROOT,
        timeout=120,
    )


def test_help_lists_every_target() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in ("azure", "gcp", "sandbox", "schema"):
        assert name in result.output


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("provision ")


def test_schema_is_json_schema_of_the_plan() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert {"azure", "gcp", "ohif", "name"} <= set(schema["properties"])


def test_help_does_not_import_cloud_sdks() -> None:
    code = (
        "import sys\n"
        "from provision.cli.main import app\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('azure', 'msgraph', 'googleapiclient', 'google',"
        " 'kiota_abstractions', 'uvicorn', 'starlette', 'pydantic', 'ruamel', 'asyncio', 'httpx')]\n"
        "print(','.join(sorted(heavy)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("version: 1\nname: demo\nazure:\n  location: westeurope\n  workspace: {name: Bad-Name}\n",
         "plan.yaml:5:"),
        ("version: 1\nname: demo\nazure:\n  locaton: westeurope\n", "did you mean 'location'"),
        ("version: 1\nname: demo\nazure: [\n", "plan.yaml:"),
        ("version: 1\nname: pr-${PR_NUMBER_THAT_IS_NOT_SET}\n", "PR_NUMBER_THAT_IS_NOT_SET"),
    ],
    ids=["bad-name", "unknown-key", "syntax", "missing-var"],
)
def test_broken_plan_exits_non_zero_with_location_and_no_traceback(
    tmp_path: Path, content: str, expected: str
) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(content)
    result = provision("azure", "plan", str(plan))
    assert result.returncode == 1
    assert expected in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_plan_without_the_target_section_is_refused(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text("version: 1\nname: demo\nazure:\n  location: westeurope\n")
    result = provision("gcp", "plan", str(plan))
    assert result.returncode == 1
    assert "no `gcp:` section" in result.stderr


def test_missing_plan_file(tmp_path: Path) -> None:
    result = provision("azure", "plan", str(tmp_path / "nope.yaml"))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr


def test_bad_sandbox_pointer_is_a_clear_error(tmp_path: Path) -> None:
    result = provision("azure", "plan", "playbooks/azure-ohif.yaml",
                       env={"PROVISION_SANDBOX": str(tmp_path / "missing.json")})
    assert result.returncode == 1
    assert "PROVISION_SANDBOX" in result.stderr and "Traceback" not in result.stderr
