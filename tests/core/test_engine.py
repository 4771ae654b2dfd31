"""Executor tests with an in-memory resource: ordering, concurrency, retries, time limits, ownership."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from provision.core import (
    UNKNOWN,
    Context,
    Engine,
    ExecutionError,
    NoOp,
    Phase,
    Resource,
    Stray,
    TemporaryError,
    Timeouts,
    Update,
)
from provision.errors import CloudError


class World:
    """A toy cloud: objects by key, and a journal of every call."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []
        self.active = 0
        self.peak = 0


class Thing(Resource):
    timeouts = Timeouts(read=5, create=5, update=5, delete=5)

    def __init__(
        self,
        world: World,
        name: str,
        *,
        depends_on: tuple[str, ...] = (),
        size: int = 1,
        delay: float = 0.0,
        failures: list[Exception] | None = None,
        owner: str = "me",
    ) -> None:
        super().__init__(f"thing[{name}]", depends_on)
        self.world, self.name, self.size, self.delay = world, name, size, delay
        self.failures = failures or []
        self.owner = owner

    async def _call(self, verb: str) -> None:
        self.world.calls.append((verb, self.name))
        self.world.active += 1
        self.world.peak = max(self.world.peak, self.world.active)
        try:
            await asyncio.sleep(self.delay)
            if verb != "read" and self.failures:
                raise self.failures.pop(0)
        finally:
            self.world.active -= 1

    async def read(self, ctx: Context) -> dict[str, Any] | None:
        await self._call("read")
        found = self.world.objects.get(self.name)
        return dict(found) if found else None

    def desired(self, ctx: Context) -> dict[str, Any]:
        parents = {dep: ctx.inputs(dep).get("id") for dep in self.depends_on}
        return {"size": self.size, "parents": parents, "owner": self.owner}

    async def create(self, ctx: Context, desired: dict[str, Any]) -> dict[str, Any]:
        assert UNKNOWN not in desired["parents"].values(), "a dependency's id must be known at apply time"
        await self._call("create")
        self.world.objects[self.name] = {**desired, "id": f"id-{self.name}"}
        return dict(self.world.objects[self.name])

    async def update(self, ctx: Context, desired: dict[str, Any], actual: dict[str, Any], action: Update) -> None:
        await self._call("update")
        self.world.objects[self.name].update(desired)

    async def delete(self, ctx: Context, actual: dict[str, Any]) -> None:
        await self._call("delete")
        del self.world.objects[self.name]

    def outputs(self, actual: dict[str, Any]) -> dict[str, Any]:
        return {"id": actual.get("id")}

    def owned(self, actual: dict[str, Any]) -> bool:
        return actual.get("owner") == "me"


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_create_in_dependency_order_and_pass_ids_along() -> None:
    world = World()
    engine = Engine([Thing(world, "child", depends_on=("thing[parent]",)), Thing(world, "parent")])
    plan = run(engine.plan())
    assert [s.action.kind for s in plan.steps] == ["create", "create"]
    assert plan.outputs["thing[parent]"]["id"] is UNKNOWN
    run(engine.apply(plan))
    creates = [name for verb, name in world.calls if verb == "create"]
    assert creates == ["parent", "child"]
    assert world.objects["child"]["parents"] == {"thing[parent]": "id-parent"}


def test_independent_branches_run_concurrently() -> None:
    world = World()
    engine = Engine([Thing(world, "a", delay=1.0), Thing(world, "b", delay=1.0)])
    plan = run(engine.plan())
    world.calls.clear()
    started = time.monotonic()
    run(engine.apply(plan))
    elapsed = time.monotonic() - started
    # each apply re-reads then creates (2 x 1 s); serially that would be 4 s
    assert elapsed < 3.0, elapsed
    assert world.peak == 2


def test_two_one_second_operations_finish_together() -> None:
    world = World()
    engine = Engine([Thing(world, "a", delay=1.0), Thing(world, "b", delay=1.0)])
    started = time.monotonic()
    run(engine.plan())
    assert time.monotonic() - started < 1.8


def test_concurrency_is_bounded() -> None:
    world = World()
    engine = Engine([Thing(world, f"t{i}", delay=0.05) for i in range(10)], concurrency=3)
    run(engine.plan())
    assert world.peak == 3


def test_second_apply_reads_once_and_writes_nothing() -> None:
    world = World()
    resources = [Thing(world, "parent"), Thing(world, "child", depends_on=("thing[parent]",))]
    run(Engine(resources).apply())
    world.calls.clear()
    engine = Engine(resources)
    plan = run(engine.plan())
    assert not plan.has_changes
    run(engine.apply(plan))
    assert world.calls == [("read", "parent"), ("read", "child")]


def test_update_only_when_declared_field_differs() -> None:
    world = World()
    run(Engine([Thing(world, "a", size=1)]).apply())
    plan = run(Engine([Thing(world, "a", size=2)]).plan())
    (step,) = plan.steps
    assert step.action.kind == "update"
    assert [c.path for c in step.action.changes] == ["size"]


def test_temporary_errors_are_retried_honouring_retry_after() -> None:
    world = World()
    events = []
    thing = Thing(world, "a", failures=[TemporaryError("throttled", retry_after=0.2), TemporaryError("503")])
    engine = Engine([thing], on_event=events.append)
    started = time.monotonic()
    run(engine.apply())
    assert time.monotonic() - started >= 0.2
    assert [verb for verb, _ in world.calls].count("create") == 3
    retries = [e for e in events if e.phase is Phase.RETRY]
    assert len(retries) == 2 and "retrying in 0.2 s" in retries[0].message


def test_permanent_error_fails_fast_and_skips_dependants() -> None:
    world = World()
    events = []
    parent = Thing(world, "parent", failures=[CloudError("InvalidRequestContent: bad name")])
    child = Thing(world, "child", depends_on=("thing[parent]",))
    other = Thing(world, "other")
    with pytest.raises(ExecutionError) as caught:
        run(Engine([parent, child, other], on_event=events.append).apply())
    assert "thing[parent]: InvalidRequestContent" in caught.value.message
    assert "child" not in world.objects and "other" in world.objects
    assert any(e.phase is Phase.SKIPPED and e.address == "thing[child]" for e in events)
    assert [verb for verb, name in world.calls if name == "parent"].count("create") == 1


def test_time_limit_stops_retrying() -> None:
    class Slow(Thing):
        timeouts = Timeouts(read=5, create=0.3, update=5, delete=5)

    world = World()
    slow = Slow(world, "a", failures=[TemporaryError("busy", retry_after=0.1)] * 50)
    started = time.monotonic()
    with pytest.raises(ExecutionError, match=r"busy; retried \d+ times over \d+ s|no success within"):
        run(Engine([slow]).apply())
    assert time.monotonic() - started < 1.0


def test_operation_that_hangs_hits_its_time_limit() -> None:
    class Hangs(Thing):
        timeouts = Timeouts(read=0.2, create=5, update=5, delete=5)

    with pytest.raises(ExecutionError, match="no success within"):
        run(Engine([Hangs(World(), "a", delay=5)]).plan())


def test_existing_resource_not_owned_is_blocked_unless_adopted() -> None:
    world = World()
    world.objects["a"] = {"size": 1, "parents": {}, "owner": "someone-else", "id": "id-a"}
    plan = run(Engine([Thing(world, "a")]).plan())
    assert plan.blocked and "--adopt" in (plan.blocked[0].blocked or "")
    with pytest.raises(ExecutionError):
        run(Engine([Thing(world, "a")]).apply(plan))
    assert not any(verb in ("create", "update") for verb, _ in world.calls)
    run(Engine([Thing(world, "a")], adopt=True).apply())
    assert world.objects["a"]["owner"] == "me"


def test_destroy_in_reverse_order_and_only_owned() -> None:
    world = World()
    resources = [Thing(world, "parent"), Thing(world, "child", depends_on=("thing[parent]",))]
    run(Engine(resources).apply())
    world.objects["foreign"] = {"owner": "someone-else", "id": "id-foreign", "size": 1, "parents": {}}
    world.calls.clear()
    engine = Engine([*resources, Thing(world, "foreign")])
    plan = run(engine.destroy_plan())
    kinds = {s.resource.address: s.action for s in plan.steps}
    assert isinstance(kinds["thing[foreign]"], NoOp) and "not owned" in kinds["thing[foreign]"].reason
    run(engine.destroy(plan))
    deletes = [name for verb, name in world.calls if verb == "delete"]
    assert deletes == ["child", "parent"]
    assert list(world.objects) == ["foreign"]
    # a second destroy is a no-op
    again = run(engine.destroy_plan())
    assert not again.has_changes


def test_cycle_is_refused() -> None:
    world = World()
    with pytest.raises(Exception, match="cycle"):
        Engine([Thing(world, "a", depends_on=("thing[b]",)), Thing(world, "b", depends_on=("thing[a]",))])


def test_shared_resources_are_kept_on_destroy() -> None:
    class Shared(Thing):
        def kept_on_destroy(self, actual: dict[str, Any]) -> str | None:
            return "kept: shared beyond this plan"

    world = World()
    run(Engine([Shared(world, "shared")]).apply())
    plan = run(Engine([Shared(world, "shared")]).destroy_plan())
    (step,) = plan.steps
    assert isinstance(step.action, NoOp) and "kept" in step.action.reason
    run(Engine([Shared(world, "shared")]).destroy(plan))
    assert "shared" in world.objects


def test_two_one_second_writes_finish_together() -> None:
    """Done-when of the foundation: two independent resources whose operations each take 1 s finish together
    in well under 2 s (here the writes; reads are instant)."""

    class SlowWrite(Thing):
        async def create(self, ctx: Context, desired: dict[str, Any]) -> dict[str, Any]:
            await asyncio.sleep(1.0)
            return await super().create(ctx, desired)

    world = World()
    finished: dict[str, float] = {}
    started = time.monotonic()

    def record(event: Any) -> None:
        if event.phase is Phase.DONE:
            finished[event.address] = time.monotonic() - started

    run(Engine([SlowWrite(world, "a"), SlowWrite(world, "b")], on_event=record).apply())
    assert set(finished) == {"thing[a]", "thing[b]"}
    assert max(finished.values()) < 1.5, finished
    assert abs(finished["thing[a]"] - finished["thing[b]"]) < 0.2, finished


def test_an_unexpected_error_cancels_the_other_branches() -> None:
    """An exception that is not a ProvisionError (a bug, an untranslated SDK error) ends the run at once: the
    other branches are cancelled instead of running on while the caller closes the session under them."""

    class Broken(Thing):
        async def create(self, ctx: Context, desired: dict[str, Any]) -> dict[str, Any]:
            raise RuntimeError("untranslated")

    class SlowWrite(Thing):
        async def create(self, ctx: Context, desired: dict[str, Any]) -> dict[str, Any]:
            await asyncio.sleep(2.0)
            return await super().create(ctx, desired)

    world = World()
    engine = Engine([Broken(world, "broken"), SlowWrite(world, "slow")])

    async def caller() -> float:
        started = time.monotonic()
        with pytest.raises(RuntimeError, match="untranslated"):
            await engine.apply()
        failed_after = time.monotonic() - started
        await asyncio.sleep(2.5)  # the caller goes on (the CLI closes its session): nothing may still run
        return failed_after

    assert run(caller()) < 1.0
    assert "slow" not in world.objects


class Box(Thing):
    """A container whose one delete takes its contents along when they are all its owner's."""

    def __init__(self, world: World, name: str, *, takes_contents: bool) -> None:
        super().__init__(world, name)
        self.takes_contents = takes_contents

    async def deletes_contents(self, ctx: Context, actual: dict[str, Any]) -> bool:
        await self._call("list")
        return self.takes_contents

    async def delete(self, ctx: Context, actual: dict[str, Any]) -> None:
        await super().delete(ctx, actual)
        if self.takes_contents:
            for name in [n for n in self.world.objects if n.startswith(f"{self.name}/")]:
                del self.world.objects[name]


def _boxed(world: World, *, takes_contents: bool) -> list[Resource]:
    box = Box(world, "box", takes_contents=takes_contents)
    shelf = Thing(world, "box/shelf", depends_on=(box.address,))
    shelf.deleted_with = box.address
    item = Thing(world, "box/item", depends_on=(shelf.address,))
    item.deleted_with = shelf.address
    outside = Thing(world, "note", depends_on=(item.address,))  # depends on what is inside, lives elsewhere
    return [box, shelf, item, outside]


@pytest.mark.parametrize("takes_contents", [True, False])
def test_a_container_that_takes_its_contents_is_deleted_once(takes_contents: bool) -> None:
    world = World()
    run(Engine(_boxed(world, takes_contents=takes_contents)).apply())
    world.calls.clear()
    engine = Engine(_boxed(world, takes_contents=takes_contents))
    plan = run(engine.destroy_plan())
    containers = {s.resource.address: getattr(s.action, "container", None) for s in plan.steps}
    outcome = run(engine.destroy(plan))

    deleted = [name for verb, name in world.calls if verb == "delete"]
    assert world.objects == {}
    assert {s.resource.address for s in outcome.done} == {"thing[box]", "thing[box/shelf]", "thing[box/item]",
                                                          "thing[note]"}
    if takes_contents:  # the innermost item names the shelf, the shelf the box: both go with the box
        assert containers == {"thing[box]": None, "thing[box/shelf]": "thing[box]",
                              "thing[box/item]": "thing[box]", "thing[note]": None}
        assert sorted(deleted) == ["box", "note"]
    else:
        assert set(containers.values()) == {None}
        assert deleted == ["note", "box/item", "box/shelf", "box"]  # reverse dependency order, one by one
    assert sum(1 for verb, _ in world.calls if verb == "list") == 1


def test_covering_is_dropped_when_something_outside_sits_between_a_container_and_its_contents() -> None:
    world = World()

    def resources() -> list[Resource]:
        box = Box(world, "box", takes_contents=True)
        rack = Thing(world, "rack", depends_on=(box.address,))  # outside the box, needs it
        shelf = Thing(world, "box/shelf", depends_on=(box.address, rack.address))  # inside, needs the rack
        shelf.deleted_with = box.address
        return [box, rack, shelf]

    run(Engine(resources()).apply())
    world.calls.clear()
    engine = Engine(resources())
    plan = run(engine.destroy_plan())
    assert {getattr(s.action, "container", None) for s in plan.steps} == {None}  # else it would wait for itself
    run(engine.destroy(plan))
    assert [name for verb, name in world.calls if verb == "delete"] == ["box/shelf", "rack", "box"]


class Shelf(Thing):
    """Holds things named `shelf/*`; the ones carrying its owner's mark that no declared resource stands for are
    its strays."""

    def __init__(self, world: World, name: str, declared: tuple[str, ...] = ()) -> None:
        super().__init__(world, name)
        self.declared = declared

    async def strays(self, ctx: Context, actual: dict[str, Any]) -> list[Stray]:
        await self._call("list")
        return [Stray(Thing(self.world, name), dict(found)) for name, found in self.world.objects.items()
                if name.startswith(f"{self.name}/") and found.get("owner") == "me"
                and f"thing[{name}]" not in self.declared]


def _shelved(world: World, *names: str) -> list[Resource]:
    shelf = Shelf(world, "shelf", declared=tuple(f"thing[shelf/{name}]" for name in names))
    return [shelf, *(Thing(world, f"shelf/{name}", depends_on=(shelf.address,)) for name in names)]


def test_a_stray_is_planned_as_a_delete_and_deleted_by_apply_once() -> None:
    world = World()
    run(Engine(_shelved(world, "a", "b")).apply())
    world.objects["shelf/foreign"] = {"owner": "someone-else", "id": "x", "size": 1, "parents": {}}
    engine = Engine(_shelved(world, "a"))  # b was deleted from the plan

    plan = run(engine.plan())

    assert {s.resource.address: s.action.kind for s in plan.steps if s.action.changes_anything} == {
        "thing[shelf/b]": "delete"}
    assert plan.steps[-1].as_dict()["reason"] == "no longer in the plan"
    outcome = run(engine.apply(plan))
    assert [s.resource.address for s in outcome.done] == ["thing[shelf/b]"]
    assert sorted(world.objects) == ["shelf", "shelf/a", "shelf/foreign"]  # someone else's is left alone
    assert not run(engine.plan()).has_changes


def test_destroy_deletes_strays_before_what_holds_them() -> None:
    world = World()
    run(Engine(_shelved(world, "a", "b")).apply())
    engine = Engine(_shelved(world, "a"))
    world.calls.clear()

    run(engine.destroy())

    assert [name for verb, name in world.calls if verb == "delete"] == ["shelf/b", "shelf/a", "shelf"]
    assert world.objects == {}
