"""Adding a target is one package and one registry line: a target defined in one test file gets its plan
section, `plan | apply | destroy | output`, its own command and its place in `provision schema`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from provision import registry
from provision.plan import plan_model


@pytest.fixture
def with_notes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    monkeypatch.setitem(registry.TARGETS, "notes", "notes_target:TARGET")
    registry.targets.cache_clear()
    plan_model.cache_clear()
    yield
    monkeypatch.undo()
    registry.targets.cache_clear()
    plan_model.cache_clear()


def test_a_target_registered_by_one_line_gets_the_whole_command_line(with_notes: None, tmp_path: Path) -> None:
    from provision.cli.main import build_app

    app = build_app(registry.targets())
    plan = tmp_path / "plan.yaml"
    notes = tmp_path / "notes"
    plan.write_text(f"version: 1\nname: notes-demo\nnotes:\n  directory: {notes}\n"
                    "  files: {a.txt: one two three, b.txt: four}\n")

    def run(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(app, list(args), env={"NO_COLOR": "1", "PROVISION_SANDBOX": ""})
        return result.exit_code, result.output

    schema = json.loads(run("schema")[1])
    assert "notes" in schema["properties"]
    assert run("notes", "plan", str(plan), "--detailed-exitcode")[0] == 2
    code, out = run("notes", "apply", str(plan), "--auto-approve")
    assert code == 0 and "Apply complete: 2 created." in out, out
    assert (notes / "a.txt").read_text() == "one two three"
    assert run("notes", "plan", str(plan), "--detailed-exitcode")[0] == 0
    code, out = run("notes", "count", str(plan), "--minimum", "2")
    assert code == 0 and "a.txt: 3 words" in out and "b.txt" not in out, out
    code, out = run("notes", "words", "longest", str(plan))  # a two-word command name is a group's command
    assert code == 0 and out.strip() == "three", out
    code, out = run("notes", "words", "--help")
    assert code == 0 and "longest" in out, out
    # a positional argument (WORD...) after the plan file; records streamed before the result
    code, out = run("notes", "grep", str(plan), "three", "four")
    assert code == 0 and out.splitlines() == ["a.txt: one two three", "b.txt: four", "a.txt: 3 words",
                                              "b.txt: 1 words"], out
    code, out = run("notes", "grep", str(plan), "two", "-o", "json")
    assert [json.loads(line) for line in out.splitlines()] == [{"file": "a.txt"}, {"words": {"a.txt": 3}}]
    assert run("notes", "grep", str(plan))[0] == 1  # WORD is required: a usage error exits 1
    (notes / "b.txt").write_text("changed by hand")
    code, out = run("notes", "plan", str(plan), "--detailed-exitcode")
    assert code == 2 and '"changed by hand" -> "four"' in out, out
    code, out = run("notes", "destroy", str(plan), "--auto-approve")
    assert code == 0 and not (notes / "a.txt").exists(), out


def test_a_plan_section_of_an_unregistered_target_is_an_unknown_key(tmp_path: Path) -> None:
    from provision.errors import PlanError
    from provision.plan import parse_plan

    with pytest.raises(PlanError, match="unknown key 'notes'"):
        parse_plan("version: 1\nname: x\nnotes: {directory: d}\n")
