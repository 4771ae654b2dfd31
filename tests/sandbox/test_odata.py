"""Pure OData helpers: the `$filter` subset, `$select`, and Graph-like array reordering."""

from __future__ import annotations

from typing import Any

import pytest

from provision.sandbox.azure.odata import ODataError, parse_filter, reorder, reorder_deep, select

APPS = [
    {"id": "1", "appId": "A-1", "displayName": "Viewer", "identifierUris": ["api://viewer"], "tags": []},
    {"id": "2", "appId": "a-2", "displayName": "viewer two", "identifierUris": [], "tags": ["x"]},
    {"id": "3", "appId": "b-3", "displayName": "It's mine", "identifierUris": [], "tags": []},
]
ALLOWED = ("id", "appId", "displayName", "identifierUris", "tags")


@pytest.mark.parametrize(("text", "ids"), [
    (None, ["1", "2", "3"]),
    ("appId eq 'a-1'", ["1"]),  # case-insensitive
    ("appid EQ 'A-1'", ["1"]),
    ("appId ne 'a-1'", ["2", "3"]),
    ("startswith(displayName,'view')", ["1", "2"]),
    ("displayName eq 'It''s mine'", ["3"]),
    ("appId in ('a-2', 'b-3')", ["2", "3"]),
    ("identifierUris/any(x:x eq 'api://viewer')", ["1"]),
    ("tags/any(t:t eq 'X') or appId eq 'b-3'", ["2", "3"]),
    ("startswith(displayName,'view') and not (appId eq 'a-2')", ["1"]),
    ("(appId eq 'a-1' or appId eq 'a-2') and id eq '2'", ["2"]),
])
def test_filter(text: str | None, ids: list[str]) -> None:
    pred = parse_filter(text, ALLOWED)
    assert [a["id"] for a in APPS if pred(a)] == ids


@pytest.mark.parametrize("text", ["jobTitle eq 'x'", "appId gt 'a'", "appId eq", "appId eq 'a' and", "(appId eq 'a'",
                                  "appId eq 'a' extra", "identifierUris/any(x:y eq 'a')", "startswith(appId)"])
def test_filter_errors(text: str) -> None:
    with pytest.raises(ODataError):
        parse_filter(text, ALLOWED)


def test_filter_literals() -> None:
    objs: list[dict[str, Any]] = [{"id": "1", "n": 3, "b": True, "z": None},
                                  {"id": "2", "n": 4, "b": False, "z": "x"}]
    allowed = ("id", "n", "b", "z")
    assert [o["id"] for o in objs if parse_filter("n eq 3", allowed)(o)] == ["1"]
    assert [o["id"] for o in objs if parse_filter("b eq false", allowed)(o)] == ["2"]
    assert [o["id"] for o in objs if parse_filter("z eq null", allowed)(o)] == ["1"]
    guid = "11111111-2222-3333-4444-555555555555"
    assert parse_filter(f"id eq {guid}", allowed)({"id": guid.upper()})


def test_select_keeps_id() -> None:
    assert select({"id": "1", "a": 1, "b": 2, "@odata.type": "t"}, "B") == {"id": "1", "b": 2, "@odata.type": "t"}
    assert select({"id": "1", "a": 1}, None) == {"id": "1", "a": 1}


@pytest.mark.parametrize("items", [[1, 2], [1, 2, 3], ["b", "a"], [{"k": 1}, {"k": 2}, {"k": 3}], list(range(10))])
def test_reorder_differs_but_keeps_members(items: list[Any]) -> None:
    out = reorder(items)
    assert out != items
    assert sorted(map(repr, out)) == sorted(map(repr, items))
    assert reorder(list(items)) == out  # stable


def test_reorder_short_lists_and_nesting() -> None:
    assert reorder([]) == [] and reorder([1]) == [1]
    nested = {"a": [{"b": ["x", "y"]}, {"b": ["z", "w"]}], "c": {"d": [1, 2]}}
    out = reorder_deep(nested)
    assert list(out) == ["a", "c"]
    assert out["c"]["d"] != [1, 2]
    assert {tuple(sorted(i["b"])) for i in out["a"]} == {("x", "y"), ("w", "z")}


def test_a_filter_holds_at_most_fifteen_clauses_each_value_of_an_in_counting() -> None:
    seven = ", ".join(f"'u{k}'" for k in range(7))
    parse_filter(f"appId in ({seven}) or displayName in ({seven})", ALLOWED)  # 14: what a user lookup sends
    parse_filter(" or ".join(f"appId eq 'a{k}'" for k in range(15)), ALLOWED)
    eight = ", ".join(f"'u{k}'" for k in range(8))
    with pytest.raises(ODataError, match=r"Too many child clauses .*: 16\. Max allowed: 15"):
        parse_filter(f"appId in ({eight}) or displayName in ({eight})", ALLOWED)
