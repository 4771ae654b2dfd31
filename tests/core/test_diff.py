"""Table tests of the pure diff: one scenario file per case (desired + actual -> expected action)."""

import json
from pathlib import Path

import pytest

from provision.core import UNKNOWN, Compare, FieldPolicy, diff
from provision.core.actions import Replace

SCENARIOS = sorted((Path(__file__).parent / "scenarios").glob("*.json"))


def _schema(raw: dict) -> dict[str, FieldPolicy]:
    return {
        path: FieldPolicy(compare=Compare(spec.get("compare", "exact")), force_new=spec.get("force_new", False))
        for path, spec in raw.items()
    }


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario(scenario: Path) -> None:
    case = json.loads(scenario.read_text())
    action = diff(case["desired"], case["actual"], _schema(case["schema"]))
    expect = case["expect"]
    assert action.kind == expect["action"]
    assert [change.path for change in action.changes] == expect["paths"]
    if "reasons" in expect:
        assert isinstance(action, Replace)
        assert list(action.reasons) == expect["reasons"]


def test_there_are_scenarios() -> None:
    assert len(SCENARIOS) >= 10


def test_unknown_is_never_equal_and_is_rendered() -> None:
    action = diff({"principalId": UNKNOWN}, {"principalId": "abc"})
    assert action.kind == "update"
    assert action.as_dict()["changes"][0]["after"] == "(known after apply)"


def test_update_records_before_and_after() -> None:
    action = diff({"cors": {"maxAge": 60}}, {"cors": {"maxAge": 1440}})
    (change,) = action.changes
    assert (change.path, change.before, change.after) == ("cors.maxAge", 1440, 60)
