"""The `provision` command: one sub-app per target, plus `sandbox` and `schema`.

Cloud SDKs are imported only inside the commands that need them, so `provision --help` stays fast.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from provision import __version__
from provision.azure.verify import register as register_azure_verify
from provision.cli.gc import register as register_gc
from provision.cli.sandbox import app as sandbox_app
from provision.cli.target import make_target_app, user_errors
from provision.gcp.cli import register as register_gcp_roles

app = typer.Typer(
    name="provision",
    help="Declarative, idempotent set-up of OHIF viewers against cloud DICOM archives.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

azure_app = make_target_app(
    "azure",
    "provision.azure.session",
    "Entra ID app, Health Data Services workspace, DICOM service with CORS, role assignments, OHIF config.",
)
gcp_app = make_target_app(
    "gcp",
    "provision.gcp.session",
    "Google Cloud Healthcare dataset, DICOM stores, IAM bindings, OHIF config.",
)

register_gcp_roles(gcp_app)
register_gc(app)  # provision gc: the reaper of old environments (provision/cli/gc.py)
register_azure_verify(azure_app)

app.add_typer(azure_app, name="azure")
app.add_typer(gcp_app, name="gcp")
app.add_typer(sandbox_app, name="sandbox", help="A local HTTPS emulator of the cloud APIs, for trying plans offline.")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"provision {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Declarative, idempotent set-up of OHIF viewers against cloud DICOM archives."""


@app.command()
def schema() -> None:
    """Print the JSON Schema of the plan-file format (for editors)."""
    with user_errors():
        from provision.plan import plan_json_schema

        typer.echo(json.dumps(plan_json_schema(), indent=2))


def run() -> None:
    app()
