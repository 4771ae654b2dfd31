"""`provision sandbox ...`: the local HTTPS emulator of the cloud APIs, in the foreground (`serve`) or in the
background on a stable port (`up`, `down`, `status`; what `--sandbox` starts or reuses)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="A local HTTPS emulator of the cloud APIs (Azure, Google Cloud) for trying plans offline.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

DEFAULT_STATE = Path(".provision/sandbox")


@app.callback()
def main() -> None:
    """A local HTTPS emulator of the cloud APIs (Azure, Google Cloud) for trying plans offline."""


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


StateOpt = Annotated[
    Path, typer.Option("--state", help="State directory (CA, keys, world.json, sandbox.json); kept across runs.")
]


@app.command()
def up(
    state: StateOpt = DEFAULT_STATE,
    port: Annotated[int | None, typer.Option(
        help="Port on 127.0.0.1 (default: the one it had last time, else $PROVISION_SANDBOX_PORT, else 47443).",
        min=1, max=65535, show_default=False)] = None,
    lro_seconds: Annotated[
        float | None, typer.Option(help="How long long-running operations take (a new sandbox only).", min=0)
    ] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="text for people, json for machines.")] = "text",
) -> None:
    """Start the sandbox in the background (or find it running) and print where it is; it keeps running.

    Point commands at it with --sandbox (same state directory) or PROVISION_SANDBOX=STATE/sandbox.json.
    """
    from provision.cli.render import print_json
    from provision.cli.target import user_errors
    from provision.sandbox.background import describe, start

    with user_errors(json_output=output == "json"):
        options = ("--lro-seconds", str(lro_seconds)) if lro_seconds is not None else ()
        running = start(state, port=port, options=options)
    if output == "json":
        print_json(describe(running))
        return
    verb = "started" if running.started else "already running"
    typer.echo(f"sandbox {verb} at {running.info.url} (pid {running.pid}, state {running.info.state_dir})")
    typer.echo(f"  PROVISION_SANDBOX={Path(running.info.state_dir) / 'sandbox.json'}; stop it: provision sandbox down")


@app.command()
def down(state: StateOpt = DEFAULT_STATE) -> None:
    """Stop the background sandbox (its world is saved in the state directory for next time)."""
    from provision.sandbox.background import stop

    typer.echo("sandbox stopped" if stop(state) else "no sandbox was running")


@app.command()
def status(
    state: StateOpt = DEFAULT_STATE,
    output: Annotated[str, typer.Option("--output", "-o", help="text for people, json for machines.")] = "text",
) -> None:
    """Say whether the background sandbox runs, and where. Exit 0 when it does, 1 when it does not."""
    from provision.cli.render import print_json
    from provision.sandbox.background import describe
    from provision.sandbox.background import status as running_sandbox

    running = running_sandbox(state)
    if output == "json":
        print_json(describe(running) if running is not None else {"running": False})
    elif running is not None:
        typer.echo(f"sandbox running at {running.info.url} (pid {running.pid}, state {running.info.state_dir})")
    else:
        typer.echo(f"no sandbox running for state {state}")
    if running is None:
        raise typer.Exit(1)
