"""`provision gcp roles`: the typer command. `register(app)` adds it to the `gcp` sub-app.

Conventions shared with the target commands (provision.cli.target): the binding differences are shown
first; `--dry-run` changes nothing (with `--detailed-exitcode`: 0 no changes, 2 changes, 1 error); otherwise
changes need confirmation, or `--auto-approve` when there is no terminal. Input errors exit 1 before any call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

MemberOpt = Annotated[list[str] | None, typer.Option(metavar="MEMBER", show_default=False)]


def register(app: typer.Typer) -> None:
    """Add the `roles` command to `app` (the `gcp` sub-app)."""

    @app.command("roles")
    def roles_command(
        plan_file: Annotated[
            Path | None,
            typer.Argument(help="Plan file: apply only its gcp.access entries. Omit to use the flags.",
                           show_default=False),
        ] = None,
        store: Annotated[
            str | None,
            typer.Option("--store", help="DICOM store: projects/P/locations/L/datasets/D/dicomStores/S.",
                         show_default=False),
        ] = None,
        dataset: Annotated[
            str | None,
            typer.Option("--dataset", help="Dataset: projects/P/locations/L/datasets/D.", show_default=False),
        ] = None,
        viewer: Annotated[
            list[str] | None,
            typer.Option("--viewer", metavar="MEMBER",
                         help="Grant roles/healthcare.dicomViewer (user:, group:, serviceAccount:, domain:). "
                         "Repeatable.", show_default=False),
        ] = None,
        editor: Annotated[
            list[str] | None,
            typer.Option("--editor", metavar="MEMBER", help="Grant roles/healthcare.dicomEditor. Repeatable.",
                         show_default=False),
        ] = None,
        revoke_viewer: Annotated[
            list[str] | None,
            typer.Option("--revoke-viewer", metavar="MEMBER", help="Revoke roles/healthcare.dicomViewer.",
                         show_default=False),
        ] = None,
        revoke_editor: Annotated[
            list[str] | None,
            typer.Option("--revoke-editor", metavar="MEMBER", help="Revoke roles/healthcare.dicomEditor.",
                         show_default=False),
        ] = None,
        authoritative: Annotated[
            list[str] | None,
            typer.Option("--authoritative", metavar="ROLE",
                         help="viewer or editor: that role's members become exactly the ones given "
                         "(default: additive, everyone else keeps access).", show_default=False),
        ] = None,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Show the binding differences and change nothing.")
        ] = False,
        detailed_exitcode: Annotated[
            bool,
            typer.Option("--detailed-exitcode",
                         help="With --dry-run: exit 0 when nothing would change, 2 when something would."),
        ] = False,
        auto_approve: Annotated[bool, typer.Option("--auto-approve", help="Do not ask for confirmation.")] = False,
        sandbox: Annotated[
            bool, typer.Option("--sandbox", help="Run against an embedded local sandbox instead of Google Cloud.")
        ] = False,
        ca_bundle: Annotated[
            Path | None, typer.Option("--ca-bundle", help="Extra CA bundle to trust (TLS-inspecting proxies).")
        ] = None,
        output: Annotated[str, typer.Option("--output", "-o", help="text for people, json for machines.")] = "text",
    ) -> None:
        """Grant or revoke DICOM roles on a dataset or DICOM store (additive by default; foreign bindings,
        members and IAM Conditions are kept)."""
        from provision.cli.target import user_errors

        with user_errors():
            code = run_roles(
                plan_file=plan_file,
                store=store,
                dataset=dataset,
                viewers=viewer or [],
                editors=editor or [],
                revoke_viewers=revoke_viewer or [],
                revoke_editors=revoke_editor or [],
                authoritative=authoritative or [],
                dry_run=dry_run,
                detailed_exitcode=detailed_exitcode,
                auto_approve=auto_approve,
                sandbox=sandbox,
                ca_bundle=ca_bundle,
                output=output,
            )
        if code:
            raise typer.Exit(code)


def run_roles(
    *,
    plan_file: Path | None,
    store: str | None = None,
    dataset: str | None = None,
    viewers: list[str] | None = None,
    editors: list[str] | None = None,
    revoke_viewers: list[str] | None = None,
    revoke_editors: list[str] | None = None,
    authoritative: list[str] | None = None,
    dry_run: bool = False,
    detailed_exitcode: bool = False,
    auto_approve: bool = False,
    sandbox: bool = False,
    ca_bundle: Path | None = None,
    output: str = "text",
) -> int:
    """The command's body, callable without typer. Returns the exit code; raises ProvisionError."""
    from provision.cli.render import Progress, console, plan_document, print_json, print_plan
    from provision.cli.target import _confirm, _in_thread, _run, load, sandbox_info
    from provision.core import Engine
    from provision.core.target import TargetOptions
    from provision.errors import ConfigurationError, ProvisionError
    from provision.gcp.roles import open_roles_session, requests_from_flags, requests_from_plan

    if output not in ("text", "json"):
        raise ConfigurationError(f"--output {output!r}: expected text or json")
    text = output == "text"
    flags = any([store, dataset, viewers, editors, revoke_viewers, revoke_editors, authoritative])
    # every input check happens here, before a sandbox starts or a client exists
    if plan_file is not None:
        if flags:
            raise ConfigurationError("give either a plan file or --store/--dataset with members, not both")
        plan = load(plan_file, "gcp")
        requests = requests_from_plan(plan)
        source = str(plan_file)
    else:
        requests = requests_from_flags(
            store=store,
            dataset=dataset,
            viewers=viewers or [],
            editors=editors or [],
            revoke_viewers=revoke_viewers or [],
            revoke_editors=revoke_editors or [],
            authoritative=authoritative or [],
        )
        source = "command line"
    if not dry_run and not text and not auto_approve:
        raise ConfigurationError("--output json needs --auto-approve (or --dry-run)", hint="pass --auto-approve")
    title = "gcp roles: " + ", ".join(str(r.target) for r in requests)

    with sandbox_info(sandbox) as info:
        options = TargetOptions(sandbox=info, ca_bundle=ca_bundle)

        async def work() -> tuple[dict[str, Any], bool]:
            session = await open_roles_session(requests, options)
            try:
                planned = await Engine(session.resources).plan()
                if text:
                    print_plan(planned, title=title)
                if dry_run:
                    return plan_document(planned, source=source), planned.has_changes
                if planned.blocked:
                    raise ProvisionError("the plan is blocked; nothing was changed")
                if planned.has_changes:
                    await _in_thread(_confirm, "Apply these IAM changes?", auto_approve or not text)
                with Progress(enabled=text) as progress:
                    outcome = await Engine(session.resources, on_event=progress).apply(planned)
                if text:
                    console.print(
                        f"Roles applied: {session.writes} IAM polic{'y' if session.writes == 1 else 'ies'} written.",
                        style="bold green",
                    )
                document = {
                    **plan_document(planned, source=source),
                    "applied": [step.as_dict() for step in outcome.done],
                    "writes": session.writes,
                }
                return document, planned.has_changes
            finally:
                await session.aclose()

        document, changes = _run(work())
    if not text:
        print_json(document)
    if dry_run and document.get("blocked"):
        return 1
    if dry_run and detailed_exitcode and changes:
        return 2
    return 0


__all__ = ["register", "run_roles"]
