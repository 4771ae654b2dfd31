"""Lookups made at the same moment share requests (`provision.azure.coalesce`), and Graph user lookups use it."""

from __future__ import annotations

import asyncio
from typing import Any

from provision.azure.coalesce import Coalesced
from provision.errors import ProvisionError

from .test_throttling import _plan_with_entries


def _directory(sent: list[list[str]], fail: int = 0) -> Coalesced[str]:
    failures = [fail]

    async def fetch(keys: list[str]) -> list[str]:
        sent.append(keys)
        await asyncio.sleep(0.01)
        if failures[0]:
            failures[0] -= 1
            raise ProvisionError("throttled")
        return [key.upper() for key in keys if key != "nobody"]

    return Coalesced(fetch, lambda item, key: item == key.upper(), per_request=3)


def test_lookups_made_together_go_out_in_requests_of_at_most_n_keys() -> None:
    sent: list[list[str]] = []
    directory = _directory(sent)

    async def scenario() -> list[list[str]]:
        names = ["a", "b", "c", "d", "a", "nobody", "e"]
        return list(await asyncio.gather(*(directory.get(name) for name in names)))

    found = asyncio.run(scenario())
    assert found == [["A"], ["B"], ["C"], ["D"], ["A"], [], ["E"]]
    assert sorted(len(keys) for keys in sent) == [3, 3]  # 6 distinct keys; the repeated "a" asked once
    assert sorted(key for keys in sent for key in keys) == ["a", "b", "c", "d", "e", "nobody"]


def test_a_lookup_made_later_is_a_request_of_its_own() -> None:
    sent: list[list[str]] = []
    directory = _directory(sent)

    async def scenario() -> None:
        await directory.get("a")
        await directory.get("b")

    asyncio.run(scenario())
    assert sent == [["a"], ["b"]]


def test_a_failed_request_fails_each_of_its_callers_and_the_next_try_goes_out_again() -> None:
    sent: list[list[str]] = []
    directory = _directory(sent, fail=1)

    async def scenario() -> list[Any]:
        return list(await asyncio.gather(directory.get("a"), directory.get("b"), return_exceptions=True))

    first = asyncio.run(scenario())
    assert all(isinstance(error, ProvisionError) for error in first)
    assert asyncio.run(scenario()) == [["A"], ["B"]]
    assert len(sent) == 2


def test_a_plan_of_many_users_looks_them_up_seven_at_a_time(azure: Any) -> None:
    entries = 20
    azure.control.configure(test_users=entries)
    result = azure.run(_plan_with_entries(entries), "plan")

    lookups = [e for e in azure.control.api_log() if e["path"] == "/v1.0/users"]
    assert len(lookups) == 3  # 20 names, 7 per request
    assert all(e["status"] == 200 for e in lookups)
    users = [s for s in result.plan.steps if s.resource.address.startswith("azure.user[")]
    assert len(users) == entries and all(s.actual is not None and s.actual["id"] for s in users)


def test_many_role_assignments_at_one_scope_are_read_with_listings_not_one_get_each(azure: Any) -> None:
    entries = 20
    azure.control.configure(test_users=entries)
    plan = _plan_with_entries(entries)
    azure.run(plan)
    azure.control.clear_log()

    again = azure.run(plan, "plan")

    assert again.changes() == {}
    assignments = [e for e in azure.control.api_log() if "/roleassignments" in e["path"].lower()]
    by_name = [e for e in assignments if not e["path"].lower().endswith("/roleassignments")]
    listings = [e for e in assignments if e["path"].lower().endswith("/roleassignments")]
    assert by_name == []  # 20 GETs before
    # one listing per wave of reads (the users arrive 7 per lookup, their assignments become readable with them),
    # and the one that looks for strays
    assert 2 <= len(listings) <= 1 + -(-entries // 7)
    found = [s for s in again.plan.steps if s.resource.address.startswith("azure.role_assignment[")]
    assert len(found) == entries and all(s.actual is not None for s in found)
