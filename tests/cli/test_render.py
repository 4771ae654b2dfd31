"""How plan values are shown: as a plan file (YAML/JSON) writes them."""

from __future__ import annotations

import time
from typing import Any

from provision.cli.render import _value, console, plan_document, print_plan
from provision.core import UNKNOWN, Context, FieldChange, NoOp, Plan, Repair, Resource, Step, Wait


def test_values_are_shown_as_plan_files_write_them() -> None:
    assert _value(False) == "false" and _value(True) == "true" and _value(None) == "null"
    assert _value("x") == '"x"' and _value(1440) == "1440"
    assert _value(["GET", True]) == '["GET", true]'
    assert _value({"allow": False}) == "{allow: false}"
    assert _value(UNKNOWN) == "(known after apply)"


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
