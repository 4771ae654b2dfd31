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
