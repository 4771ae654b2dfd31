"""The `provision` command: one sub-app per registered target, plus `gc`, `sandbox` and `schema`.

Cloud SDKs are imported only inside the commands that need them, so `provision --help` stays fast.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from typing import Annotated, Any

import typer
from typer._click import Context
from typer._click.exceptions import UsageError  # typer vendors click (its `typer._click`)
from typer.core import TyperGroup

from provision import __version__
from provision.cli.gc import register as register_gc
from provision.cli.sandbox import app as sandbox_app
from provision.cli.target import VERBOSE, make_target_app, user_errors
from provision.cli.viewer import viewer
from provision.core.target import Target
from provision.registry import targets


def _version(value: bool) -> None:
    if value:
        typer.echo(f"provision {__version__}")
        raise typer.Exit()


def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", envvar="PROVISION_VERBOSE",
                                          help="On an error, also show what the SDK or service said in full.")
                       ] = False,
) -> None:
    """Declarative, idempotent set-up of OHIF viewers against cloud DICOM archives."""
    VERBOSE["on"] = verbose


def schema() -> None:
    """Print the JSON Schema of the plan-file format (for editors)."""
    with user_errors():
        from provision.plan import plan_json_schema

        typer.echo(json.dumps(plan_json_schema(), indent=2))


class ProvisionGroup(TyperGroup):
    """The root command: a usage error (a bad flag, a value out of range) exits 1 like every other error.

    click exits 2, which `plan --detailed-exitcode` uses for "changes present": a script could take a typo
    for a plan with changes."""

    def make_context(self, info_name: str | None, args: list[str], parent: Context | None = None,
                     **extra: Any) -> Context:
        with _usage_errors_exit_1():
            return super().make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx: Context) -> Any:
        with _usage_errors_exit_1():
            return super().invoke(ctx)


@contextlib.contextmanager
def _usage_errors_exit_1() -> Iterator[None]:
    try:
        yield
    except UsageError as error:
        error.exit_code = 1  # this instance only, not the class
        raise


def build_app(registered: Sequence[Target]) -> typer.Typer:
    """The whole command line for these targets (the registry's, except in tests)."""
    cli = typer.Typer(
        cls=ProvisionGroup,
        name="provision",
        help="Declarative, idempotent set-up of OHIF viewers against cloud DICOM archives.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
    )
    cli.callback()(main)
    for target in registered:
        cli.add_typer(make_target_app(target), name=target.name)
    register_gc(cli, registered)  # provision gc: old environments of every target (provision/cli/gc.py)
    cli.add_typer(sandbox_app, name="sandbox",
                  help="A local HTTPS emulator of the cloud APIs, for trying plans offline.")
    cli.command()(schema)
    cli.command("viewer")(viewer)
    return cli


app = build_app(targets())


def run() -> None:
    app()
