"""How plan values are shown: as a plan file (YAML/JSON) writes them."""

from __future__ import annotations

import time
from typing import Any

from provision.cli.render import _value, console, plan_document, print_plan
from provision.core import UNKNOWN, Context, Create, FieldChange, NoOp, Plan, Repair, Resource, Step, Update, Wait


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
    from provision.cli.render import _step_lines

    before = "".join(f"line {n}\n" for n in range(1, 21))
    after = before.replace("line 10\n", "line ten\n")
    shown = _step_lines(Step(_Thing("file[a]"), Update(changes=(FieldChange("text", before, after),)))).plain
    assert shown.splitlines()[1:] == ["        text:", "          @@ -9,3 +9,3 @@", "           line 9",
                                      "          -line 10", "          +line ten", "           line 11"]
    created = _step_lines(Step(_Thing("file[a]"), Create(changes=(FieldChange("text", None, before),)))).plain
    assert "text = (20 lines)" in created and "line 10" not in created
    short = _step_lines(Step(_Thing("file[a]"), Update(changes=(FieldChange("mode", "0644", "0600"),)))).plain
    assert 'mode: "0644" -> "0600"' in short


class _Thing(Resource):
    async def read(self, ctx: Context) -> dict[str, Any] | None:
        return None

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {}


def _shown(plan: Plan, *, destroy: bool = False) -> str:
    with console.capture() as captured:
        print_plan(plan, title="plan", destroy=destroy)
    return captured.get()


def test_unfinished_and_failed_objects_are_shown_with_what_the_service_says() -> None:
    plan = Plan([
        Step(_Thing("azure.dicom_service[d]"), Wait(state="creating", since=time.time() - 130, then="no-op")),
        Step(_Thing("azure.resource_group[g]"), Wait(state="deleting", then="create",
                                                     changes=(FieldChange("location", None, "westeurope"),))),
        Step(_Thing("azure.workspace[w]"), Repair(error="provisioningState is Failed")),
        Step(_Thing("azure.app[a]"), NoOp()),
    ])

    text = _shown(plan)

    assert "... azure.dicom_service[d]  wait (creating, started 2m 10s ago)" in text
    assert "... azure.resource_group[g]  wait (deleting; then create)" in text
    assert 'location = "westeurope"' in text
    assert "!~ azure.workspace[w]  repair (its last operation failed: provisioningState is Failed)" in text
    assert "Plan: 0 to create, 0 to update, 0 to replace, 2 to wait for, 1 to repair, 1 unchanged." in text
    document = plan_document(plan, source="p.yaml")
    assert document["changes"] is True and document["summary"] == {"wait": 2, "repair": 1, "no-op": 1}
    assert document["steps"][0]["state"] == "creating" and document["steps"][0]["then"] == "no-op"
    assert document["steps"][2]["error"] == "provisioningState is Failed"


def test_a_destroy_waiting_for_a_delete_already_running() -> None:
    plan = Plan([Step(_Thing("azure.resource_group[g]"), Wait(state="deleting"))])
    assert "Destroy: 0 to delete, 1 to wait for, 0 left alone." in _shown(plan, destroy=True)
