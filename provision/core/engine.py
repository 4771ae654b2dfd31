"""Plan, apply and destroy a graph of resources, running independent branches concurrently."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from provision.core.actions import Action, Create, Delete, FieldChange, NoOp, Repair, Replace, Update, Wait
from provision.core.defaults import DEFAULT_CONCURRENCY
from provision.core.diff import diff
from provision.core.durations import format_age
from provision.core.events import Event, EventSink, Phase, ignore
from provision.core.limits import AdaptiveGate, idle, throttled
from provision.core.polling import REPORT_EVERY, poll_delay
from provision.core.resource import Context, Lifecycle, Resource, Stray, TemporaryError
from provision.core.retry import Attempts, OperationTimeout, with_retry
from provision.core.values import UNKNOWN
from provision.errors import ProvisionError

#: the verb of each write in messages ("creating azure.app[x]")
_VERBS = {"create": "creating", "update": "updating", "replace": "replacing", "repair": "repairing",
          "delete": "deleting"}

#: for how long after a plan apply writes on the plan's reads instead of reading each changed resource again (a
#: plan applied at once, `--auto-approve` or a saved plan just checked, saves a round trip per resource on the
#: critical path; one confirmed after a longer look is read again, since the portal may have moved meanwhile)
REUSE_READS_FOR = 30.0


@dataclass
class Step:
    """One resource's planned action, with what was read and what is wanted."""

    resource: Resource
    action: Action
    actual: dict[str, Any] | None = None
    desired: dict[str, Any] = field(default_factory=dict)
    #: why this step cannot go ahead (e.g. an existing resource not owned by the plan)
    blocked: str | None = None
    #: the delete of a stray (`Resource.strays`): its resource is not one the engine was given
    stray: bool = False

    def as_dict(self) -> dict[str, Any]:
        data = {"address": self.resource.address, **self.action.as_dict()}
        if self.blocked:
            data["blocked"] = self.blocked
        return data


@dataclass
class Plan:
    steps: list[Step]
    #: every resource's outputs as planned (UNKNOWN where only apply can tell)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: when its reads were done (monotonic seconds)
    read_at: float = field(default_factory=time.monotonic)

    @property
    def fresh(self) -> bool:
        """Whether apply may write on its reads (see REUSE_READS_FOR)."""
        return time.monotonic() - self.read_at < REUSE_READS_FOR

    @property
    def has_changes(self) -> bool:
        return any(step.action.changes_anything for step in self.steps)

    @property
    def blocked(self) -> list[Step]:
        return [step for step in self.steps if step.blocked]

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for step in self.steps:
            counts[step.action.kind] = counts.get(step.action.kind, 0) + 1
        return counts


@dataclass
class Outcome:
    """What apply or destroy did: the steps carried out and the outputs of every resource."""

    done: list[Step]
    outputs: dict[str, dict[str, Any]]


class ExecutionError(ProvisionError):
    """One or more resources failed; the message lists each failure."""


def _merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class _MissingOutputs(dict[str, Any]):
    """Outputs of a resource that does not exist yet: every key is known after apply."""

    def __missing__(self, key: str) -> Any:
        return UNKNOWN

    def get(self, key: str, default: Any = None) -> Any:
        # the caller's default would hide that the value is merely not known yet
        return super().get(key, UNKNOWN)


class Engine:
    def __init__(
        self,
        resources: Iterable[Resource],
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        on_event: EventSink = ignore,
        adopt: bool | Collection[str] = False,
        strays: bool = True,
    ) -> None:
        self.resources = list(resources)
        self.by_address = {r.address: r for r in self.resources}
        if len(self.by_address) != len(self.resources):
            raise ProvisionError("two resources share an address")
        for resource in self.resources:
            for dep in resource.depends_on:
                if dep not in self.by_address:
                    raise ProvisionError(f"{resource.address} depends on unknown {dep}")
        self._order = self._topological_order()
        self.concurrency = concurrency
        #: operations in flight, shared by every run of this engine: throttling shrinks it for all branches
        self.gate = AdaptiveGate(concurrency)
        self.on_event = on_event
        #: True: take over every existing object without this plan's marks; a collection: only those addresses
        self.adopt = adopt
        #: whether to ask for strays: only an engine given the whole plan can tell what it no longer declares
        #: (given part of it, `--target`, every undeclared-here object would look like one)
        self.strays = strays

    def _adopts(self, address: str) -> bool:
        return self.adopt if isinstance(self.adopt, bool) else address in self.adopt

    # -- graph helpers ---------------------------------------------------------------------------------

    def _topological_order(self) -> list[Resource]:
        order: list[Resource] = []
        state: dict[str, int] = {}

        def visit(resource: Resource, trail: tuple[str, ...]) -> None:
            if state.get(resource.address) == 2:
                return
            if state.get(resource.address) == 1:
                raise ProvisionError("dependency cycle: " + " -> ".join((*trail, resource.address)))
            state[resource.address] = 1
            for dep in resource.depends_on:
                visit(self.by_address[dep], (*trail, resource.address))
            state[resource.address] = 2
            order.append(resource)

        for resource in self.resources:
            visit(resource, ())
        return order

    def _dependants(self) -> dict[str, list[str]]:
        dependants: dict[str, list[str]] = {r.address: [] for r in self.resources}
        for resource in self.resources:
            for dep in resource.depends_on:
                dependants[dep].append(resource.address)
        return dependants

    def _emit(self, address: str, phase: Phase, action: str = "", message: str = "", started: float = 0.0) -> None:
        elapsed = time.monotonic() - started if started else 0.0
        self.on_event(Event(address, phase, action, message, elapsed))

    def _retrying(self, resource: Resource, action: str, started: float) -> Callable[[TemporaryError, float], None]:
        """`with_retry`'s callback: one RETRY event per retry, saying why and for how long; a routine wait (a new
        object settling) is shown as progress, as it is no fault."""

        def on_retry(error: TemporaryError, delay: float) -> None:
            if error.throttled:
                throttled()
            elapsed = time.monotonic() - started
            if error.routine:
                self.on_event(Event(resource.address, Phase.PROGRESS, action,
                                    f"{error.message}; checking again in {delay:.1f} s", elapsed))
                return
            self.on_event(Event(resource.address, Phase.RETRY, action, f"{error.message}; retrying in {delay:.1f} s",
                                elapsed, throttled=error.throttled))

        return on_retry

    def _context(self, resource: Resource, outputs: Mapping[str, Mapping[str, Any]], action: str = "") -> Context:
        started = time.monotonic()

        def report(address: str, message: str) -> None:
            self._emit(address, Phase.PROGRESS, action, message, started)

        return Context(resource.address, outputs, report)

    async def _run_graph(
        self,
        run: Callable[[Resource], Awaitable[None]],
        *,
        waits_on: Mapping[str, list[str]] | None = None,
    ) -> list[tuple[str, ProvisionError]]:
        """Run `run` for every resource once its prerequisites are done, at most the gate's window at once, the
        resource with the longest chain of work waiting on it first (the critical path is what bounds the run).

        By default a resource waits for its dependencies; destroy passes its own `waits_on` (dependants first).
        A failure skips everything that waits on it and is reported once.
        """
        if waits_on is None:
            waits_on = {r.address: list(r.depends_on) for r in self.resources}
        finished: dict[str, asyncio.Future[bool]] = {
            r.address: asyncio.get_running_loop().create_future() for r in self.resources
        }
        chain = _chain_lengths(waits_on)
        failures: list[tuple[str, ProvisionError]] = []

        async def node(resource: Resource) -> None:
            def settle(ok: bool) -> None:
                # a bug elsewhere may have cancelled the whole run: never mask it with InvalidStateError
                if not finished[resource.address].done():
                    finished[resource.address].set_result(ok)

            ok = all([await finished[other] for other in waits_on[resource.address]])
            if not ok:
                self._emit(resource.address, Phase.SKIPPED, message="a prerequisite failed")
                settle(False)
                return
            try:
                async with self.gate.slot(chain[resource.address]):
                    await run(resource)
            except ProvisionError as error:
                failures.append((resource.address, error))
                self._emit(resource.address, Phase.FAILED, message=error.message)
                settle(False)
            except BaseException:
                settle(False)
                raise
            else:
                self.gate.succeeded()
                settle(True)

        # started longest chain first: of the resources ready at once, those the critical path runs through get
        # the first slots (later ones queue by the same order)
        ready_first = sorted(self._order, key=lambda r: -chain[r.address])
        tasks = [asyncio.ensure_future(node(r)) for r in ready_first]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            # an unexpected error (a bug, an SDK exception nobody translated, Ctrl+C): stop the other branches
            # before the caller closes the session under them, and let them finish cancelling
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return failures

    # -- plan ------------------------------------------------------------------------------------------

    async def _read(self, resource: Resource, outputs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any] | None:
        ctx = self._context(resource, outputs, "read")
        self._emit(resource.address, Phase.READ, "read")
        return await with_retry(
            lambda: resource.read(ctx),
            what=f"reading {resource.label}",
            limit=resource.timeouts.read,
            on_retry=self._retrying(resource, "read", time.monotonic()),
        )

    def _step(self, resource: Resource, actual: dict[str, Any] | None, ctx: Context) -> Step:
        desired = resource.desired(ctx)
        life = resource.lifecycle(actual) if actual is not None else None
        if not resource.managed:
            if actual is None:
                return Step(
                    resource,
                    NoOp("not managed by this plan"),
                    None,
                    desired,
                    blocked=f"{resource.label} does not exist and the plan does not create it",
                )
            if life is not None and life.running:  # e.g. a group the plan builds in, being deleted
                return Step(resource, _wait(life, "" if life.operation == "delete" else "no-op"), actual, desired)
            return Step(resource, NoOp("not managed by this plan"), actual, desired)
        action = self._decide(resource, desired, actual, life)
        step = Step(resource, action, actual, desired)
        if actual is not None and not resource.owned(actual):
            if not self._adopts(resource.address):
                owner = resource.owner_of(actual)
                whose = f"belongs to {owner}, not to this plan" if owner else "carries no ownership tags of this plan"
                step.blocked = (f"{resource.label} exists but {whose}; take it over with "
                                f"`import PLAN {resource.address}` (or --adopt: everything)")
            elif isinstance(action, NoOp):
                # adopting means writing our ownership marks even when nothing else differs
                step.action = Update()
        return step

    @staticmethod
    def _decide(
        resource: Resource, desired: dict[str, Any], actual: dict[str, Any] | None, life: Lifecycle | None
    ) -> Action:
        """The diff, unless the service says an operation is still running (wait for it) or has failed (repair
        or replace: never "up to date")."""
        if life is not None and life.running:
            after = diff(desired, None if life.operation == "delete" else actual, resource.schema)
            return _wait(life, after.kind, after.changes)
        action = diff(desired, actual, resource.schema)
        if life is None:
            return action
        failure = f"its last operation failed: {life.error}"
        if isinstance(action, Replace):
            return Replace((*action.reasons, failure), changes=action.changes)
        if resource.repairable:
            return Repair(error=life.error, changes=action.changes)
        return Replace((failure,), changes=action.changes)

    @staticmethod
    def _planned_outputs(step: Step) -> dict[str, Any]:
        going = isinstance(step.action, Wait) and step.action.then == "create"  # being deleted: as if absent
        if step.actual is None or going:
            return step.resource.outputs(_MissingOutputs(step.desired))
        if isinstance(step.action, NoOp):
            return step.resource.outputs(step.actual)
        return step.resource.outputs(_MissingOutputs(_merge(step.actual, step.desired)))

    async def plan(self) -> Plan:
        """Read everything and compute each resource's action. Sends no write."""
        outputs: dict[str, dict[str, Any]] = {}
        steps: dict[str, Step] = {}

        async def run(resource: Resource) -> None:
            actual = await self._read(resource, outputs)
            step = self._step(resource, actual, self._context(resource, outputs))
            steps[resource.address] = step
            outputs[resource.address] = self._planned_outputs(step)

        failures = await self._run_graph(run)
        _raise_failures("planning", failures)
        ordered = [steps[r.address] for r in self._order]
        strays = await self._strays(ordered, outputs) if self.strays else []
        return Plan([*ordered, *strays], outputs)

    # -- apply -----------------------------------------------------------------------------------------

    async def apply(self, plan: Plan | None = None) -> Outcome:
        """Make the plan real. Resources whose planned action is a no-op, and whose dependencies changed
        nothing, are not read again. Every other resource is decided afresh, with its dependencies' real
        outputs, on the plan's read of it while the plan is fresh (and none of its dependencies was replaced,
        which may have taken it along), else on a new read."""
        plan = plan or await self.plan()
        if plan.blocked:
            raise ExecutionError("\n".join(step.blocked or "" for step in plan.blocked))
        planned = {step.resource.address: step for step in plan.steps}
        fresh = plan.fresh
        outputs: dict[str, dict[str, Any]] = {}
        changed: set[str] = set()
        replaced: set[str] = set()
        done: list[Step] = []

        async def run(resource: Resource) -> None:
            step = planned[resource.address]
            if isinstance(step.action, NoOp) and not (set(resource.depends_on) & changed):
                outputs[resource.address] = resource.outputs(step.actual or {})
                self._emit(resource.address, Phase.DONE, step.action.kind, step.action.reason)
                return
            known = step if fresh and not (set(resource.depends_on) & replaced) else None
            carried_out, actual = await self._converge(resource, outputs, known)
            outputs[resource.address] = resource.outputs(actual)
            if carried_out is None:
                return
            changed.add(resource.address)
            if isinstance(carried_out.action, Replace):
                replaced.add(resource.address)
            done.append(carried_out)

        failures = await self._run_graph(run)
        failures += await self._delete_strays(plan, done)
        _raise_failures("apply", failures)
        return Outcome(done, outputs)

    async def _converge(
        self, resource: Resource, outputs: Mapping[str, Mapping[str, Any]], known: Step | None = None
    ) -> tuple[Step | None, dict[str, Any]]:
        """Read, decide, act, until the object is as declared; returns the step carried out (None: it was up to
        date) and the object as it now is. `known`: the plan's step, whose read stands in for the first one.

        After waiting for an operation found running, and after a write failed temporarily (whose answer may
        have been lost after the service made the change), the object is read again and the action decided
        again: a retry never repeats a write blindly, and a create that someone else finished converges.
        """
        attempts: Attempts | None = None
        waited: Step | None = None
        while True:
            actual = known.actual if known is not None else await self._read(resource, outputs)
            known = None
            step = self._step(resource, actual, self._context(resource, outputs))
            if step.blocked:
                raise ProvisionError(step.blocked)
            action = step.action
            if isinstance(action, NoOp):
                if waited is None:
                    self._emit(resource.address, Phase.DONE, action.kind, action.reason)
                return waited, actual or {}
            if isinstance(action, Wait):
                await self._wait(resource, step, outputs)
                waited = step
                continue
            if attempts is None:
                verb = _VERBS.get(action.kind, action.kind)
                attempts = Attempts(f"{verb} {resource.label}", getattr(resource.timeouts, action.kind, 0.0)
                                    or resource.timeouts.update)
            try:
                return step, await asyncio.wait_for(self._perform(resource, step, outputs), attempts.remaining())
            except TimeoutError:
                raise attempts.timed_out() from None
            except TemporaryError as error:
                delay = attempts.delay_after(error)
                self._retrying(resource, action.kind, attempts.started)(error, delay)
                await idle(delay)

    async def _perform(
        self, resource: Resource, step: Step, outputs: Mapping[str, Mapping[str, Any]]
    ) -> dict[str, Any]:
        """One try of the step's write; the object as it is afterwards."""
        action = step.action
        ctx = self._context(resource, outputs, action.kind)
        started = time.monotonic()
        self._emit(resource.address, Phase.STARTED, action.kind)
        actual = step.actual
        if isinstance(action, Replace) and actual is not None:
            await resource.delete(ctx, actual)
            actual = None
        if actual is None:
            result = await resource.create(ctx, step.desired)
        elif isinstance(action, Repair):
            result = await resource.repair(ctx, step.desired, actual, Update(changes=action.changes))
        else:
            update = action if isinstance(action, Update) else Update(changes=action.changes)
            result = await resource.update(ctx, step.desired, actual, update)
        if result is None:
            result = await self._read_back(resource, outputs, action.kind)
        self._emit(resource.address, Phase.DONE, action.kind, started=started)
        return result

    async def _read_back(
        self, resource: Resource, outputs: Mapping[str, Mapping[str, Any]], kind: str
    ) -> dict[str, Any]:
        """The object after a write that answered without it. A directory may not show a new object at once
        (replication), so "not found" is retried here, never answered with a second create."""
        ctx = self._context(resource, outputs, "read")

        async def visible() -> dict[str, Any]:
            found = await resource.read(ctx)
            if found is None:
                raise TemporaryError(f"{resource.label} is not visible yet after {kind} (directory replication)")
            return found

        return await with_retry(visible, what=f"reading {resource.label} back", limit=resource.timeouts.read,
                                on_retry=self._retrying(resource, "read", time.monotonic()))

    async def _wait(self, resource: Resource, step: Step, outputs: Mapping[str, Mapping[str, Any]]) -> None:
        """Poll, on the long-running-operation schedule, until the operation found running has ended: the
        object is gone, or the service says it settled (succeeded or failed). Bounded by the time limit of the
        kind of operation that runs."""
        assert isinstance(step.action, Wait) and step.actual is not None
        life = resource.lifecycle(step.actual)
        operation = life.operation if life is not None else "update"
        limit = getattr(resource.timeouts, operation, resource.timeouts.update)
        state = step.action.state
        started = time.monotonic()
        self._emit(resource.address, Phase.STARTED, "wait", _describe_wait(step.action))
        reported = 0.0
        while True:
            elapsed = time.monotonic() - started
            if elapsed >= limit:
                raise OperationTimeout(f"waiting for {resource.label}: still {state} after {elapsed:.0f} s")
            await idle(poll_delay(elapsed))
            actual = await self._read(resource, outputs)
            now = resource.lifecycle(actual) if actual is not None else None
            if now is None or not now.running:
                break
            state = now.state.lower()
            if time.monotonic() - started - reported >= REPORT_EVERY:
                reported = time.monotonic() - started
                self._emit(resource.address, Phase.PROGRESS, "wait", f"still {state}", started)
        self._emit(resource.address, Phase.DONE, "wait", "gone" if actual is None else "finished", started)

    # -- destroy ---------------------------------------------------------------------------------------

    async def destroy_plan(self, only: Collection[str] | None = None) -> Plan:
        """Read everything; plan deletion of what exists and is owned by this plan (of `only` those addresses,
        when given: `--target`; the rest is read, as their reads may need it, and left alone)."""
        outputs: dict[str, dict[str, Any]] = {}
        steps: dict[str, Step] = {}

        async def run(resource: Resource) -> None:
            actual = await self._read(resource, outputs)
            if actual is None:
                action: Action = NoOp("already absent")
                outputs[resource.address] = resource.outputs(
                    _MissingOutputs(resource.desired(self._context(resource, outputs)))
                )
            else:
                outputs[resource.address] = resource.outputs(actual)
                kept = resource.kept_on_destroy(actual)
                if not resource.managed:
                    action = NoOp("not managed by this plan")
                elif only is not None and resource.address not in only:
                    action = NoOp("not targeted")
                elif kept:
                    action = NoOp(kept)
                elif not resource.owned(actual):
                    action = NoOp("not owned by this plan; left alone")
                elif (life := resource.lifecycle(actual)) is not None and life.running:
                    # an interrupted destroy's delete (or an interrupted apply's create) is still running
                    action = _wait(life, "" if life.operation == "delete" else "delete")
                else:
                    action = Delete()
            steps[resource.address] = Step(resource, action, actual)

        failures = await self._run_graph(run)
        _raise_failures("planning the destroy", failures)
        ordered = [steps[r.address] for r in reversed(self._order)]
        # the strays first: what holds them (an assignment's scope) is deleted after them
        strays = await self._strays(ordered, outputs) if self.strays and only is None else []
        plan = Plan([*strays, *ordered], outputs)
        await self.plan_covering(plan)
        return plan

    async def plan_covering(self, plan: Plan, known: Mapping[str, bool] | None = None) -> None:
        """Turn the deletes that a container's own delete makes unnecessary into `Delete(container=...)`.

        A resource that names a `deleted_with` container goes with it when the container is deleted too and
        `deletes_contents` says one delete takes everything inside (a resource group holding only the plan's
        resources): one long operation instead of one per level, and the container no longer waits for them.
        `known`: containers whose answer the caller has just read (not asked again).
        """
        steps = {step.resource.address: step for step in plan.steps}

        def deleting(address: str | None) -> bool:
            step = steps.get(address or "")
            return step is not None and (isinstance(step.action, Delete) or _deleting(step.action))

        def containers(resource: Resource) -> list[str]:
            """Enclosing containers being deleted, innermost first."""
            found, seen, current = [], set(), resource.deleted_with
            while current is not None and current in self.by_address and current not in seen:
                seen.add(current)
                if deleting(current):
                    found.append(current)
                current = self.by_address[current].deleted_with
            return found

        deleted = [step for step in plan.steps if isinstance(step.action, Delete) and step.actual is not None]
        enclosing = {step.resource.address: containers(step.resource) for step in deleted}
        known = known or {}
        candidates = sorted({c for found in enclosing.values() for c in found} - set(known))

        async def covers(address: str) -> bool:
            step = steps[address]
            ctx = self._context(step.resource, plan.outputs, "delete")
            return await with_retry(
                lambda: step.resource.deletes_contents(ctx, step.actual or {}),
                what=f"listing what {step.resource.label} holds",
                limit=step.resource.timeouts.read,
                on_retry=self._retrying(step.resource, "read", time.monotonic()),
            )

        asked = await asyncio.gather(*(covers(c) for c in candidates))
        answers = {**known, **dict(zip(candidates, asked, strict=True))}
        for step in deleted:
            outermost = [c for c in enclosing[step.resource.address] if answers.get(c)]
            if outermost:
                step.action = Delete(container=outermost[-1], changes=step.action.changes)
        if _has_cycle(self._destroy_waits(plan)):  # something outside the container sits between it and its contents
            for step in plan.steps:
                if isinstance(step.action, Delete) and step.action.container:
                    step.action = Delete(changes=step.action.changes)

    # -- strays: marked objects the plan no longer declares -------------------------------------------------

    async def _strays(self, steps: Sequence[Step], outputs: Mapping[str, Mapping[str, Any]]) -> list[Step]:
        """Delete steps for what the existing resources report as strays (`Resource.strays`), all asked at once
        once every resource is planned (so each sees every declared resource's outputs)."""

        async def ask(step: Step) -> Sequence[Stray] | ProvisionError:
            resource, actual = step.resource, step.actual or {}
            ctx = self._context(resource, outputs, "read")
            try:
                return await with_retry(
                    lambda: resource.strays(ctx, actual),
                    what=f"listing what {resource.label} holds that the plan no longer declares",
                    limit=resource.timeouts.read,
                    on_retry=self._retrying(resource, "read", time.monotonic()),
                )
            except ProvisionError as error:
                return error

        existing = [step for step in steps if step.actual is not None]
        answers = await asyncio.gather(*(ask(step) for step in existing))
        _raise_failures("planning", [(step.resource.address, answer) for step, answer in zip(existing, answers,
                                     strict=True) if isinstance(answer, ProvisionError)])
        found: list[Step] = []
        addresses = set(self.by_address)
        for answer in answers:
            for stray in answer if not isinstance(answer, ProvisionError) else ():
                if stray.resource.address in addresses:  # pragma: no cover - a target's bug
                    raise ProvisionError(f"{stray.resource.address}: a stray named like another resource")
                addresses.add(stray.resource.address)
                found.append(Step(stray.resource, Delete(reason="no longer in the plan"), stray.actual, stray=True))
        return found

    async def _delete_strays(self, plan: Plan, done: list[Step]) -> list[tuple[str, ProvisionError]]:
        """Delete the plan's strays, through the gate; the failures."""
        failures: list[tuple[str, ProvisionError]] = []

        async def delete(step: Step) -> None:
            try:
                async with self.gate.slot():
                    await self._delete(step.resource, step, plan.outputs)
            except ProvisionError as error:
                failures.append((step.resource.address, error))
                self._emit(step.resource.address, Phase.FAILED, message=error.message)
            else:
                done.append(step)

        strays = [step for step in plan.steps if step.stray and isinstance(step.action, Delete)]
        await asyncio.gather(*(delete(step) for step in strays))
        return failures

    def _destroy_waits(self, plan: Plan) -> dict[str, list[str]]:
        """Who waits for whom while destroying: each resource for its dependants, except that a container
        whose delete covers others waits not for them, and each covered resource waits for its container."""
        container = {
            step.resource.address: step.action.container
            for step in plan.steps
            if isinstance(step.action, Delete) and step.action.container
        }
        waits = {}
        for address, dependants in self._dependants().items():
            if address in container:
                waits[address] = [container[address]]
            else:
                waits[address] = [d for d in dependants if container.get(d) != address]
        return waits

    async def _delete(self, resource: Resource, step: Step, outputs: Mapping[str, Mapping[str, Any]]) -> None:
        """Delete until gone. After a temporary failure (of the delete, or of the wait that follows it, when the
        delete itself went through) the object is read again first: gone is done, a delete running is waited
        for, and only an object still there is deleted again."""
        ctx = self._context(resource, outputs, "delete")
        attempts = Attempts(f"deleting {resource.label}", resource.timeouts.delete)
        self._emit(resource.address, Phase.STARTED, "delete")
        actual = step.actual or {}
        while True:
            try:
                await asyncio.wait_for(resource.delete(ctx, actual), attempts.remaining())
                break
            except TimeoutError:
                raise attempts.timed_out() from None
            except TemporaryError as error:
                delay = attempts.delay_after(error)
                self._retrying(resource, "delete", attempts.started)(error, delay)
                await idle(delay)
            current = await self._read(resource, outputs)
            life = resource.lifecycle(current) if current is not None else None
            if current is not None and life is not None and life.running:
                await self._wait(resource, Step(resource, _wait(life, ""), current), outputs)
                current = await self._read(resource, outputs)
            if current is None:
                break
            actual = current
        self._emit(resource.address, Phase.DONE, "delete", started=attempts.started)

    async def destroy(self, plan: Plan | None = None) -> Outcome:
        """Delete, in reverse dependency order, what `destroy_plan` marked."""
        plan = plan or await self.destroy_plan()
        planned = {step.resource.address: step for step in plan.steps}
        done: list[Step] = []

        async def run(resource: Resource) -> None:
            step = planned[resource.address]
            if isinstance(step.action, Wait):
                await self._wait(resource, step, plan.outputs)
                actual = await self._read(resource, plan.outputs)
                if actual is None:  # the delete that was running took it
                    done.append(step)
                    return
                step = Step(resource, Delete(), actual)  # it settled: delete it ourselves
            actual = step.actual
            if not isinstance(step.action, Delete) or actual is None:
                return
            if step.action.container:  # its container's delete, done by now, took it along
                done.append(step)
                self._emit(resource.address, Phase.DONE, "delete", f"with {step.action.container}")
                return
            await self._delete(resource, step, plan.outputs)
            done.append(step)

        _raise_failures("destroy", await self._delete_strays(plan, done))
        failures = await self._run_graph(run, waits_on=self._destroy_waits(plan))
        _raise_failures("destroy", failures)
        return Outcome(done, {})


def _wait(life: Lifecycle, then: str, changes: tuple[FieldChange, ...] = ()) -> Wait:
    return Wait(state=life.state.lower(), since=life.since, then=then, changes=changes)


def _deleting(action: Action) -> bool:
    """A wait for a delete already running (nothing is to follow it)."""
    return isinstance(action, Wait) and action.then in ("", "create")


def _describe_wait(action: Wait) -> str:
    """`(creating, started 2m 10s ago)`, as the plan shows it."""
    started = f", started {format_age(time.time() - action.since)} ago" if action.since is not None else ""
    return f"({action.state}{started})"


def _chain_lengths(waits_on: Mapping[str, list[str]]) -> dict[str, int]:
    """For each node, the number of nodes on the longest chain that starts at it and runs through what waits on
    it (1: nothing waits on it)."""
    waited_by: dict[str, list[str]] = {node: [] for node in waits_on}
    for node, prerequisites in waits_on.items():
        for prerequisite in prerequisites:
            waited_by.setdefault(prerequisite, []).append(node)
    lengths: dict[str, int] = {}

    def length(node: str) -> int:
        if node not in lengths:
            lengths[node] = 0  # a cycle (never in a valid graph) counts once instead of recursing forever
            lengths[node] = 1 + max((length(after) for after in waited_by[node]), default=0)
        return lengths[node]

    for node in waited_by:
        length(node)
    return lengths


def _has_cycle(waits: Mapping[str, list[str]]) -> bool:
    state: dict[str, int] = {}

    def visit(node: str) -> bool:
        if state.get(node) == 1:
            return True
        if state.get(node) == 2:
            return False
        state[node] = 1
        if any(visit(other) for other in waits.get(node, ())):
            return True
        state[node] = 2
        return False

    return any(visit(node) for node in waits)


def _raise_failures(what: str, failures: list[tuple[str, ProvisionError]]) -> None:
    if not failures:
        return
    lines = [f"{what} failed for {len(failures)} resource(s):"]
    hints = []
    for address, error in failures:
        lines.append(f"  {address}: {error.message}")
        if error.hint:
            hints.append(error.hint)
    raise ExecutionError("\n".join(lines), hint="; ".join(hints) or None)


__all__ = ["Create", "Engine", "ExecutionError", "Outcome", "Plan", "Step", "Wait"]
