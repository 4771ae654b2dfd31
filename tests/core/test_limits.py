"""The adaptive gate, the slot lent out while waiting, the client-side token bucket, and the engine using them:
critical-path-first scheduling and apply writing on the plan's reads."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from provision.core import Engine, FieldPolicy, TemporaryError
from provision.core import engine as engine_module
from provision.core.limits import AdaptiveGate, TokenBucket, idle

from .test_engine import Thing, World


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# -- the gate ----------------------------------------------------------------------------------------------


def test_waiters_are_let_in_highest_priority_first_then_in_arrival_order() -> None:
    order: list[str] = []

    async def scenario() -> None:
        gate = AdaptiveGate(1)
        await gate.acquire()  # the one slot is taken: everyone below queues

        async def waiter(name: str, priority: float) -> None:
            async with gate.slot(priority):
                order.append(name)

        tasks = [asyncio.ensure_future(waiter(name, priority))
                 for name, priority in (("low", 1), ("high-1", 5), ("mid", 3), ("high-2", 5))]
        await asyncio.sleep(0)
        gate.release()
        await asyncio.gather(*tasks)

    run(scenario())
    assert order == ["high-1", "high-2", "mid", "low"]


def test_throttling_halves_the_window_once_per_congestion_and_successes_win_it_back() -> None:
    async def scenario() -> AdaptiveGate:
        gate = AdaptiveGate(16)
        before = time.monotonic()
        gate.throttled(before)
        gate.throttled(before)  # another answer to a request sent before the cut: the same congestion
        assert gate.capacity == 8 and gate.cuts == 1
        gate.throttled(time.monotonic() + 1)  # a slot taken after the cut: throttled again
        assert gate.capacity == 4 and gate.cuts == 2
        for _ in range(5):
            gate.succeeded()  # +1/window each: about one slot per window of successes
        assert gate.capacity == 5
        for _ in range(200):
            gate.succeeded()
        assert gate.capacity == 16  # never above the limit
        return gate

    gate = run(scenario())
    assert gate.lowest == 4


def test_the_window_never_closes() -> None:
    gate = AdaptiveGate(2)
    for step in range(10):
        gate.throttled(time.monotonic() + step + 1)
    assert gate.capacity == 1


def test_a_cut_window_admits_no_more_than_it_holds() -> None:
    async def scenario() -> int:
        gate = AdaptiveGate(8)
        gate.throttled(time.monotonic())
        gate.throttled(time.monotonic() + 1)  # 8 -> 4 -> 2
        peak = active = 0

        async def work() -> None:
            nonlocal peak, active
            async with gate.slot():
                active += 1
                peak = max(peak, active)
                await asyncio.sleep(0.01)
                active -= 1

        await asyncio.gather(*(work() for _ in range(10)))
        return peak

    assert run(scenario()) == 2


def test_idle_lends_the_slot_and_takes_it_back() -> None:
    events: list[str] = []

    async def scenario() -> None:
        gate = AdaptiveGate(1)

        async def waits() -> None:
            async with gate.slot():
                events.append("waits: sent")
                await idle(0.2)  # a Retry-After: the other may send meanwhile
                events.append("waits: sent again")

        async def works() -> None:
            await asyncio.sleep(0.01)
            async with gate.slot():
                events.append("works: sent")
                await asyncio.sleep(0.3)  # still holding it when the first one's wait is over
                events.append("works: done")

        await asyncio.gather(waits(), works())
        assert gate.active == 0

    run(scenario())
    assert events == ["waits: sent", "works: sent", "works: done", "waits: sent again"]


def test_idle_without_a_slot_just_sleeps() -> None:
    started = time.monotonic()
    run(idle(0.05))
    assert time.monotonic() - started >= 0.05


# -- the token bucket --------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_bucket_spends_its_burst_then_paces_at_its_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(3, 10, clock=clock)
    assert [bucket.reserve() for _ in range(5)] == pytest.approx([0, 0, 0, 0.1, 0.2])
    clock.now += 1.0  # refilled by 10 from -2, capped at the burst
    assert bucket.reserve() == 0
    assert bucket.tokens == pytest.approx(2)


def test_the_bucket_believes_the_service_about_what_is_left() -> None:
    clock = Clock()
    bucket = TokenBucket(200, 10, clock=clock)
    bucket.observe(1199)  # more than it can hold: nothing changes
    assert bucket.reserve() == 0
    bucket.observe(0)  # another client of the subscription spent it: wait for the refill
    assert bucket.reserve() == pytest.approx(0.1)


def test_take_waits_for_the_token_it_reserved() -> None:
    bucket = TokenBucket(1, 20)

    async def scenario() -> float:
        started = time.monotonic()
        await asyncio.gather(*(bucket.take() for _ in range(3)))  # the third waits 2 x 50 ms
        return time.monotonic() - started

    assert run(scenario()) >= 0.09
    assert bucket.waited == pytest.approx(0.15, abs=0.02)  # 0.05 + 0.10


# -- the engine --------------------------------------------------------------------------------------------


def test_a_throttled_branch_gives_its_slot_to_the_others_while_it_waits() -> None:
    world = World()
    slow = Thing(world, "throttled", failures=[TemporaryError("429", retry_after=0.5, throttled=True)])
    others = [Thing(world, f"other{k}", delay=0.05) for k in range(3)]
    engine = Engine([slow, *others], concurrency=1)
    plan = run(engine.plan())
    world.calls.clear()
    run(engine.apply(plan))
    creates = [name for verb, name in world.calls if verb == "create"]
    # with the slot held through the Retry-After, nothing else could have been created before the retry
    assert creates == ["throttled", "other0", "other1", "other2", "throttled"]
    assert engine.gate.cuts == 1


def test_the_critical_path_is_read_first() -> None:
    world = World()
    chain = [Thing(world, "head"), Thing(world, "middle", depends_on=("thing[head]",)),
             Thing(world, "tail", depends_on=("thing[middle]",))]
    leaves = [Thing(world, f"leaf{k}") for k in range(4)]
    engine = Engine([*leaves, *chain], concurrency=1)  # the leaves come first in the plan
    run(engine.plan())
    reads = [name for verb, name in world.calls if verb == "read"]
    assert reads[0] == "head"


def test_apply_writes_on_the_plans_reads_while_they_are_fresh() -> None:
    world = World()
    engine = Engine([Thing(world, "child", depends_on=("thing[parent]",)), Thing(world, "parent")])
    plan = run(engine.plan())
    world.calls.clear()
    run(engine.apply(plan))
    assert world.calls == [("create", "parent"), ("create", "child")]


def test_apply_reads_again_after_a_long_look_at_the_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    world = World()
    engine = Engine([Thing(world, "child", depends_on=("thing[parent]",)), Thing(world, "parent")])
    plan = run(engine.plan())
    world.objects["child"] = {"size": 2, "parents": {}, "owner": "someone else", "id": "theirs"}  # meanwhile
    monkeypatch.setattr(engine_module, "REUSE_READS_FOR", 0.0)
    world.calls.clear()
    with pytest.raises(engine_module.ExecutionError, match="exists but"):
        run(engine.apply(plan))
    assert ("read", "child") in world.calls and ("create", "child") not in world.calls


def test_a_dependant_of_a_replaced_resource_is_read_again() -> None:
    world = World()
    world.objects["parent"] = {"size": 1, "parents": {}, "owner": "me", "id": "id-parent"}
    world.objects["child"] = {"size": 1, "parents": {"thing[parent]": "id-parent"}, "owner": "me", "id": "id-child"}

    class Renamed(Thing):
        """A parent whose size can only change by replacement; its delete takes the child along."""

        schema = {"size": FieldPolicy(force_new=True)}

        async def delete(self, ctx: Any, actual: dict[str, Any]) -> None:
            await super().delete(ctx, actual)
            self.world.objects.pop("child", None)

    engine = Engine([Renamed(world, "parent", size=2), Thing(world, "child", depends_on=("thing[parent]",))])
    plan = run(engine.plan())
    assert [s.action.kind for s in plan.steps] == ["replace", "no-op"]  # the new parent keeps its id
    world.calls.clear()
    run(engine.apply(plan))
    assert ("read", "child") in world.calls  # read again, found gone, created
    assert ("create", "child") in world.calls
    assert world.objects["child"]["parents"] == {"thing[parent]": "id-parent"}
