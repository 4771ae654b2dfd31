"""apply against ARM's token-bucket throttling (the sandbox's, switched on): the client keeps the subscription's
budget and believes what ARM says is left, and a 429 cuts the engine's window for every branch."""

from __future__ import annotations

import asyncio
from typing import Any

from provision.azure import open_session
from provision.cli.target import connection_of
from provision.core import Engine, Phase
from provision.plan import parse_plan

from .conftest import PLAYBOOKS


def _plan_with_entries(entries: int) -> Any:
    """The bundled plan with `entries` sandbox test users as its access list."""
    text = (PLAYBOOKS / "azure-ohif.yaml").read_text()
    head, _, tail = text.partition("  access:\n")
    access = "".join(f"    - user: user{k}@contoso.com\n      role: DICOM Data Reader\n" for k in range(1, entries + 1))
    return parse_plan(head + "  access:\n" + access + tail[tail.index("\n  tags:"):], "throttled.yaml", env={})


def _apply(azure: Any, plan: Any, concurrency: int) -> tuple[Engine, list[Any]]:
    events: list[Any] = []

    async def go() -> Engine:
        session = await open_session(plan, connection_of(azure.info))
        try:
            engine = Engine(session.resources, concurrency=concurrency, on_event=events.append)
            await engine.apply(await engine.plan())
            return engine
        finally:
            await session.aclose()

    return asyncio.run(go()), events


def _throttling(azure: Any, **limits: Any) -> dict[str, Any]:
    return dict(azure.control._call("POST", "/_sandbox/throttling", {"enabled": True, "limits": limits}))


def _throttled(azure: Any) -> dict[str, int]:
    return dict(azure.control._call("GET", "/_sandbox/throttling")["throttled"])


def _off(azure: Any) -> None:
    azure.control._call("POST", "/_sandbox/throttling", {"enabled": False, "defaults": True})


def test_a_plan_larger_than_the_write_burst_waits_for_tokens_instead_of_meeting_429s(azure: Any) -> None:
    azure.control.configure(test_users=8)
    # 3 writes at once, refilled at 12 per second (a little faster than the 10 the client assumes for ARM): the
    # plan's 12 ARM writes only go through without a 429 if the client reads `x-ms-ratelimit-remaining-...` and
    # waits for the refill, since its own bucket believes in 200
    _throttling(azure, writes={"burst": 3, "rate": 12})
    try:
        _apply(azure, _plan_with_entries(8), concurrency=1)
        refused = _throttled(azure)
    finally:
        _off(azure)
    scope_assignments = [ra for ra in azure.control.state()["role_assignments"].values()
                         if "/dicomservices/" in ra["scope"].lower()]
    assert len(scope_assignments) == 8
    assert refused == {"reads": 0, "writes": 0, "deletes": 0}


def test_429s_cut_the_window_for_every_branch_and_apply_still_converges(azure: Any) -> None:
    azure.control.configure(test_users=16)
    # refilled more slowly than the 10 per second the client assumes (another client of the subscription spends
    # from it too): only 429s can tell the client
    _throttling(azure, writes={"burst": 5, "rate": 4})
    try:
        engine, events = _apply(azure, _plan_with_entries(16), concurrency=32)
        refused = _throttled(azure)
    finally:
        _off(azure)

    assert refused["writes"] > 0, "16 role assignments at once should have met the 5-write burst"
    assert engine.gate.cuts >= 1 and engine.gate.lowest < 32
    throttled = [e for e in events if e.phase is Phase.RETRY and e.throttled]
    assert throttled, "each 429 is reported as a throttled retry"
    scope_assignments = [ra for ra in azure.control.state()["role_assignments"].values()
                         if "/dicomservices/" in ra["scope"].lower()]
    assert len(scope_assignments) == 16  # none twice, none missing
    assert azure.run(_plan_with_entries(16), "plan").changes() == {}
