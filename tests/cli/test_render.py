"""How plan values are shown: as a plan file (YAML/JSON) writes them."""

from __future__ import annotations

from provision.cli.render import _value
from provision.core import UNKNOWN


def test_values_are_shown_as_plan_files_write_them() -> None:
    assert _value(False) == "false" and _value(True) == "true" and _value(None) == "null"
    assert _value("x") == '"x"' and _value(1440) == "1440"
    assert _value(["GET", True]) == '["GET", true]'
    assert _value({"allow": False}) == "{allow: false}"
    assert _value(UNKNOWN) == "(known after apply)"


def test_off_a_terminal_tables_are_not_cut_at_80_columns(capsys: object) -> None:
    """A CI log reads a check, a DICOM service URL or an environment's name on one line, whole."""
    from provision.cli.render import print_checks
    from provision.core.commands import Check, Checks

    subject = "https://viewer.pr-1234.imaging.example.org:8443"
    detail = "preflight 204, allowed origin https://viewer.pr-1234.imaging.example.org:8443, max age 1440"
    print_checks(Checks([Check("CORS", subject, True, detail)]))
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert any(subject in line and detail in line for line in out.splitlines()), out


def test_a_changed_text_is_shown_as_a_unified_diff_of_its_changed_lines() -> None:
    from typing import Any

    from provision.cli.render import _step_lines
    from provision.core import Context, Create, FieldChange, Resource, Update
    from provision.core.engine import Step

    class Dummy(Resource):
        async def read(self, ctx: Context) -> dict[str, Any] | None:
            return None

        def desired(self, ctx: Context) -> dict[str, Any]:
            return {}

    before = "".join(f"line {n}\n" for n in range(1, 21))
    after = before.replace("line 10\n", "line ten\n")
    shown = _step_lines(Step(Dummy("file[a]"), Update(changes=(FieldChange("text", before, after),)))).plain
    assert shown.splitlines()[1:] == ["        text:", "          @@ -9,3 +9,3 @@", "           line 9",
                                      "          -line 10", "          +line ten", "           line 11"]
    created = _step_lines(Step(Dummy("file[a]"), Create(changes=(FieldChange("text", None, before),)))).plain
    assert "text = (20 lines)" in created and "line 10" not in created
    short = _step_lines(Step(Dummy("file[a]"), Update(changes=(FieldChange("mode", "0644", "0600"),)))).plain
    assert 'mode: "0644" -> "0600"' in short
