"""`plan | apply | destroy | output` for one target, built once and shared by every target sub-app."""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.text import Text

from provision.cli.render import Progress, console, err_console, plan_document, print_json, print_plan
from provision.errors import ConfigurationError, PlanError, ProvisionError

T = TypeVar("T")


class OutputFormat(StrEnum):
    text = "text"
    json = "json"


PlanArg = Annotated[Path, typer.Argument(help="Plan file (YAML).", show_default=False)]
SandboxOpt = Annotated[
    bool,
    typer.Option(
        "--sandbox",
        help="Run against an embedded local sandbox (state kept in .provision/sandbox/) instead of the cloud.",
    ),
]
CaBundleOpt = Annotated[
    Path | None, typer.Option("--ca-bundle", help="Extra CA bundle to trust (TLS-inspecting proxies).")
]
OutputOpt = Annotated[OutputFormat, typer.Option("--output", "-o", help="text for people, json for machines.")]
AdoptOpt = Annotated[
    bool, typer.Option("--adopt", help="Take over existing resources that carry no ownership tags of this plan.")
]
ConcurrencyOpt = Annotated[int, typer.Option("--concurrency", min=1, max=64, help="Operations in flight at once.")]
AutoApproveOpt = Annotated[bool, typer.Option("--auto-approve", help="Do not ask for confirmation.")]
OutDirOpt = Annotated[Path, typer.Option("--out", help="Directory for ohif.json and app-config.js.")]

SANDBOX_STATE = Path(".provision/sandbox")


def fail(error: ProvisionError) -> typer.Exit:
    err_console.print(Text("Error: ", style="bold red") + Text(error.message))
    if error.hint:
        err_console.print(f"  hint: {error.hint}")
    return typer.Exit(error.exit_code)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn a ProvisionError into a message and an exit code; never a traceback."""
    try:
        yield
    except ProvisionError as error:
        raise fail(error) from None
    except KeyboardInterrupt:
        err_console.print("Interrupted.")
        raise typer.Exit(130) from None


@contextlib.contextmanager
def sandbox_info(embedded: bool) -> Iterator[Any]:
    """The sandbox to talk to: embedded (--sandbox), a running one (PROVISION_SANDBOX), or none."""
    if embedded:
        from provision.sandbox import start_sandbox

        with start_sandbox(SANDBOX_STATE) as running:
            yield running.info
        return
    pointer = os.environ.get("PROVISION_SANDBOX")
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


def load(plan_path: Path, section: str) -> Any:
    from provision.plan import load_plan

    plan = load_plan(plan_path)
    if getattr(plan, section, None) is None:
        raise PlanError(f"{plan_path}: the plan has no `{section}:` section", hint="see `provision schema`")
    return plan


def _run(coro: Awaitable[T]) -> T:
    import asyncio

    return asyncio.run(coro)  # type: ignore[arg-type]


async def _in_thread(function: Callable[..., Any], *args: Any) -> Any:
    """Ask on the terminal without blocking the event loop (and without importing asyncio at start-up)."""
    import asyncio

    return await asyncio.to_thread(function, *args)


def _json_needs_auto_approve(text: bool, auto_approve: bool) -> None:
    """JSON output has no one to ask: it must be told to go ahead."""
    if not text and not auto_approve:
        raise ConfigurationError("--output json needs --auto-approve", hint="pass --auto-approve")


async def _show_and_confirm(
    planned: Any, *, text: bool, auto_approve: bool, question: str, title: str, destroy: bool = False
) -> None:
    """Show what will change, refuse a blocked plan, and ask before any write."""
    if text:
        print_plan(planned, title=title, destroy=destroy)
    if planned.blocked:
        raise ProvisionError("the plan is blocked; nothing was changed")
    if planned.has_changes:
        await _in_thread(_confirm, question, auto_approve or not text)


def _confirm(question: str, auto_approve: bool) -> None:
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


def make_target_app(name: str, module: str, help_text: str) -> typer.Typer:
    """A typer sub-app whose commands drive `module.open_session` (imported only when a command runs)."""
    app = typer.Typer(help=help_text, no_args_is_help=True)

    async def with_session(plan: Any, options: Any, work: Callable[[Any], Awaitable[T]]) -> T:
        target = importlib.import_module(module)
        session = await target.open_session(plan, options)
        try:
            return await work(session)
        finally:
            await session.aclose()

    def options_for(sandbox: Any, ca_bundle: Path | None, adopt: bool, concurrency: int) -> Any:
        from provision.core.target import TargetOptions

        return TargetOptions(sandbox=sandbox, ca_bundle=ca_bundle, adopt=adopt, concurrency=concurrency)

    def engine_for(session: Any, options: Any, progress: Callable[[Any], None]) -> Any:
        from provision.core import Engine

        return Engine(session.resources, concurrency=options.concurrency, on_event=progress, adopt=options.adopt)

    @app.command("plan")
    def plan_command(
        plan_file: PlanArg,
        sandbox: SandboxOpt = False,
        ca_bundle: CaBundleOpt = None,
        output: OutputOpt = OutputFormat.text,
        adopt: AdoptOpt = False,
        concurrency: ConcurrencyOpt = 8,
        detailed_exitcode: Annotated[
            bool, typer.Option("--detailed-exitcode", help="Exit 0 when nothing would change, 2 when something would.")
        ] = False,
    ) -> None:
        """Read what exists and show what apply would change. Changes nothing."""
        with user_errors(), sandbox_info(sandbox) as info:
            plan = load(plan_file, name)
            options = options_for(info, ca_bundle, adopt, concurrency)

            async def work(session: Any) -> Any:
                return await engine_for(session, options, lambda _e: None).plan()

            result = _run(with_session(plan, options, work))
            if output is OutputFormat.json:
                print_json(plan_document(result, source=str(plan_file)))
            else:
                print_plan(result, title=f"{name} plan for {plan_file} (environment {plan.env})")
            if result.blocked:
                raise typer.Exit(1)
            if detailed_exitcode and result.has_changes:
                raise typer.Exit(2)

    @app.command("apply")
    def apply_command(
        plan_file: PlanArg,
        sandbox: SandboxOpt = False,
        ca_bundle: CaBundleOpt = None,
        output: OutputOpt = OutputFormat.text,
        adopt: AdoptOpt = False,
        concurrency: ConcurrencyOpt = 8,
        auto_approve: AutoApproveOpt = False,
        out: OutDirOpt = Path("provision-out"),
    ) -> None:
        """Show the plan, ask, make it real, then write the OHIF configuration to --out."""
        text = output is OutputFormat.text
        with user_errors(), sandbox_info(sandbox) as info:
            plan = load(plan_file, name)
            options = options_for(info, ca_bundle, adopt, concurrency)

            _json_needs_auto_approve(text, auto_approve)

            async def work(session: Any) -> dict[str, Any]:
                planned = await engine_for(session, options, lambda _e: None).plan()
                await _show_and_confirm(planned, text=text, auto_approve=auto_approve, question="Apply these changes?",
                                        title=f"{name} plan for {plan_file} (environment {plan.env})")
                with Progress(enabled=text) as progress:
                    outcome = await engine_for(session, options, progress).apply(planned)
                return _finish(session, outcome, planned, out, text=text, source=str(plan_file))

            document = _run(with_session(plan, options, work))
            if not text:
                print_json(document)

    @app.command("destroy")
    def destroy_command(
        plan_file: PlanArg,
        sandbox: SandboxOpt = False,
        ca_bundle: CaBundleOpt = None,
        output: OutputOpt = OutputFormat.text,
        concurrency: ConcurrencyOpt = 8,
        auto_approve: AutoApproveOpt = False,
    ) -> None:
        """Delete, in reverse order, what this plan owns; leave everything else alone."""
        text = output is OutputFormat.text
        with user_errors(), sandbox_info(sandbox) as info:
            plan = load(plan_file, name)
            options = options_for(info, ca_bundle, False, concurrency)
            _json_needs_auto_approve(text, auto_approve)

            async def work(session: Any) -> dict[str, Any]:
                planned = await engine_for(session, options, lambda _e: None).destroy_plan()
                await _show_and_confirm(planned, text=text, auto_approve=auto_approve, destroy=True,
                                        question="Destroy these resources?",
                                        title=f"{name} destroy for {plan_file} (environment {plan.env})")
                with Progress(enabled=text) as progress:
                    outcome = await engine_for(session, options, progress).destroy(planned)
                if text:
                    console.print(f"Destroy complete: {len(outcome.done)} deleted.", style="bold")
                return {**plan_document(planned, source=str(plan_file), destroy=True), "deleted": len(outcome.done)}

            document = _run(with_session(plan, options, work))
            if not text:
                print_json(document)

    @app.command("output")
    def output_command(
        plan_file: PlanArg,
        sandbox: SandboxOpt = False,
        ca_bundle: CaBundleOpt = None,
        out: Annotated[Path | None, typer.Option("--out", help="Also write ohif.json and app-config.js here.")] = None,
    ) -> None:
        """Print the OHIF configuration (ohif.json) from the live state. Changes nothing in the cloud."""
        with user_errors(), sandbox_info(sandbox) as info:
            plan = load(plan_file, name)
            options = options_for(info, ca_bundle, False, 8)

            async def work(session: Any) -> Any:
                planned = await engine_for(session, options, lambda _e: None).plan()
                if planned.has_changes:
                    raise ProvisionError(
                        "the live state does not match the plan, so its OHIF configuration would be wrong",
                        hint=f"run `provision {name} plan {plan_file}` to see the differences, then apply",
                    )
                return session.ohif(planned.outputs)

            result = _run(with_session(plan, options, work))
            if result is None:
                raise fail(ProvisionError("the plan declares nothing the viewer connects to"))
            if out is not None:
                from provision.ohif.config import write_outputs

                write_outputs(out, result.document, viewer_url=result.viewer_url)
            print_json(result.document)

    return app


def _finish(session: Any, outcome: Any, planned: Any, out: Path, *, text: bool, source: str) -> dict[str, Any]:
    """After apply: write the OHIF files and report what was done."""
    from provision.ohif.config import write_outputs

    result = session.ohif(outcome.outputs)
    written: list[str] = []
    if result is not None:
        written = [str(p) for p in write_outputs(out, result.document, viewer_url=result.viewer_url)]
    if text:
        counts: dict[str, int] = {}
        for step in outcome.done:
            counts[step.action.kind] = counts.get(step.action.kind, 0) + 1
        done = ", ".join(f"{n} {kind}d" for kind, n in sorted(counts.items())) or "no changes"
        console.print(f"Apply complete: {done}.", style="bold green")
        for path in written:
            console.print(f"  wrote {path}")
        for note in result.notes if result is not None else []:
            console.print(note)
    return {
        **plan_document(planned, source=source),
        "applied": [step.as_dict() for step in outcome.done],
        "files": written,
        "ohif": result.document if result is not None else None,
        "notes": result.notes if result is not None else [],
    }
