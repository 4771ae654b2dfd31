"""A sandbox that outlives the command that started it: `provision sandbox up|down|status`, and `--sandbox`.

The sandbox runs as `provision sandbox serve` in its own session (it survives the terminal and the command),
with its log in STATE/sandbox.log and its process id in STATE/sandbox.pid. It listens on a stable port: the
one it had last time (from STATE/sandbox.json), else `PROVISION_SANDBOX_PORT`, else DEFAULT_PORT, so the
OHIF configuration written against it keeps working after the command ends and on the next run.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from provision.errors import ConfigurationError

from .info import INFO_FILE, SandboxInfo

PID_FILE = "sandbox.pid"
LOG_FILE = "sandbox.log"
#: the port a new persistent sandbox takes unless told otherwise (a fixed port: the viewer config stays valid)
DEFAULT_PORT = 47443
PORT_VARIABLE = "PROVISION_SANDBOX_PORT"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0


@dataclass(frozen=True)
class Background:
    """A persistent sandbox: what it says about itself, and whether this call started it."""

    info: SandboxInfo
    pid: int
    started: bool


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - someone else's process under a recycled pid
        return False
    return True


def _answers(url: str) -> bool:
    address = urlsplit(url)
    try:
        with socket.create_connection((address.hostname or "127.0.0.1", address.port or 443), timeout=2):
            return True
    except OSError:
        return False


def _pid(state: Path) -> int | None:
    try:
        return int((state / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None


def status(state: Path) -> Background | None:
    """The persistent sandbox of `state` when it is running and answering, else None."""
    pid = _pid(state)
    if pid is None or not _alive(pid) or not (state / INFO_FILE).is_file():
        return None
    info = SandboxInfo.load(state)
    return Background(info, pid, started=False) if _answers(info.url) else None


def _port_for(state: Path, port: int | None) -> int:
    if port is not None:
        return port
    with contextlib.suppress(OSError, ValueError, KeyError, ConfigurationError):
        previous = urlsplit(SandboxInfo.load(state).url).port
        if previous:
            return previous
    configured = os.environ.get(PORT_VARIABLE, "").strip()
    if configured:
        try:
            return int(configured)
        except ValueError:
            raise ConfigurationError(f"{PORT_VARIABLE}={configured!r} is not a port number") from None
    return DEFAULT_PORT


def start(state: Path, *, port: int | None = None, options: tuple[str, ...] = ()) -> Background:
    """Reuse the running sandbox of `state`, or start one in the background and wait until it answers.

    `options` are further `provision sandbox serve` flags (e.g. `--lro-seconds 20`) for a new one.
    """
    running = status(state)
    if running is not None:
        return running
    state.mkdir(parents=True, exist_ok=True)
    chosen = _port_for(state, port)
    info_file = state / INFO_FILE
    info_file.unlink(missing_ok=True)  # a stale description must not pass for the new sandbox's
    command = [sys.executable, "-m", "provision", "sandbox", "serve", "--state", str(state), "--port", str(chosen),
               *options]
    with (state / LOG_FILE).open("ab") as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                   start_new_session=True)
    (state / PID_FILE).write_text(f"{process.pid}\n")
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            (state / PID_FILE).unlink(missing_ok=True)
            raise ConfigurationError(
                f"the sandbox did not start on port {chosen}: {_last_error(state / LOG_FILE)}",
                hint=f"see {state / LOG_FILE}; another port: `provision sandbox up --port N` or {PORT_VARIABLE}",
            )
        if info_file.is_file():
            with contextlib.suppress(ValueError, ConfigurationError):
                info = SandboxInfo.load(state)
                if _answers(info.url):
                    return Background(info, process.pid, started=True)
        time.sleep(0.05)
    stop(state)
    raise ConfigurationError(f"the sandbox did not answer within {START_TIMEOUT:.0f} s",
                             hint=f"see {state / LOG_FILE}")


def _last_error(log: Path) -> str:
    """The sandbox's own message, from the end of its log (`Error: ...`), else its last line."""
    try:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "it exited"
    errors = [line for line in lines if line.startswith("Error:")]
    return (errors or lines or ["it exited"])[-1].removeprefix("Error: ")


def stop(state: Path) -> bool:
    """Stop the persistent sandbox of `state` (its world is saved); False when none was running."""
    pid = _pid(state)
    if pid is None or not _alive(pid):
        (state / PID_FILE).unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while _alive(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it when this very process started it
        time.sleep(0.05)
    if _alive(pid):  # pragma: no cover - a stuck process
        os.kill(pid, signal.SIGKILL)
    (state / PID_FILE).unlink(missing_ok=True)
    return True


def describe(background: Background) -> dict[str, object]:
    """The `--output json` document of `provision sandbox status|up`."""
    return {"running": True, "pid": background.pid, "started": background.started,
            **json.loads(background.info.to_json())}
