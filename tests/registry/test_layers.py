"""The layers of docs/architecture.md are enforced: `make lint` runs import-linter (`lint-imports`), which fails
when a target imports the CLI, or anything but `provision.cli` imports typer or rich."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    """import-linter on the copy of the package in `tree` (found first on PYTHONPATH), with the project's
    contracts."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([str(LINT_IMPORTS), str(REPO / "pyproject.toml"), "--no-cache"],
                          cwd=tree, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "provision", tmp_path / "provision", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_the_layers_hold(tree: Path) -> None:
    done = lint_imports(tree)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("azure/verify.py", "import provision.cli.render", "layers"),
        ("gcp/session.py", "from provision import sandbox", "layers"),
        ("orthanc/session.py", "from provision import sandbox", "layers"),
        ("orthanc/stack.py", "import provision.cli.render", "layers"),
        ("orthanc/verify.py", "import provision.azure.verify", "layers"),
        ("azure/session.py", "import rich.console", "only provision.cli knows"),
        ("core/engine.py", "import azure.identity", "the engine imports no cloud SDK"),
    ],
)
def test_a_forbidden_import_breaks_lint(tree: Path, module: str, line: str, broken: str) -> None:
    path = tree / "provision" / module
    path.write_text(path.read_text() + f"\n{line}  # noqa\n")
    done = lint_imports(tree)
    assert done.returncode != 0
    assert f"{broken}" in done.stdout.split("Broken contracts", 1)[1], done.stdout
