"""`plan | apply | destroy | output` and the extra commands of one target, built once for every target.

Everything here is shared by the targets: loading the plan, finding the sandbox, the one show/confirm flow
(`confirm`), progress, rendering, exit codes. A target contributes only what `provision.core.target.Target`
says. Cloud SDKs and the engine are imported only when a command runs, so `provision --help` stays fast.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import sys
import typing
from collections.abc import Awaitable, Callable, Collection, Iterator, Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.text import Text

from provision.cli.render import (
    Progress,
    console,
    err_console,
    plan_document,
    print_json,
    print_ohif,
    print_plan,
    print_record,
    render_result,
)
from provision.core.commands import Argument, Command, CommandCall, Option, PlanUse
from provision.core.defaults import DEFAULT_CONCURRENCY
from provision.core.events import CommandEvent, Record
from provision.core.target import Connection, SandboxEndpoints, Target, TargetSession
from provision.errors import ConfigurationError, PlanError, ProvisionError

if TYPE_CHECKING:
    from provision.core import Engine, Event, Outcome
    from provision.core.engine import Plan as EnginePlan
    from provision.core.saved import SavedPlan
    from provision.plan import Plan
    from provision.sandbox import SandboxInfo

T = TypeVar("T")


class OutputFormat(StrEnum):
    text = "text"
    json = "json"


PlanArg = Annotated[Path, typer.Argument(help="Plan file (YAML).", show_default=False)]
SandboxOpt = Annotated[
    bool,
    typer.Option(
        "--sandbox",
        help="Run against the local sandbox instead of the cloud: starts it in the background on a stable port "
        "(state in .provision/sandbox/) or reuses it; `provision sandbox down` stops it.",
    ),
]
CaBundleOpt = Annotated[
    Path | None, typer.Option("--ca-bundle", help="Extra CA bundle to trust (TLS-inspecting proxies).")
]
OutputOpt = Annotated[OutputFormat, typer.Option("--output", "-o", help="text for people, json for machines.")]
AdoptOpt = Annotated[
    bool, typer.Option("--adopt", help="Take over existing resources that carry no ownership tags of this plan.")
]
ConcurrencyOpt = Annotated[int, typer.Option(
    "--concurrency", min=1, max=64,
    help="Operations in flight at most; fewer while the service throttles (halved per 429, regained per success).")]
AutoApproveOpt = Annotated[bool, typer.Option("--auto-approve", help="Do not ask for confirmation.")]
OutDirOpt = Annotated[Path, typer.Option("--out", help="Directory for ohif.json and app-config.js "
                                                      "(default: provision-out/TARGET).")]
DetailedExitcodeOpt = Annotated[
    bool, typer.Option("--detailed-exitcode", help="Exit 0 when nothing would change, 2 when something would.")
]

TargetOpt = Annotated[
    list[str] | None,
    typer.Option("--target", metavar="ADDRESS", show_default=False,
                 help="Only this resource and what it needs (destroy: and what needs it); repeatable."),
]
SaveOpt = Annotated[
    Path | None,
    typer.Option("--save", metavar="FILE", help="Save the plan: `apply FILE` then does exactly it, or refuses "
                                                 "if anything changed since.", show_default=False),
]

SANDBOX_STATE = Path(".provision/sandbox")


#: `provision -v`: errors show what the SDK or service said in full (set once, by the root command)
VERBOSE = {"on": False}


def fail(error: ProvisionError) -> typer.Exit:
    err_console.print(Text("Error: ", style="bold red") + Text(error.message))
    if error.hint:
        err_console.print(f"  hint: {error.hint}")
    if error.details and VERBOSE["on"]:
        err_console.print(Text(error.details, style="dim"))
    elif error.details:
        err_console.print("  (the full answer: run with `provision -v ...`)", style="dim")
    return typer.Exit(error.exit_code)


@contextlib.contextmanager
def user_errors(*, json_output: bool = False) -> Iterator[None]:
    """Turn a ProvisionError into a message and an exit code; never a traceback. With `json_output` the error
    is also a JSON document on stdout (`{"error": {...}, "diagnostics": [{file, line, column, path, message}]}`),
    so a pipe into jq sees it."""
    try:
        yield
    except ProvisionError as error:
        if json_output:
            print_json(error.document())
        raise fail(error) from None
    except KeyboardInterrupt:
        err_console.print("Interrupted.")
        raise typer.Exit(130) from None


@contextlib.contextmanager
def sandbox_info(local: bool) -> Iterator[SandboxInfo | None]:
    """The sandbox to talk to: the persistent local one (--sandbox, started or reused), the one
    PROVISION_SANDBOX describes, or none (the real cloud)."""
    pointer = os.environ.get("PROVISION_SANDBOX")
    if local and pointer:
        raise ConfigurationError(
            f"--sandbox and PROVISION_SANDBOX={pointer} both name a sandbox",
            hint="drop --sandbox to use the one PROVISION_SANDBOX describes, or unset PROVISION_SANDBOX",
        )
    if local:
        from provision.sandbox.background import start

        running = start(SANDBOX_STATE)
        if running.started:
            err_console.print(f"Started the local sandbox at {running.info.url} (state {SANDBOX_STATE}/; "
                              "`provision sandbox down` stops it).")
        yield running.info
        return
    if pointer:
        from provision.sandbox import SandboxInfo

        try:
            info = SandboxInfo.load(Path(pointer))
        except (ProvisionError, OSError, ValueError, KeyError) as error:
            reason = error.message if isinstance(error, ProvisionError) else str(error)
            raise ConfigurationError(
                f"PROVISION_SANDBOX={pointer}: cannot read the sandbox description ({reason})",
                hint="start one with `provision sandbox serve --state DIR` and point at DIR/sandbox.json",
            ) from None
        _check_listening(pointer, info.url)
        yield info
        return
    yield None


def _check_listening(pointer: str, url: str) -> None:
    """Fail at once, with the fix, when the sandbox that sandbox.json describes is no longer running: otherwise
    every request would be retried as a connection failure until its time limit (minutes)."""
    import socket
    from urllib.parse import urlsplit

    address = urlsplit(url)
    try:
        with socket.create_connection((address.hostname or "127.0.0.1", address.port or 443), timeout=5):
            pass
    except OSError as error:
        raise ConfigurationError(
            f"PROVISION_SANDBOX={pointer}: no sandbox answers at {url} ({error.strerror or error})",
            hint="start it again with `provision sandbox serve --state DIR` (its world is kept), "
            "or unset PROVISION_SANDBOX",
        ) from None


def connection_of(info: SandboxInfo | None, ca_bundle: Path | None = None) -> Connection:
    """What targets get to know of the sandbox: plain data (no target imports the sandbox)."""
    if info is None:
        return Connection(ca_bundle=ca_bundle)
    from provision.sandbox.gcp.oauth import adc_info

    endpoints = SandboxEndpoints(
        url=info.url, ca_bundle=Path(info.ca_bundle), tenant_id=info.tenant_id,
        subscription_id=info.subscription_id, client_id=info.client_id, client_secret=info.client_secret,
        gcp_project=info.gcp_project, google_adc=adc_info(info),
    )
    return Connection(sandbox=endpoints, ca_bundle=ca_bundle)


def load(plan_path: Path, section: str | None = None) -> Plan:
    """The plan file, validated; with `section`, one that declares that target's section."""
    from provision.plan import load_plan

    plan = load_plan(plan_path)
    if section is not None and plan.section(section) is None:
        raise PlanError(f"{plan_path}: the plan has no `{section}:` section", hint="see `provision schema`")
    return plan


def run_async(coro: Awaitable[T]) -> T:
    import asyncio

    return asyncio.run(coro)  # type: ignore[arg-type]


def _json_needs_auto_approve(text: bool, auto_approve: bool, *, dry_run_allowed: bool = False) -> None:
    """JSON output has no one to ask: it must be told to go ahead."""
    if not text and not auto_approve:
        or_dry_run = " (or --dry-run)" if dry_run_allowed else ""
        raise ConfigurationError(f"--output json needs --auto-approve{or_dry_run}", hint="pass --auto-approve")


def ask(question: str, auto_approve: bool) -> None:
    """Ask on the terminal; refuse without one unless told to go ahead."""
    if auto_approve:
        return
    if not sys.stdin.isatty():
        raise ConfigurationError(
            "refusing to change anything without confirmation: there is no terminal to ask",
            hint="pass --auto-approve",
        )
    if not typer.confirm(question, default=False):
        err_console.print("Nothing changed.")
        raise typer.Exit(1)


def make_confirm(*, text: bool, auto_approve: bool, dry_run: bool = False,
                 destroy: bool = False) -> Callable[[EnginePlan, str, str], Awaitable[bool]]:
    """The one show/confirm flow of every command that changes something: show what will change, refuse a
    blocked plan, ask before any write (or take --auto-approve). False: a dry run, change nothing."""

    async def confirm(planned: EnginePlan, title: str, question: str) -> bool:
        import asyncio

        if text:
            print_plan(planned, title=title, destroy=destroy)
        if dry_run:
            return False
        if planned.blocked:
            raise ProvisionError("the plan is blocked; nothing was changed")
        if planned.has_changes:
            # in a thread: the terminal is read without blocking the event loop
            await asyncio.to_thread(ask, question, auto_approve or not text)
        return True

    return confirm


# --- plan / apply / destroy / output ------------------------------------------------------------------------


def make_target_app(target: Target) -> typer.Typer:
    """A typer sub-app whose commands drive `target.open_session` (SDKs load only when a command runs)."""
    app = typer.Typer(help=target.summary, no_args_is_help=True)
    name = target.name

    async def with_session(plan: Plan, connection: Connection, work: Callable[[TargetSession], Awaitable[T]]) -> T:
        session = await target.open_session(plan, connection)
        try:
            return await work(session)
        finally:
            await session.aclose()

    def engine_for(session: TargetSession, concurrency: int, adopt: bool | Collection[str] = False,
                   progress: Callable[[Event], None] | None = None, *, targets: Sequence[str] = (),
                   destroy: bool = False) -> Engine:
        from provision.core import Engine
        from provision.core.events import ignore
        from provision.core.selection import select

        # destroy reads everything (a resource's read may need what it depends on) and deletes only the targets
        resources = select(session.resources, targets) if targets and not destroy else session.resources
        return Engine(resources, concurrency=concurrency, on_event=progress or ignore, adopt=adopt,
                      strays=not targets)

    def destroy_only(session: TargetSession, targets: Sequence[str]) -> frozenset[str] | None:
        """What `destroy --target` deletes: the targets and what depends on them (None: everything)."""
        from provision.core.selection import select

        return frozenset(r.address for r in select(session.resources, targets, destroy=True)) if targets else None

    def title(verb: str, plan_file: Path, plan: Plan) -> str:
        return f"{name} {verb} for {plan_file} (environment {plan.env})"

    @app.command("plan")
    def plan_command(
        plan_file: PlanArg,
        sandbox: SandboxOpt = False,
        ca_bundle: CaBundleOpt = None,
        output: OutputOpt = OutputFormat.text,
        adopt: AdoptOpt = False,
        concurrency: ConcurrencyOpt = DEFAULT_CONCURRENCY,
        detailed_exitcode: DetailedExitcodeOpt = False,
        target_addresses: TargetOpt = None,
        destroy: Annotated[bool, typer.Option("--destroy", help="Plan a destroy instead (with --save: "
                                                                "`apply FILE` destroys).")] = False,
        save: SaveOpt = None,
    ) -> None:
        """Read what exists and show what apply would change. Changes nothing (--save writes only FILE)."""
        targets = tuple(target_addresses or ())
        with user_errors(json_output=output is OutputFormat.json), sandbox_info(sandbox) as info:
            plan = load(plan_file, name)
            if save is not None and save.resolve() == plan_file.resolve():
                raise ConfigurationError(f"--save {save}: that is the plan file", hint="save to another file")

            async def work(session: TargetSession) -> EnginePlan:
                engine = engine_for(session, concurrency, adopt, targets=targets, destroy=destroy)
                return await (engine.destroy_plan(destroy_only(session, targets)) if destroy else engine.plan())

            result = run_async(with_session(plan, connection_of(info, ca_bundle), work))
            if output is OutputFormat.json:
                print_json(plan_document(result, source=str(plan_file), destroy=destroy))
            else:
                print_plan(result, title=title("destroy plan" if destroy else "plan", plan_file, plan),
                           destroy=destroy)
            if result.blocked:
                raise typer.Exit(1)
            if save is not None:
                from provision.core import saved

                saved.write(save, saved.record(result, target=name, plan_file=plan_file,
                                               plan_text=plan_file.read_text(encoding="utf-8"), env=plan.env,
                                               destroy=destroy, adopt=adopt, targets=targets))
                if output is OutputFormat.text:
                    verb = "destroy" if destroy else "apply"
                    console.print(f"Saved the plan to {save}: `provision {name} apply {save}` will {verb} "
                                  "exactly this, or refuse if anything changed.")
            if detailed_exitcode and result.has_changes:
                raise typer.Exit(2)

    @app.command("apply")
    def apply_command(
        plan_file: Annotated[Path, typer.Argument(help="Plan file (YAML), or a plan saved with `plan --save`.",
                                                  show_default=False)],
        sandbox: SandboxOpt = False,
        ca_bundle: CaBundleOpt = None,
        output: OutputOpt = OutputFormat.text,
        adopt: AdoptOpt = False,
        concurrency: ConcurrencyOpt = DEFAULT_CONCURRENCY,
        auto_approve: AutoApproveOpt = False,
        out: OutDirOpt = Path("provision-out") / name,
        target_addresses: TargetOpt = None,
    ) -> None:
        """Show the plan, ask, make it real, then write the OHIF configuration to --out. Given a saved plan,
        apply exactly it (no question: it was reviewed when saved), or refuse if anything changed since."""
        text = output is OutputFormat.text
        with user_errors(json_output=not text), sandbox_info(sandbox) as info:
            saved_plan = _saved_plan(plan_file, name, adopt=adopt, targets=target_addresses)
            source = Path(saved_plan.plan_file) if saved_plan is not None else plan_file
            plan = load(source, name)
            targets = saved_plan.targets if saved_plan is not None else tuple(target_addresses or ())
            adopting = saved_plan.adopt if saved_plan is not None else adopt
            if saved_plan is not None:
                _check_saved_source(saved_plan, source, plan)
            else:
                _json_needs_auto_approve(text, auto_approve)
            confirm = make_confirm(text=text, auto_approve=auto_approve or saved_plan is not None)
            destroying = saved_plan is not None and saved_plan.destroy

            async def work(session: TargetSession) -> dict[str, Any]:
                engine = engine_for(session, concurrency, adopting, targets=targets, destroy=destroying)
                planned = await (engine.destroy_plan(destroy_only(session, targets)) if destroying
                                 else engine.plan())
                if saved_plan is not None:
                    _refuse_if_changed(saved_plan, planned, plan_file)
                await confirm(planned, title("destroy" if destroying else "plan", source, plan),
                              "Destroy these resources?" if destroying else "Apply these changes?")
                with Progress(enabled=text) as progress:
                    run = engine_for(session, concurrency, adopting, progress, targets=targets, destroy=destroying)
                    if destroying:
                        outcome = await run.destroy(planned)
                        return _destroyed(outcome, planned, text=text, source=str(source))
                    outcome = await run.apply(planned)
                return _finish(session, outcome, planned, out, text=text, source=str(source), partial=bool(targets))

            document = run_async(with_session(plan, connection_of(info, ca_bundle), work))
            if not text:
                print_json(document)

    @app.command("destroy")
    def destroy_command(
        plan_file: PlanArg,
        sandbox: SandboxOpt = False,
        ca_bundle: CaBundleOpt = None,
        output: OutputOpt = OutputFormat.text,
        concurrency: ConcurrencyOpt = DEFAULT_CONCURRENCY,
        auto_approve: AutoApproveOpt = False,
        target_addresses: TargetOpt = None,
    ) -> None:
        """Delete, in reverse order, what this plan owns; leave everything else alone."""
        text = output is OutputFormat.text
        targets = tuple(target_addresses or ())
        with user_errors(json_output=not text), sandbox_info(sandbox) as info:
            plan = load(plan_file, name)
            _json_needs_auto_approve(text, auto_approve)
            confirm = make_confirm(text=text, auto_approve=auto_approve, destroy=True)

            async def work(session: TargetSession) -> dict[str, Any]:
                engine = engine_for(session, concurrency, targets=targets, destroy=True)
                planned = await engine.destroy_plan(destroy_only(session, targets))
                await confirm(planned, title("destroy", plan_file, plan), "Destroy these resources?")
                with Progress(enabled=text) as progress:
                    outcome = await engine_for(session, concurrency, progress=progress, targets=targets,
                                               destroy=True).destroy(planned)
                return _destroyed(outcome, planned, text=text, source=str(plan_file))

            document = run_async(with_session(plan, connection_of(info, ca_bundle), work))
            if not text:
                print_json(document)

    @app.command("import")
    def import_command(
        plan_file: PlanArg,
        addresses: Annotated[list[str], typer.Argument(metavar="ADDRESS...", show_default=False,
                                                       help="The resources to take over, as `plan` names them.")],
        sandbox: SandboxOpt = False,
        ca_bundle: CaBundleOpt = None,
        output: OutputOpt = OutputFormat.text,
        concurrency: ConcurrencyOpt = DEFAULT_CONCURRENCY,
        auto_approve: AutoApproveOpt = False,
    ) -> None:
        """Take over existing resources that carry no ownership marks of this plan, one by one (`--adopt` takes
        over all): mark them as the plan's and bring them to the plan. Nothing else is changed."""
        text = output is OutputFormat.text
        with user_errors(json_output=not text), sandbox_info(sandbox) as info:
            plan = load(plan_file, name)
            _json_needs_auto_approve(text, auto_approve)
            confirm = make_confirm(text=text, auto_approve=auto_approve)
            wanted = frozenset(addresses)

            async def work(session: TargetSession) -> dict[str, Any]:
                planned = await engine_for(session, concurrency, wanted, targets=addresses).plan()
                missing = [s.resource.address for s in planned.steps
                           if s.resource.address in wanted and s.actual is None]
                if missing:
                    raise ConfigurationError(f"{missing[0]} does not exist: there is nothing to import",
                                             hint=f"`provision {name} apply {plan_file}` creates it")
                await confirm(planned, title("import", plan_file, plan), "Take these resources over?")
                with Progress(enabled=text) as progress:
                    outcome = await engine_for(session, concurrency, wanted, progress, targets=addresses).apply(planned)
                return _finish(session, outcome, planned, Path("provision-out") / name, text=text,
                               source=str(plan_file), partial=True)

            document = run_async(with_session(plan, connection_of(info, ca_bundle), work))
            if not text:
                print_json(document)

    @app.command("output")
    def output_command(
        plan_file: PlanArg,
        sandbox: SandboxOpt = False,
        ca_bundle: CaBundleOpt = None,
        out: Annotated[Path | None, typer.Option("--out", help="Also write ohif.json and app-config.js here.")] = None,
        output: Annotated[OutputFormat, typer.Option(
            "--output", "-o", help="json: the ohif.json document (for machines); text: a summary for people.")
        ] = OutputFormat.json,
    ) -> None:
        """Print the OHIF configuration (ohif.json) from the live state. Changes nothing in the cloud."""
        with user_errors(json_output=output is OutputFormat.json), sandbox_info(sandbox) as info:
            plan = load(plan_file, name)

            async def work(session: TargetSession) -> Any:
                planned = await engine_for(session, 8).plan()
                if planned.has_changes:
                    raise ProvisionError(
                        "the live state does not match the plan, so its OHIF configuration would be wrong",
                        hint=f"run `provision {name} plan {plan_file}` to see the differences, then apply",
                    )
                return session.ohif(planned.outputs)

            result = run_async(with_session(plan, connection_of(info, ca_bundle), work))
            if result is None:
                raise fail(ProvisionError("the plan declares nothing the viewer connects to"))
            if out is not None:
                from provision.ohif.config import write_outputs

                write_outputs(out, result.document, viewer_url=result.viewer_url, config=result.app_config)
            if output is OutputFormat.json:
                print_json(result.document)
            else:
                print_ohif(result)

    mount_commands(app, target)
    return app


def mount_commands(app: typer.Typer, target: Target) -> None:
    """A target's extra commands under its sub-app; a name with a space (`"shares list"`) is a command of a
    group (`provision orthanc shares list`), one group per first word."""
    groups: dict[str, list[tuple[str, Command]]] = {}
    for command in target.commands():
        group, _, name = command.name.rpartition(" ")
        if group:
            groups.setdefault(group, []).append((name, command))
        else:
            app.command(command.name)(command_function(target, command))
    for group, members in groups.items():
        names = ", ".join(name for name, _ in members)
        sub_app = typer.Typer(help=f"Commands on {group}: {names}.", no_args_is_help=True)
        for name, command in members:
            sub_app.command(name)(command_function(target, command))
        app.add_typer(sub_app, name=group)


#: how "Apply complete" names what was done
PAST = {"create": "created", "update": "updated", "replace": "replaced", "repair": "repaired",
        "wait": "waited for (finished by an operation already running)", "delete": "deleted"}


def _finish(session: TargetSession, outcome: Outcome, planned: EnginePlan, out: Path, *, text: bool,
            source: str, partial: bool = False) -> dict[str, Any]:
    """After apply: write the OHIF files and report what was done. A partial apply (--target, import) writes
    no OHIF files: what it did not read is not known, and a half-known configuration would be wrong."""
    from provision.ohif.config import write_outputs

    result = None if partial else session.ohif(outcome.outputs)
    written: list[str] = []
    if result is not None:
        written = [str(p) for p in write_outputs(out, result.document, viewer_url=result.viewer_url,
                                                 config=result.app_config)]
    if text:
        # counted as the plan the user approved named them: an IAM policy planned as a create (its dataset did
        # not exist yet) is found, once the dataset exists, as an empty policy to update; it is one step
        approved = {step.resource.address: step.action.kind for step in planned.steps}
        counts: dict[str, int] = {}
        for step in outcome.done:
            kind = approved.get(step.resource.address, step.action.kind)
            counts[kind] = counts.get(kind, 0) + 1
        done = ", ".join(f"{n} {PAST.get(kind, kind)}" for kind, n in sorted(counts.items())) or "no changes"
        console.print(f"Apply complete: {done}.", style="bold green")
        for path in written:
            console.print(f"  wrote {path}")
        if partial:
            console.print("  Part of the plan only: the OHIF configuration is written by a full apply.")
        for note in result.notes if result is not None else []:
            console.print(note)
    return {
        **plan_document(planned, source=source),
        "applied": [step.as_dict() for step in outcome.done],
        "files": written,
        "ohif": result.document if result is not None else None,
        "notes": result.notes if result is not None else [],
    }


def _destroyed(outcome: Outcome, planned: EnginePlan, *, text: bool, source: str) -> dict[str, Any]:
    if text:
        console.print(f"Destroy complete: {len(outcome.done)} deleted.", style="bold")
    return {**plan_document(planned, source=source, destroy=True), "deleted": len(outcome.done)}


# --- saved plans ----------------------------------------------------------------------------------------------


def _saved_plan(path: Path, target: str, *, adopt: bool, targets: list[str] | None) -> SavedPlan | None:
    """The saved plan `apply` was given, or None for a plan file."""
    from provision.core import saved

    if not saved.is_saved_plan(path):
        return None
    loaded = saved.load(path)
    if loaded.target != target:
        raise ConfigurationError(f"{path}: a plan saved for `provision {loaded.target}`, not {target}",
                                 hint=f"provision {loaded.target} apply {path}")
    if adopt or targets:
        raise ConfigurationError(f"{path}: a saved plan is applied as it was saved; --adopt and --target belong "
                                 "to the `plan --save` that made it", hint="plan --save again with them")
    return loaded


def _check_saved_source(saved_plan: SavedPlan, source: Path, plan: Plan) -> None:
    """Refuse, before any call, a saved plan whose plan file or environment changed since."""
    from provision.core import saved

    if saved.digest(source.read_text(encoding="utf-8")) != saved_plan.plan_digest:
        raise ConfigurationError(f"{source} changed since the plan was saved ({saved_plan.created}); nothing "
                                 "was changed", hint="run `plan --save` again and review it")
    if plan.env != saved_plan.env:
        raise ConfigurationError(f"the plan was saved for environment {saved_plan.env}, this run is {plan.env}; "
                                 "nothing was changed", hint="run with the same environment variables, or "
                                 "`plan --save` again")


def _refuse_if_changed(saved_plan: SavedPlan, planned: EnginePlan, path: Path) -> None:
    from provision.core import saved

    lines = saved.differences(saved_plan, planned)
    if lines:
        listed = "\n".join(f"  {line}" for line in lines)
        raise ProvisionError(f"{path}: the live state is not what it was when the plan was saved "
                             f"({saved_plan.created}); nothing was changed:\n{listed}",
                             hint="run `plan --save` again and review it")


# --- extra commands, from their description as data ---------------------------------------------------------


def option_parameters(function: Callable[..., Any]) -> list[inspect.Parameter]:
    """The keyword-only `Annotated[T, Option(...)]` and `Annotated[T, Argument(...)]` parameters of `function`,
    as typer parameters (arguments first, in their order).

    Each annotation is evaluated on its own in the function's module, so its other annotations may name
    types that module imports only for type checking."""
    arguments, options = [], []
    for parameter in inspect.signature(function).parameters.values():
        if parameter.kind is not inspect.Parameter.KEYWORD_ONLY:
            continue
        annotation = parameter.annotation
        if isinstance(annotation, str):
            annotation = eval(annotation, function.__globals__)
        base, *metadata = typing.get_args(annotation)
        argument = next((m for m in metadata if isinstance(m, Argument)), None)
        if argument is not None:
            info: Any = typer.Argument(help=argument.help, metavar=argument.metavar, show_default=False)
            arguments.append(inspect.Parameter(parameter.name, inspect.Parameter.KEYWORD_ONLY,
                                               default=parameter.default, annotation=Annotated[base, info]))
            continue
        option = next((m for m in metadata if isinstance(m, Option)), None)
        if option is None:
            raise TypeError(f"{function.__qualname__}: parameter {parameter.name} is not Annotated[..., Option()] "
                            "or Annotated[..., Argument()]")
        flags = option.flags or (f"--{parameter.name.replace('_', '-')}",)
        info = typer.Option(*flags, help=option.help, metavar=option.metavar, envvar=option.envvar,
                            min=option.minimum, max=option.maximum, show_default=parameter.default not in (None, False))
        options.append(inspect.Parameter(parameter.name, inspect.Parameter.KEYWORD_ONLY,
                                         default=parameter.default, annotation=Annotated[base, info]))
    return [*arguments, *options]


def build_function(name: str, doc: str | None, parameters: list[inspect.Parameter],
                   body: Callable[[dict[str, Any]], None]) -> Callable[..., None]:
    """A function typer can read (signature and annotations as data) that calls `body(values)`."""

    def command(**values: Any) -> None:
        body(values)

    command.__name__ = name.replace("-", "_").replace(" ", "_")
    command.__doc__ = doc
    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    return command


#: the parameters `command_function` adds itself (never passed to the command)
_SHARED_NAMES = frozenset({"plan_file", "dry_run", "detailed_exitcode", "auto_approve", "sandbox", "ca_bundle",
                           "output"})


def _keyword(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def command_function(target: Target, command: Command) -> Callable[..., None]:
    """The typer command for one of a target's extra commands: its own options, the shared ones (plan file,
    --sandbox, --ca-bundle, --output) and, for one that confirms, --auto-approve, --dry-run and
    --detailed-exitcode. The result is rendered by `render_result`."""
    own = option_parameters(command.run)
    shared: list[inspect.Parameter] = []
    if command.plan is PlanUse.REQUIRED:
        shared.append(_keyword("plan_file", PlanArg, inspect.Parameter.empty))
    elif command.plan is PlanUse.OPTIONAL:
        shared.append(_keyword("plan_file", Annotated[Path | None, typer.Argument(
            help=f"Plan file: use its {target.name} section. Omit to use the flags.", show_default=False)], None))
    # positional arguments follow the plan file
    shared += [p for p in own if p.default is inspect.Parameter.empty]
    own = [p for p in own if p.default is not inspect.Parameter.empty]
    if command.confirms:
        shared += [
            _keyword("dry_run", Annotated[bool, typer.Option("--dry-run", help="Show the differences and change "
                                                                              "nothing.")], False),
            _keyword("detailed_exitcode", Annotated[bool, typer.Option(
                "--detailed-exitcode", help="With --dry-run: exit 0 when nothing would change, 2 when something "
                "would.")], False),
            _keyword("auto_approve", AutoApproveOpt, False),
        ]
    shared += [_keyword("sandbox", SandboxOpt, False), _keyword("ca_bundle", CaBundleOpt, None),
               _keyword("output", OutputOpt, OutputFormat.text)]
    own_names = {p.name for p in own} | {p.name for p in shared if p.name != "plan_file"} - _SHARED_NAMES

    def body(values: dict[str, Any]) -> None:
        text = values["output"] is OutputFormat.text
        plan_file: Path | None = values.get("plan_file")
        dry_run = bool(values.get("dry_run"))
        with user_errors(json_output=not text):
            if command.confirms and not dry_run:
                _json_needs_auto_approve(text, bool(values.get("auto_approve")), dry_run_allowed=True)
            plan = load(plan_file, target.name) if plan_file is not None else None
            streamed: list[Record] = []
            with sandbox_info(values["sandbox"]) as info, Progress(enabled=text, lazy=True) as progress:

                def on_event(event: CommandEvent) -> None:
                    if isinstance(event, Record):
                        streamed[:1] = [event]
                        print_record(event, text=text)
                    else:
                        progress(event)

                call = CommandCall(
                    plan=plan, source=str(plan_file) if plan_file is not None else "command line",
                    connection=connection_of(info, values["ca_bundle"]), on_event=on_event,
                    confirm=make_confirm(text=text, auto_approve=bool(values.get("auto_approve")), dry_run=dry_run),
                )
                result = run_async(command.run(call, **{k: v for k, v in values.items() if k in own_names}))
            code = render_result(result, text=text, source=call.source,
                                 detailed_exitcode=bool(values.get("detailed_exitcode")), json_lines=bool(streamed))
        if code:
            raise typer.Exit(code)

    return build_function(command.name, inspect.getdoc(command.run), [*shared, *own], body)
