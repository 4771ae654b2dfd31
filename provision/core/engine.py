"""Plan, apply and destroy a graph of resources, running independent branches concurrently."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from provision.core.actions import Action, Create, Delete, NoOp, Replace, Update
from provision.core.diff import UNKNOWN, diff
from provision.core.events import Event, EventSink, Phase, ignore
from provision.core.resource import Context, Resource
from provision.core.retry import with_retry
from provision.errors import ProvisionError


@dataclass
class Step:
    """One resource's planned action, with what was read and what is wanted."""

    resource: Resource
    action: Action
    actual: dict[str, Any] | None = None
    desired: dict[str, Any] = field(default_factory=dict)
    #: why this step cannot go ahead (e.g. an existing resource not owned by the plan)
    blocked: str | None = None

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
        concurrency: int = 8,
        on_event: EventSink = ignore,
        adopt: bool = False,
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
        self.on_event = on_event
        self.adopt = adopt

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

    def _context(self, resource: Resource, outputs: Mapping[str, Mapping[str, Any]], action: str = "") -> Context:
        started = time.monotonic()

        def report(address: str, message: str) -> None:
            self._emit(address, Phase.PROGRESS, action, message, started)

        return Context(resource.address, outputs, report)

    async def _run_graph(
        self,
        run: Callable[[Resource], Awaitable[None]],
        *,
        reverse: bool = False,
    ) -> list[tuple[str, ProvisionError]]:
        """Run `run` for every resource once its prerequisites are done, at most `concurrency` at once.

        Forward: a resource waits for its dependencies. Reverse (destroy): it waits for its dependants.
        A failure skips everything that waits on it and is reported once.
        """
        waits_on = self._dependants() if reverse else {r.address: list(r.depends_on) for r in self.resources}
        finished: dict[str, asyncio.Future[bool]] = {
            r.address: asyncio.get_running_loop().create_future() for r in self.resources
        }
        gate = asyncio.Semaphore(self.concurrency)
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
                async with gate:
                    await run(resource)
            except ProvisionError as error:
                failures.append((resource.address, error))
                self._emit(resource.address, Phase.FAILED, message=error.message)
                settle(False)
            except BaseException:
                settle(False)
                raise
            else:
                settle(True)

        tasks = [asyncio.ensure_future(node(r)) for r in self._order]
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
        started = time.monotonic()
        self._emit(resource.address, Phase.READ, "read")

        def on_retry(message: str, _delay: float) -> None:
            self._emit(resource.address, Phase.RETRY, "read", message, started)

        return await with_retry(
            lambda: resource.read(ctx),
            what=f"reading {resource.label}",
            limit=resource.timeouts.read,
            on_retry=on_retry,
        )

    def _step(self, resource: Resource, actual: dict[str, Any] | None, ctx: Context) -> Step:
        desired = resource.desired(ctx)
        if not resource.managed:
            if actual is None:
                return Step(
                    resource,
                    NoOp("not managed by this plan"),
                    None,
                    desired,
                    blocked=f"{resource.label} does not exist and the plan does not create it",
                )
            return Step(resource, NoOp("not managed by this plan"), actual, desired)
        action = diff(desired, actual, resource.schema)
        step = Step(resource, action, actual, desired)
        if actual is not None and not resource.owned(actual):
            if not self.adopt:
                step.blocked = (
                    f"{resource.label} exists but does not carry this plan's ownership tags; "
                    "re-run with --adopt to take it over"
                )
            elif isinstance(action, NoOp):
                # adopting means writing our ownership marks even when nothing else differs
                step.action = Update()
        return step

    @staticmethod
    def _planned_outputs(step: Step) -> dict[str, Any]:
        if step.actual is None:
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
        return Plan([steps[r.address] for r in self._order], outputs)

    # -- apply -----------------------------------------------------------------------------------------

    async def apply(self, plan: Plan | None = None) -> Outcome:
        """Make the plan real. Resources whose planned action is a no-op, and whose dependencies
        changed nothing, are not read again; every resource that changes is re-read first."""
        plan = plan or await self.plan()
        if plan.blocked:
            raise ExecutionError("\n".join(step.blocked or "" for step in plan.blocked))
        planned = {step.resource.address: step for step in plan.steps}
        outputs: dict[str, dict[str, Any]] = {}
        changed: set[str] = set()
        done: list[Step] = []

        async def run(resource: Resource) -> None:
            step = planned[resource.address]
            reuse = isinstance(step.action, NoOp) and not (set(resource.depends_on) & changed)
            if not reuse:
                actual = await self._read(resource, outputs)
                step = self._step(resource, actual, self._context(resource, outputs))
                if step.blocked:
                    raise ProvisionError(step.blocked)
            if isinstance(step.action, NoOp):
                outputs[resource.address] = resource.outputs(step.actual or {})
                self._emit(resource.address, Phase.DONE, step.action.kind, step.action.reason)
                return
            after = await self._perform(resource, step, outputs)
            changed.add(resource.address)
            done.append(step)
            outputs[resource.address] = resource.outputs(after)

        failures = await self._run_graph(run)
        _raise_failures("apply", failures)
        return Outcome(done, outputs)

    async def _perform(
        self, resource: Resource, step: Step, outputs: Mapping[str, Mapping[str, Any]]
    ) -> dict[str, Any]:
        action = step.action
        ctx = self._context(resource, outputs, action.kind)
        started = time.monotonic()
        self._emit(resource.address, Phase.STARTED, action.kind)

        def on_retry(message: str, _delay: float) -> None:
            self._emit(resource.address, Phase.RETRY, action.kind, message, started)

        async def attempt(operation: Callable[[], Awaitable[Any]], verb: str, limit: float) -> Any:
            return await with_retry(operation, what=f"{verb} {resource.label}", limit=limit, on_retry=on_retry)

        actual = step.actual
        if isinstance(action, Replace) and actual is not None:
            doomed = actual
            await attempt(lambda: resource.delete(ctx, doomed), "deleting", resource.timeouts.delete)
            actual = None
        if actual is None:
            result = await attempt(lambda: resource.create(ctx, step.desired), "creating", resource.timeouts.create)
        else:
            current = actual
            update = action if isinstance(action, Update) else Update(changes=action.changes)
            result = await attempt(
                lambda: resource.update(ctx, step.desired, current, update), "updating", resource.timeouts.update
            )
        if result is None:
            result = await self._read(resource, outputs)
            if result is None:
                raise ProvisionError(f"{resource.label}: not found right after {action.kind}")
        self._emit(resource.address, Phase.DONE, action.kind, started=started)
        return result

    # -- destroy ---------------------------------------------------------------------------------------

    async def destroy_plan(self) -> Plan:
        """Read everything; plan deletion of what exists and is owned by this plan."""
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
                elif kept:
                    action = NoOp(kept)
                elif not resource.owned(actual):
                    action = NoOp("not owned by this plan; left alone")
                else:
                    action = Delete()
            steps[resource.address] = Step(resource, action, actual)

        failures = await self._run_graph(run)
        _raise_failures("planning the destroy", failures)
        return Plan([steps[r.address] for r in reversed(self._order)], outputs)

    async def destroy(self, plan: Plan | None = None) -> Outcome:
        """Delete, in reverse dependency order, what `destroy_plan` marked."""
        plan = plan or await self.destroy_plan()
        planned = {step.resource.address: step for step in plan.steps}
        done: list[Step] = []

        async def run(resource: Resource) -> None:
            step = planned[resource.address]
            actual = step.actual
            if not isinstance(step.action, Delete) or actual is None:
                return
            ctx = self._context(resource, plan.outputs, "delete")
            started = time.monotonic()
            self._emit(resource.address, Phase.STARTED, "delete")

            def on_retry(message: str, _delay: float) -> None:
                self._emit(resource.address, Phase.RETRY, "delete", message, started)

            await with_retry(
                lambda: resource.delete(ctx, actual),
                what=f"deleting {resource.label}",
                limit=resource.timeouts.delete,
                on_retry=on_retry,
            )
            done.append(step)
            self._emit(resource.address, Phase.DONE, "delete", started=started)

        failures = await self._run_graph(run, reverse=True)
        _raise_failures("destroy", failures)
        return Outcome(done, {})


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


__all__ = ["Create", "Engine", "ExecutionError", "Outcome", "Plan", "Step"]
