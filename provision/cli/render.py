"""Rendering of plans and engine events: rich for people, JSON for machines."""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:  # the engine (and asyncio) load only when a command runs: `provision --help` stays fast
    from provision.core import Event, Plan, Step

SYMBOLS = {"create": ("+", "green"), "update": ("~", "yellow"), "replace": ("-/+", "red"),
           "delete": ("-", "red"), "no-op": ("=", "dim")}

# no markup: resource addresses such as `azure.role_assignment[alice:Owner]` look like rich tags;
# soft wrap: CI logs are read as lines, not as an 80-column screen
console = Console(highlight=False, markup=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, markup=False, soft_wrap=True)


def _value(value: Any) -> str:
    from provision.core.diff import UNKNOWN

    if value is UNKNOWN:
        return "(known after apply)"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_value(v)}" for k, v in value.items()) + "}"
    # plan files are YAML: show true/false/null as written there, not Python's True/False/None
    return json.dumps(value) if isinstance(value, str | bool) or value is None else str(value)


def summary(plan: Plan, *, destroy: bool = False) -> str:
    counts = plan.counts()
    if destroy:
        return f"Destroy: {counts.get('delete', 0)} to delete, {counts.get('no-op', 0)} left alone."
    return (
        f"Plan: {counts.get('create', 0)} to create, {counts.get('update', 0)} to update, "
        f"{counts.get('replace', 0)} to replace, {counts.get('no-op', 0)} unchanged."
    )


def _step_lines(step: Step) -> Text:
    symbol, style = SYMBOLS[step.action.kind]
    text = Text()
    text.append(f"  {symbol:>3} ", style=style)
    text.append(step.resource.label, style="bold")
    reason = getattr(step.action, "reason", "")
    text.append(f"  {step.action.kind}" + (f" ({reason})" if reason else ""), style=style)
    for reason_line in getattr(step.action, "reasons", ()):
        text.append(f"\n        # {reason_line}", style="red")
    for change in step.action.changes:
        if step.action.kind == "create":
            text.append(f"\n        {change.path} = {_value(change.after)}")
        else:
            text.append(f"\n        {change.path}: {_value(change.before)} -> {_value(change.after)}")
    if step.blocked:
        text.append(f"\n        ! {step.blocked}", style="bold red")
    return text


def print_plan(plan: Plan, *, title: str, destroy: bool = False) -> None:
    console.print(title, style="bold")
    if not plan.steps:
        console.print("  (the plan declares no resources)")
    for step in plan.steps:
        console.print(_step_lines(step))
    console.print()
    if not plan.has_changes and not plan.blocked:
        console.print("No changes. The live state matches the plan." if not destroy else "Nothing to destroy.")
    else:
        console.print(summary(plan, destroy=destroy), style="bold")
    if plan.blocked:
        blocked = len(plan.blocked)
        console.print(f"Blocked: {blocked} resource(s) marked ! must be fixed first; nothing will be changed.",
                      style="bold red")


def plan_document(plan: Plan, *, source: str, destroy: bool = False) -> dict[str, Any]:
    return {
        "plan": source,
        "changes": plan.has_changes,
        "summary": plan.counts(),
        "blocked": [step.blocked for step in plan.blocked],
        "steps": [step.as_dict() for step in plan.steps],
        "destroy": destroy,
    }


def print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
    sys.stdout.flush()


class Progress:
    """Shows each step's state; on a terminal a live table, otherwise one line per event (CI logs)."""

    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled
        self.started = time.monotonic()
        self.rows: dict[str, tuple[str, str, float, str]] = {}
        self.live: Live | None = None
        self.interactive = enabled and err_console.is_terminal

    def __enter__(self) -> Progress:
        if self.interactive:
            # the table is rebuilt on every refresh (4 per second), so a long wait's elapsed time keeps counting
            # between the engine's events (a progress event comes only every few seconds)
            self.live = Live(console=err_console, refresh_per_second=4, transient=False, get_renderable=self._table)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.refresh()
            self.live.__exit__(None, None, None)

    def __call__(self, event: Event) -> None:
        if not self.enabled or event.phase == "read":
            return
        _, previous_action, began, _ = self.rows.get(event.address, ("", "", time.monotonic(), ""))
        if event.phase == "started":
            began = time.monotonic()
        # the engine's failed/skipped events carry no action: keep the one the resource was doing
        action = event.action or previous_action
        self.rows[event.address] = (event.phase.value, action, began, event.message)
        if self.live is not None:
            self.live.refresh()
        elif event.phase != "done" or action != "no-op":
            clock = time.monotonic() - self.started
            detail = f" {event.message}" if event.message else ""
            waited = f" ({event.elapsed:.1f}s)" if event.elapsed >= 1 else ""
            doing = f"{action} " if action else ""
            err_console.print(f"[{clock:6.1f}s] {event.address}: {doing}{event.phase.value}{waited}{detail}")

    def _table(self) -> Table:
        table = Table(show_header=True, header_style="bold", box=None)
        for column in ("resource", "action", "state", "elapsed", "detail"):
            table.add_column(column)
        now = time.monotonic()
        for address, (phase, action, began, message) in self.rows.items():
            running = phase in ("started", "progress", "retry")
            elapsed = f"{now - began:.0f}s" if running else ""
            style = {"failed": "red", "done": "green", "skipped": "yellow"}.get(phase, "")
            table.add_row(address, action, Text(phase, style=style), elapsed, message)
        return table
