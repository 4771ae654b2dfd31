"""The engine and lifecycle states, with an in-memory service whose operations take time: an operation found
running is waited for (plan: `wait`), a failed object is repaired or replaced (never "up to date"), and a write
whose answer is lost, or that meets an operation in progress, is followed by a fresh read instead of a
blind second write."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from provision.core import (
    Context,
    Engine,
    ExecutionError,
    Lifecycle,
    NoOp,
    Phase,
    Repair,
    Replace,
    Resource,
    TemporaryError,
    Timeouts,
    Update,
    Wait,
)
from provision.core import engine as engine_module

RUNNING = {"Creating": "create", "Updating": "update", "Deleting": "delete"}


class Service:
    """A toy cloud: objects whose operations end `duration` seconds after they start, and a journal of writes."""

    def __init__(self, duration: float = 0.3) -> None:
        self.duration = duration
        self.objects: dict[str, dict[str, Any]] = {}
        self.writes: list[tuple[str, str]] = []
        #: seconds a new object stays invisible to reads (a replicating directory)
        self.invisible_for = 0.0

    def settle(self) -> None:
        now = time.time()
        for name, obj in list(self.objects.items()):
            if obj["state"] in RUNNING and obj["ends"] <= now:
                if obj["state"] == "Deleting":
                    del self.objects[name]
                else:
                    obj["state"] = obj.pop("outcome", "Succeeded")

    def start(self, name: str, state: str, **fields: Any) -> dict[str, Any]:
        now = time.time()
        obj = self.objects.setdefault(name, {"created": now})
        obj.update(fields, state=state, since=now, ends=now + self.duration)
        return obj


class Job(Resource):
    """An object of the toy service, managed like an ARM resource (PUT starts an operation; 409 while busy)."""

    timeouts = Timeouts(read=5, create=5, update=5, delete=5)
    repairable = True

    def __init__(self, service: Service, name: str, *, size: int = 1, depends_on: tuple[str, ...] = (),
                 lose_answers: int = 0) -> None:
        super().__init__(f"job[{name}]", depends_on)
        self.service, self.name, self.size = service, name, size
        self.lose_answers = lose_answers

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {"size": self.size}

    async def read(self, ctx: Context) -> dict[str, Any] | None:
        await asyncio.sleep(0)
        self.service.settle()
        found = self.service.objects.get(self.name)
        if found is None or time.time() - found["created"] < self.service.invisible_for:
            return None
        return {"id": f"id-{self.name}", **found}

    def lifecycle(self, actual: dict[str, Any]) -> Lifecycle | None:
        state = actual["state"]
        if state in RUNNING:
            return Lifecycle.in_progress(state, RUNNING[state], since=actual["since"])
        if state == "Failed":
            return Lifecycle.failed(state, "InternalError: the disk broke")
        return None

    def _put(self, verb: str, desired: dict[str, Any]) -> None:
        self.service.settle()
        self.service.writes.append((verb, self.name))
        existing = self.service.objects.get(self.name)
        if existing is not None and existing["state"] in RUNNING:
            raise TemporaryError(f"{self.name} is {existing['state']}: another operation is in progress (409)")
        self.service.start(self.name, "Creating" if existing is None else "Updating", size=desired["size"])
        if self.lose_answers:
            self.lose_answers -= 1
            raise TemporaryError("connection reset after the request was sent")

    async def create(self, ctx: Context, desired: dict[str, Any]) -> dict[str, Any] | None:
        self._put("create", desired)
        return None

    async def update(self, ctx: Context, desired: dict[str, Any], actual: dict[str, Any],
                     action: Update) -> dict[str, Any] | None:
        self._put("update", desired)
        return None

    async def delete(self, ctx: Context, actual: dict[str, Any]) -> None:
        self.service.writes.append(("delete", self.name))
        self.service.start(self.name, "Deleting")
        while self.name in self.service.objects:
            await asyncio.sleep(0.05)
            self.service.settle()

    def outputs(self, actual: dict[str, Any]) -> dict[str, Any]:
        return {"id": actual.get("id")}


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_an_object_still_being_created_is_waited_for_not_called_up_to_date() -> None:
    service = Service(duration=0.5)
    service.start("a", "Creating", size=1)
    engine = Engine([Job(service, "a")])

    plan = run(engine.plan())

    (step,) = plan.steps
    assert isinstance(step.action, Wait)
    assert (step.action.state, step.action.then) == ("creating", "no-op")
    assert step.action.since is not None and time.time() - step.action.since < 5
    assert plan.has_changes, "something unfinished is a change: plan --detailed-exitcode exits 2"
    assert plan.counts() == {"wait": 1}
    assert step.as_dict()["state"] == "creating" and step.as_dict()["since"].endswith("Z")

    outcome = run(engine.apply(plan))

    assert service.objects["a"]["state"] == "Succeeded"
    assert service.writes == [], "the operation that was running did the work: nothing was sent"
    assert [s.action.kind for s in outcome.done] == ["wait"]
    assert not run(Engine([Job(service, "a")]).plan()).has_changes


def test_after_the_wait_the_object_is_read_again_and_the_rest_is_done() -> None:
    service = Service(duration=0.3)
    service.start("a", "Updating", size=1)
    events: list[Any] = []
    engine = Engine([Job(service, "a", size=2)], on_event=events.append)

    plan = run(engine.plan())
    action = plan.steps[0].action
    assert isinstance(action, Wait) and (action.state, action.then) == ("updating", "update")
    assert [(c.path, c.before, c.after) for c in action.changes] == [("size", 1, 2)]  # what follows the wait
    run(engine.apply(plan))

    assert service.writes == [("update", "a")]
    assert service.objects["a"]["size"] == 2
    phases = [(e.phase, e.action) for e in events if e.address == "job[a]" and e.phase is not Phase.READ]
    assert phases[:2] == [(Phase.STARTED, "wait"), (Phase.DONE, "wait")]
    assert (Phase.STARTED, "update") in phases


def test_an_object_being_deleted_is_created_again_once_gone_and_its_dependants_with_it() -> None:
    service = Service(duration=0.3)
    service.start("parent", "Deleting", size=1)
    resources = [Job(service, "parent"), Job(service, "child", depends_on=("job[parent]",))]

    plan = run(Engine(resources).plan())

    kinds = {s.resource.address: s.action for s in plan.steps}
    assert isinstance(kinds["job[parent]"], Wait) and kinds["job[parent]"].then == "create"
    assert kinds["job[child]"].kind == "create"
    assert plan.outputs["job[parent]"]["id"] is not None  # unknown until it exists again
    run(Engine(resources).apply(plan))
    assert service.writes == [("create", "parent"), ("create", "child")]


@pytest.mark.parametrize("repairable", [True, False])
def test_a_failed_object_is_repaired_or_replaced_never_up_to_date(repairable: bool) -> None:
    service = Service(duration=0.1)
    service.start("a", "Creating", size=1, outcome="Failed")
    time.sleep(0.15)

    class Fragile(Job):
        pass

    Fragile.repairable = repairable
    plan = run(Engine([Fragile(service, "a")]).plan())

    (step,) = plan.steps
    if repairable:
        assert isinstance(step.action, Repair) and step.action.error == "InternalError: the disk broke"
        assert step.as_dict()["error"] == "InternalError: the disk broke"
    else:
        assert isinstance(step.action, Replace)
        assert step.action.reasons == ("its last operation failed: InternalError: the disk broke",)
    run(Engine([Fragile(service, "a")]).apply(plan))
    assert service.writes == ([("update", "a")] if repairable else [("delete", "a"), ("create", "a")])
    time.sleep(0.15)
    assert isinstance(run(Engine([Fragile(service, "a")]).plan()).steps[0].action, NoOp)


def test_a_create_whose_answer_is_lost_is_read_again_not_sent_again() -> None:
    service = Service(duration=0.3)
    job = Job(service, "a", lose_answers=1)

    run(Engine([job]).apply())

    # the create went through, its answer was lost; the re-read found it being created and waited
    assert service.writes == [("create", "a")]
    assert service.objects["a"]["state"] == "Succeeded"


@pytest.mark.parametrize("fresh", [True, False], ids=["applied-at-once", "applied-after-a-long-look"])
def test_a_create_that_meets_an_operation_in_progress_waits_for_it(fresh: bool,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    service = Service(duration=2.5)  # outlasts the back-off after the 409 (up to 0.5 s), whatever the load
    engine = Engine([Job(service, "a")])
    plan = run(engine.plan())  # absent when planned...
    service.start("a", "Creating", size=1)  # ...then another run's create starts
    if not fresh:
        monkeypatch.setattr(engine_module, "REUSE_READS_FOR", 0.0)

    outcome = run(engine.apply(plan))

    assert [s.action.kind for s in outcome.done] == ["wait"]
    # applied at once, it writes on the plan's read: the create is refused as busy (no second object), then read
    # and waited for; after a long look at the plan it reads first and sees the other run's operation
    assert service.writes == ([("create", "a")] if fresh else [])
    assert len(service.objects) == 1 and service.objects["a"]["state"] == "Succeeded"


def test_a_write_refused_as_busy_is_followed_by_a_read_and_a_wait() -> None:
    # the other run's operation outlasts the back-off after the 409 (up to 0.5 s), so the read after it still
    # finds the operation running, whatever the machine's load
    service = Service(duration=2.5)

    class Racing(Job):
        """Another run's create lands between this run's read and its write."""

        async def create(self, ctx: Context, desired: dict[str, Any]) -> dict[str, Any] | None:
            if not service.objects:
                service.start("a", "Creating", size=1)
            return await super().create(ctx, desired)

    events: list[Any] = []
    outcome = run(Engine([Racing(service, "a")], on_event=events.append).apply())

    assert service.writes == [("create", "a")]  # refused with 409, then waited for instead of sent again
    assert any(e.phase is Phase.RETRY and "another operation is in progress" in e.message for e in events)
    assert [s.action.kind for s in outcome.done] == ["wait"]


def test_an_object_not_visible_right_after_its_create_is_read_again_not_created_again() -> None:
    service = Service(duration=0.0)
    service.invisible_for = 0.5

    outcome = run(Engine([Job(service, "a")]).apply())

    assert service.writes == [("create", "a")]
    assert outcome.outputs["job[a]"] == {"id": "id-a"}


def test_a_wait_has_the_time_limit_of_the_operation_that_runs() -> None:
    class Quick(Job):
        timeouts = Timeouts(read=5, create=0.5, update=5, delete=5)

    service = Service(duration=60)
    service.start("a", "Creating", size=1)

    with pytest.raises(ExecutionError, match=r"job\[a\]: waiting for job\[a\]: still creating after \d+ s"):
        run(Engine([Quick(service, "a")]).apply())


def test_destroy_waits_for_a_delete_already_running_and_sends_none() -> None:
    service = Service(duration=0.3)
    service.start("a", "Deleting", size=1)
    engine = Engine([Job(service, "a")])

    plan = run(engine.destroy_plan())

    (step,) = plan.steps
    assert isinstance(step.action, Wait) and (step.action.state, step.action.then) == ("deleting", "")
    outcome = run(engine.destroy(plan))
    assert service.objects == {} and service.writes == []
    assert [s.resource.address for s in outcome.done] == ["job[a]"]


def test_destroy_waits_for_a_create_still_running_then_deletes() -> None:
    service = Service(duration=0.3)
    service.start("a", "Creating", size=1)
    engine = Engine([Job(service, "a")])

    plan = run(engine.destroy_plan())

    assert plan.steps[0].action == Wait(state="creating", since=service.objects["a"]["since"], then="delete")
    run(engine.destroy(plan))
    assert service.objects == {} and service.writes == [("delete", "a")]


def test_contents_of_a_container_being_deleted_go_with_it() -> None:
    class Box(Job):
        async def deletes_contents(self, ctx: Context, actual: dict[str, Any]) -> bool:
            return True

    service = Service(duration=0.3)
    service.start("box", "Deleting", size=1)
    service.objects["box/item"] = {"created": time.time(), "state": "Succeeded", "size": 1}
    box = Box(service, "box")
    item = Job(service, "box/item", depends_on=(box.address,))
    item.deleted_with = box.address

    plan = run(Engine([box, item]).destroy_plan())

    kinds = {s.resource.address: s.action for s in plan.steps}
    assert isinstance(kinds["job[box]"], Wait) and getattr(kinds["job[box/item]"], "container", None) == "job[box]"
    service.objects.pop("box/item")  # the running delete takes it (the toy service deletes one object)
    run(Engine([box, item]).destroy(plan))
    assert service.writes == []


def test_a_delete_whose_wait_fails_is_read_again_not_sent_again() -> None:
    from provision.errors import CloudError

    class Throttled(Job):
        async def delete(self, ctx: Context, actual: dict[str, Any]) -> None:
            if self.name not in self.service.objects:
                raise CloudError(f"{self.name}: not found")  # what deleting it a second time would meet
            self.service.writes.append(("delete", self.name))
            del self.service.objects[self.name]
            raise TemporaryError("429 while waiting for it to be gone")

    service = Service()
    service.objects["a"] = {"created": time.time(), "state": "Succeeded", "size": 1}
    engine = Engine([Throttled(service, "a")])

    outcome = run(engine.destroy(run(engine.destroy_plan())))

    assert service.writes == [("delete", "a")]
    assert [s.resource.address for s in outcome.done] == ["job[a]"]
