"""`provision sandbox ...`: run the local HTTPS emulator of the cloud APIs in the foreground."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="A local HTTPS emulator of Azure (ARM, Graph, Entra ID) for trying plans offline.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

DEFAULT_STATE = Path(".provision/sandbox")


@app.callback()
def main() -> None:
    """A local HTTPS emulator of Azure (ARM, Graph, Entra ID) for trying plans offline."""


@app.command()
def serve(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0 picks a free one).", min=0, max=65535)] = 0,
    state: Annotated[
        Path, typer.Option("--state", help="State directory (CA, keys, world.json, sandbox.json); kept across runs.")
    ] = DEFAULT_STATE,
    latency_ms: Annotated[float, typer.Option(help="Delay added to every API request, in milliseconds.", min=0)] = 0,
    lro_seconds: Annotated[
        float, typer.Option(help="How long long-running operations (DICOM create, deletes) take.", min=0)
    ] = 2.0,
    principal_delay_seconds: Annotated[
        float,
        typer.Option(help="Role assignments to principals younger than this fail with PrincipalNotFound.", min=0),
    ] = 0.0,
    dicom_sp: Annotated[
        bool | None,
        typer.Option("--dicom-sp/--no-dicom-sp",
                     help="Make the first-party 'Azure API for DICOM' service principal present/absent "
                          "(default: keep what the state holds)."),
    ] = None,
) -> None:
    """Serve the sandbox until interrupted; prints one JSON line (the sandbox info) when ready.

    The same JSON is written to STATE/sandbox.json; point other commands at it with
    PROVISION_SANDBOX=STATE/sandbox.json.
    """
    import signal
    import sys

    from provision.cli.target import fail
    from provision.errors import ConfigurationError
    from provision.sandbox import start_sandbox

    try:
        running = start_sandbox(state, port=port, latency_ms=latency_ms, lro_seconds=lro_seconds,
                                principal_delay_seconds=principal_delay_seconds, dicom_sp=dicom_sp)
    except OSError as exc:
        raise fail(ConfigurationError(f"cannot start the sandbox on port {port}: {exc.strerror or exc}",
                                      hint="choose another --port, or --port 0 for a free one")) from None

    def _terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        sys.stdout.write(running.info.to_json() + "\n")
        sys.stdout.flush()
        typer.echo(f"sandbox listening on {running.info.url} (state in {running.info.state_dir}); Ctrl+C stops it",
                   err=True)
        running.wait()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        running.stop()
