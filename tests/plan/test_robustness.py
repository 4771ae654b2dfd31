"""Whatever the text, the loader answers with a Plan or a PlanError: never another exception."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from provision.errors import PlanError
from provision.plan import load_plan, parse_plan

REPO = Path(__file__).resolve().parents[2]
PLAYBOOKS = sorted((REPO / "playbooks").glob("*.yaml"))


def _mutations(text: str) -> Iterator[str]:
    lines = text.splitlines(keepends=True)
    for i in range(len(lines)):
        yield "".join(lines[:i] + lines[i + 1 :])  # drop a line
        yield "".join(lines[: i + 1] + lines[i:])  # repeat a line
        yield "".join(lines[:i])  # truncate
        yield "".join([*lines[:i], " " + lines[i], *lines[i + 1 :]])  # shift a line
        yield "".join([*lines[:i], lines[i].replace(":", "", 1), *lines[i + 1 :]])  # lose a colon


@pytest.mark.parametrize("path", PLAYBOOKS, ids=lambda p: p.stem)
def test_mutated_playbooks_never_raise_anything_else(path: Path) -> None:
    errors = 0
    for text in _mutations(path.read_text(encoding="utf-8")):
        try:
            parse_plan(text, source=path.name, env={"PR_NUMBER": "1"})
        except PlanError as exc:
            errors += 1
            lines = exc.message.splitlines()
            assert lines and all(line.startswith(f"{path.name}:") for line in lines), exc.message
    assert errors > 0


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n# only a comment\n",
        "~\n",
        "42\n",
        "just a string\n",
        "[1, 2]\n",
        "a: &x [*x, *x]\n",
        "version: 1\nname: x\nazure: !!binary aGVsbG8=\n",
        "version: 1\nname: x\nazure: !!set {a, b}\n",
        "version: 1\nname: x\n? [complex, key]\n: 1\n",
        "version: 1\nname: x\nnull: 1\n",
        "version: 1\nname: x\nohif: {viewer_url: 2024-01-01}\n",
        "version: 1\nname: x\n<<: {env: y}\n",
        "\ufeffversion: 1\nname: x\nenv: [\n",
        'version: 1\nname: x\nenv: "\\x"\n',
        "version: 1\nname: x\n" + "a:\n " * 200 + "b\n",
        "x: " + "[" * 600 + "]" * 600 + "\n",
    ],
)
def test_odd_documents(text: str) -> None:
    try:
        parse_plan(text, source="odd.yaml", env={})
    except PlanError as exc:
        assert exc.message.startswith("odd.yaml:"), exc.message


def test_alias_bombs_are_refused() -> None:
    text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, 7):
        text += f"{chr(97 + i)}: &{chr(97 + i)} [" + ", ".join([f"*{chr(96 + i)}"] * 10) + "]\n"
    with pytest.raises(PlanError, match="more than 100000 values"):
        parse_plan(text, source="bomb.yaml", env={})


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="no such plan file"):
        load_plan(tmp_path / "missing.yaml")
    with pytest.raises(PlanError, match="is a directory"):
        load_plan(tmp_path)
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(PlanError, match="not UTF-8"):
        load_plan(latin1)


def test_importing_the_plan_layer_loads_no_cloud_sdk() -> None:
    code = (
        "import sys, provision.plan; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('azure', 'msgraph', 'googleapiclient', 'google',"
        " 'httpx', 'typer', 'starlette')]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
