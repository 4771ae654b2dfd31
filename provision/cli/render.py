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

from provision.core.commands import Applied, Checks, Report
from provision.core.events import BulkProgress

if TYPE_CHECKING:  # the engine (and asyncio) load only when a command runs: `provision --help` stays fast
    from datetime import datetime

    from rich.progress import Progress as RichProgress
    from rich.progress import TaskID

    from provision.core import Event, Plan, Step
    from provision.core.events import Record
    from provision.core.gc import GcResult
    from provision.core.target import OhifResult

SYMBOLS = {"create": ("+", "green"), "update": ("~", "yellow"), "replace": ("-/+", "red"),
           "repair": ("!~", "red"), "wait": ("...", "cyan"), "delete": ("-", "red"), "no-op": ("=", "dim")}

#: the width of tables when the output is not a terminal (a CI log, a pipe): long names are not cut at 80
LOG_WIDTH = 240


def _console(*, stderr: bool = False) -> Console:
    """No markup: resource addresses such as `azure.role_assignment[alice:Owner]` look like rich tags;
    soft wrap and a wide table width off a terminal: CI logs are read as lines, not as an 80-column screen."""
    made = Console(stderr=stderr, highlight=False, markup=False, soft_wrap=True)
    if not made.is_terminal:
        made.width = LOG_WIDTH
    return made


console = _console()
err_console = _console(stderr=True)


def _value(value: Any) -> str:
    from provision.core.values import UNKNOWN

    if value is UNKNOWN:
        return "(known after apply)"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_value(v)}" for k, v in value.items()) + "}"
    # plan files are YAML: show true/false/null as written there, not Python's True/False/None
    return json.dumps(value) if isinstance(value, str | bool) or value is None else str(value)


def _unfinished(counts: dict[str, int]) -> str:
    """The plan's waits and repairs, when there are any (operations the service has not finished, or failed)."""
    parts = [f"{counts[kind]} {what}" for kind, what in (("wait", "to wait for"), ("repair", "to repair"))
             if counts.get(kind)]
    return "".join(f", {part}" for part in parts)


def summary(plan: Plan, *, destroy: bool = False) -> str:
    counts = plan.counts()
    if destroy:
        covered = sum(1 for step in plan.steps if getattr(step.action, "container", None))
        along = f" ({covered} along with their container, so {counts.get('delete', 0) - covered} deletes sent)" \
            if covered else ""
        return (f"Destroy: {counts.get('delete', 0)} to delete{along}{_unfinished(counts)}, "
                f"{counts.get('no-op', 0)} left alone.")
    # deletes appear in an apply plan only for what the plan no longer declares (a revoked role assignment)
    deletes = f", {counts['delete']} to delete" if counts.get("delete") else ""
    return (
        f"Plan: {counts.get('create', 0)} to create, {counts.get('update', 0)} to update, "
        f"{counts.get('replace', 0)} to replace{deletes}{_unfinished(counts)}, {counts.get('no-op', 0)} unchanged."
    )


def _multiline(value: Any) -> bool:
    return isinstance(value, str) and "\n" in value.rstrip("\n")


def _diff_lines(before: Any, after: Any) -> list[tuple[str, str]]:
    """A unified diff (one line of context) of two texts, as (line, style) pairs, without the file headers."""
    import difflib

    old = before.splitlines() if isinstance(before, str) else []
    new = after.splitlines() if isinstance(after, str) else []
    lines = list(difflib.unified_diff(old, new, "live", "plan", lineterm="", n=1))[2:]
    return [(line, {"+": "green", "-": "red", "@": "cyan"}.get(line[:1], "")) for line in lines]


def describe(action: Any) -> str:
    """What goes in brackets after the action's name: why, or what the service is doing."""
    from provision.core import Repair, Wait

    if isinstance(action, Wait):
        since = f", started {_ago(action.since)}" if action.since is not None else ""
        then = f"; then {action.then}" if action.then and action.then != "no-op" else ""
        return f"{action.state}{since}{then}"
    if isinstance(action, Repair):
        return f"its last operation failed: {action.error}"
    container = getattr(action, "container", None)
    return getattr(action, "reason", "") or (f"with {container}" if container else "")


def _ago(moment: float) -> str:
    from provision.core.durations import format_age

    return f"{format_age(time.time() - moment)} ago"


def _step_lines(step: Step) -> Text:
    symbol, style = SYMBOLS[step.action.kind]
    text = Text()
    text.append(f"  {symbol:>3} ", style=style)
    # the address, as progress lines and --target name it; a target's own name for it alongside
    address, label = step.resource.address, step.resource.label
    text.append(address, style="bold")
    if label.startswith(address):  # a label that adds to the address ("orthanc.ohif_build (DIR)")
        text.append(label.removeprefix(address))
    else:
        text.append(f" ({label})", style="dim")
    reason = describe(step.action)
    text.append(f"  {step.action.kind}" + (f" ({reason})" if reason else ""), style=style)
    for reason_line in getattr(step.action, "reasons", ()):
        text.append(f"\n        # {reason_line}", style="red")
    created = step.action.kind == "create" or getattr(step.action, "then", "") == "create"
    for change in step.action.changes:
        before = step.resource.shown(change.path, change.before)
        after = step.resource.shown(change.path, change.after)
        if created:
            shown = f"({len(after.splitlines())} lines)" if _multiline(after) else _value(after)
            text.append(f"\n        {change.path} = {shown}")
        elif _multiline(change.before) or _multiline(change.after):
            # a text file: the changed lines, not two whole files
            text.append(f"\n        {change.path}:")
            for line, style in _diff_lines(change.before, change.after):
                text.append(f"\n          {line}", style=style)
        else:
            text.append(f"\n        {change.path}: {_value(before)} -> {_value(after)}")
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


def print_json(document: Any, *, one_line: bool = False) -> None:
    sys.stdout.write(json.dumps(document, indent=None if one_line else 2, default=str) + "\n")
    sys.stdout.flush()


def print_record(record: Record, *, text: bool) -> None:
    """One streamed item: its line for people, or one JSON line (JSON Lines) for machines."""
    if text:
        console.print(record.text)
    else:
        sys.stdout.write(json.dumps(record.document, default=str) + "\n")
        sys.stdout.flush()


#: without a terminal, a bulk transfer prints one line per this many finished files (and at every stage change)
BULK_LINE_EVERY = 500


def _megabytes(count: int) -> str:
    return f"{count / 1e6:.1f}"


class _BulkDisplay:
    """A bulk transfer's progress: a rich progress bar on a terminal (files, MB, items/s, ETA), else a plain
    line every `BULK_LINE_EVERY` files, at every stage change and at the end."""

    def __init__(self, interactive: bool, started: float) -> None:
        self.interactive = interactive
        self.started = started
        self.bar: RichProgress | None = None
        self.task: TaskID | None = None
        self.stage = ""
        self.stage_started = time.monotonic()
        self.last_line_at = -1

    def rate(self, event: BulkProgress) -> str:
        elapsed = time.monotonic() - self.stage_started
        if not event.transferred or elapsed <= 0:
            return ""
        return f"{event.transferred / elapsed:.0f} instances/s"

    def __call__(self, event: BulkProgress) -> None:
        if event.stage != self.stage:
            self.stage, self.stage_started = event.stage, time.monotonic()
            self.last_line_at = -1
        if self.interactive:
            self._bar(event)
        else:
            self._line(event)

    def _bar(self, event: BulkProgress) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        if self.bar is None:
            self.bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                TextColumn("{task.completed}/{task.total} {task.fields[unit]}"),
                                TextColumn("{task.fields[size]}"), TextColumn("{task.fields[rate]}"),
                                TimeRemainingColumn(), TextColumn("{task.fields[counts]}"),
                                console=err_console, transient=False)
            self.bar.start()
            self.task = self.bar.add_task(event.stage, total=None, unit=event.unit, size="", rate="", counts="")
        assert self.task is not None
        size = f"{_megabytes(event.bytes_done)}/{_megabytes(event.bytes_total)} MB" if event.bytes_total else ""
        counts = ", ".join(f"{n} {name}" for name, n in event.counts.items() if n)
        self.bar.update(self.task, description=f"{event.operation}: {event.stage}", completed=event.done,
                        total=event.total, unit=event.unit, size=size, rate=self.rate(event), counts=counts)
        if event.finished:
            self.close()

    def _line(self, event: BulkProgress) -> None:
        due = self.last_line_at < 0 or event.done - self.last_line_at >= BULK_LINE_EVERY or event.finished
        if not due:
            return
        self.last_line_at = event.done
        clock = time.monotonic() - self.started
        of = f"/{event.total}" if event.total is not None else ""
        size = f", {_megabytes(event.bytes_done)}/{_megabytes(event.bytes_total)} MB" if event.bytes_total else ""
        rate = self.rate(event)
        counts = ", ".join(f"{name} {n}" for name, n in event.counts.items() if n)
        detail = "".join([f", {rate}" if rate else "", f"; {counts}" if counts else ""])
        err_console.print(f"[{clock:6.1f}s] {event.operation}: {event.stage} {event.done}{of} {event.unit}{size}"
                          f"{detail}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


class Progress:
    """Shows each step's state; on a terminal a live table, otherwise one line per event (CI logs).

    `lazy`: the live table starts with the first event worth showing (a command may print and ask first)."""

    def __init__(self, *, enabled: bool = True, lazy: bool = False) -> None:
        self.enabled = enabled
        self.lazy = lazy
        self.started = time.monotonic()
        self.rows: dict[str, tuple[str, str, float, str]] = {}
        self.live: Live | None = None
        self.interactive = enabled and err_console.is_terminal
        self.bulk: _BulkDisplay | None = None

    def _start_live(self) -> None:
        # the table is rebuilt on every refresh (4 per second), so a long wait's elapsed time keeps counting
        # between the engine's events (a progress event comes only every few seconds)
        self.live = Live(console=err_console, refresh_per_second=4, transient=False, get_renderable=self._table)
        self.live.__enter__()

    def __enter__(self) -> Progress:
        if self.interactive and not self.lazy:
            self._start_live()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bulk is not None:
            self.bulk.close()
        if self.live is not None:
            self.live.refresh()
            self.live.__exit__(None, None, None)

    def __call__(self, event: Event | BulkProgress) -> None:
        if not self.enabled:
            return
        if isinstance(event, BulkProgress):
            if self.bulk is None:
                # one live display at a time: a bulk transfer shown next to a live table prints lines instead
                self.bulk = _BulkDisplay(self.interactive and self.live is None, self.started)
            self.bulk(event)
            return
        if event.phase == "read":
            return
        if self.interactive and self.live is None:
            self._start_live()
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


def print_ohif(result: OhifResult) -> None:
    """The OHIF configuration for people: where the viewer signs in and which DICOMweb roots it reads."""
    document = result.document
    console.print(f"viewer: {result.viewer_url or '(ohif.viewer_url not set)'}", style="bold")
    for oidc in document.get("oidc") or []:
        console.print(f"  sign-in: {oidc.get('authority')} client {oidc.get('client_id')}")
    if not document.get("oidc"):
        console.print("  sign-in: none")
    for source in document.get("dataSources") or []:
        configuration = source.get("configuration") or {}
        console.print(f"  data source {source.get('sourceName')} ({configuration.get('friendlyName')}): "
                      f"{configuration.get('qidoRoot')}")
    for note in result.notes:
        console.print(note)


# --- results of extra commands ------------------------------------------------------------------------------


def print_checks(checks: Checks) -> None:
    """A table of every check, then each failure's fix on its own line (readable in an 80-column CI log)."""
    table = Table(show_lines=False, expand=False)
    for column in ("check", "subject", "result", "detail"):
        table.add_column(column, overflow="fold")
    for check in checks.checks:
        result = Text("PASS", style="green") if check.ok else Text("FAIL", style="bold red")
        table.add_row(check.area, check.subject, result, check.detail)
    console.print(table)
    failed = checks.failed
    for check in failed:
        console.print(f"FAIL {check.area} {check.subject}: {check.fix or check.detail}")
    console.print(f"{len(checks.checks) - len(failed)} passed, {len(failed)} failed.",
                  style="bold red" if failed else "bold green")


def render_result(result: object, *, text: bool, source: str, detailed_exitcode: bool = False,
                  json_lines: bool = False) -> int:
    """Show a command's result (a table, a summary, or JSON) and return its exit code. `json_lines`: the command
    streamed records as JSON lines, so its closing document is one line too."""
    if isinstance(result, Checks):
        print_checks(result) if text else print_json(result.document())
        return 0 if result.ok else 1
    if isinstance(result, Applied):
        document = plan_document(result.plan, source=source)
        if result.outcome is None:  # a dry run
            if not text:
                print_json(document)
            if result.plan.blocked:
                return 1
            return 2 if detailed_exitcode and result.plan.has_changes else 0
        if text:
            console.print(result.summary or "Applied.", style="bold green")
        else:
            print_json({**document, "applied": [step.as_dict() for step in result.outcome.done], **result.details})
        return 0
    if isinstance(result, Report):
        if text:
            for line in result.lines():
                console.print(line)
        else:
            print_json(result.document(), one_line=json_lines)
        return 0 if result.ok else 1
    raise TypeError(f"no way to show a {type(result).__name__}")  # pragma: no cover - a command's bug


# --- provision gc ------------------------------------------------------------------------------------------


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "unknown"


def gc_document(result: GcResult, *, older_than: float, env_prefix: str | None, plan: str | None) -> dict[str, Any]:
    """The `--output json` document."""
    reports = {report.key: report for report in result.reports or []}
    environments = []
    for environment in result.selection.selected:
        key = environment.key
        entry: dict[str, Any] = {
            "cloud": key.cloud, "scope": key.scope, "plan": key.plan, "env": key.env,
            "created": environment.created.isoformat().replace("+00:00", "Z") if environment.created else None,
            "age_seconds": round(environment.age(result.now) or 0, 3),
            "resources": [item.as_dict() for item in environment.resources],
        }
        report = reports.get(key)
        entry.update(report.as_dict() if report is not None else {"status": "would delete"})
        environments.append(entry)
    return {
        "dry_run": result.reports is None,
        "older_than_seconds": older_than,
        "env_prefix": env_prefix,
        "plan": plan,
        "now": result.now.isoformat().replace("+00:00", "Z"),
        "searched": result.searched,
        "environments": environments,
        "skipped": [
            {"cloud": e.key.cloud, "scope": e.key.scope, "plan": e.key.plan, "env": e.key.env, "reason": reason}
            for e, reason in result.selection.skipped
        ],
        "failed": len(result.failed),
        "throttled_retries": result.throttled,
        "other_retries": result.retried,
        "seconds": round(result.seconds, 3),
    }


def _table(result: GcResult, *, with_outcome: bool) -> Table:
    from provision.core.durations import format_age

    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for column in ("cloud", "plan", "env", "age", "created", "resources"):
        table.add_column(column)
    if with_outcome:
        table.add_column("result")
    reports = {report.key: report for report in result.reports or []}
    for environment in result.selection.selected:
        key = environment.key
        row = [key.cloud, key.plan, key.env, format_age(environment.age(result.now)), _when(environment.created),
               environment.summary()]
        cells: list[Any] = list(row)
        if with_outcome:
            report = reports.get(key)
            if report is None:
                cells.append("")
            elif report.status == "failed":
                cells.append(Text(f"failed: {report.error}", style="red"))
            else:
                kept = f"; kept {'; '.join(report.kept)}" if report.kept else ""
                cells.append(Text(f"deleted {report.deleted} in {report.seconds:.1f}s{kept}", style="green"))
        table.add_row(*cells)
    return table


def gc_heading(result: GcResult, older_than: str, env_prefix: str | None, plan: str | None) -> str:
    places = ", ".join(f"{p['cloud']} {p['scope']}" for p in result.searched)
    filters = "".join([f", env prefix {env_prefix}" if env_prefix else "", f", plan {plan}" if plan else ""])
    return f"Environments older than {older_than}{filters} in {places}:"


def print_gc(result: GcResult, *, older_than: str, env_prefix: str | None, plan: str | None) -> None:
    selected = result.selection.selected
    younger = len(result.selection.skipped)
    if result.reports is None:
        console.print(gc_heading(result, older_than, env_prefix, plan), style="bold")
        if selected:
            console.print(_table(result, with_outcome=False))
            count = sum(len(e.resources) for e in selected)
            narrowed = env_prefix or plan
            how = "--yes" if narrowed else "--yes and --env-prefix PREFIX (or --plan NAME, or --all-environments)"
            console.print(f"Dry run: {len(selected)} environment(s) ({count} resources) would be deleted. "
                          f"Re-run with {how} to delete them.", style="bold")
        else:
            console.print("  none")
    else:
        if selected:
            console.print(_table(result, with_outcome=True))
        else:
            console.print(gc_heading(result, older_than, env_prefix, plan), style="bold")
            console.print("  none")
        deleted = sum(r.deleted for r in result.reports)
        done = len(result.reports) - len(result.failed)
        console.print(
            f"Deleted {done} environment(s) ({deleted} resources) in {result.seconds:.1f} s; "
            f"{len(result.failed)} failed; {result.throttled} throttled request(s) retried.",
            style="bold red" if result.failed else "bold green",
        )
    if younger:
        console.print(f"{younger} other environment(s) left alone (younger than {older_than}, or of unknown age).")
