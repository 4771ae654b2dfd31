"""Local server processes by pid file: start one that outlives the command or dies with it, find it again from
its pid file in a later command, and stop it gracefully (Orthanc here, nginx in the self-hosted target).

A pid file alone is not trusted: the pid must still run the expected program (`/proc/PID/cmdline`), since pids
are reused after a reboot or a crash.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def runs(pid: int, program: str) -> bool:
    """Whether process `pid` exists and runs `program` (the base name of its executable)."""
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0]
    except OSError:
        return False
    text = argv0.decode(errors="replace")
    # nginx rewrites its title: "nginx: master process nginx -p ..."
    return os.path.basename(text) == program or text.startswith(f"{program}: ")


def running_pid(pid_file: Path, program: str) -> int | None:
    """The pid recorded in `pid_file` if that process still runs `program`."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if runs(pid, program) else None


def spawn(argv: Sequence[str], *, log_file: Path, cwd: Path, env: Mapping[str, str] | None = None,
          die_with_parent: bool = True) -> subprocess.Popen[bytes]:
    """Start `argv` with its output appended to `log_file`. `die_with_parent`: it gets SIGTERM when the thread
    that started it ends (a crashed test leaves nothing behind); otherwise it runs in a session of its own, so it
    outlives the command and a Ctrl+C in that terminal does not reach it."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        return subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=cwd,
            env=dict(env) if env is not None else None,
            preexec_fn=_die_with_parent if die_with_parent and sys.platform == "linux" else None,
            start_new_session=not die_with_parent,
        )


def stop(pid: int, program: str, *, sig: int = signal.SIGTERM, timeout: float = 10.0) -> bool:
    """Send `sig` and wait until `pid` no longer runs `program`, killing it after `timeout` seconds; True when it
    stopped by itself. A child of this process is reaped, so it does not linger as a zombie."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    graceful = True
    while _alive(pid, program):
        if time.monotonic() > deadline:
            graceful = False
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
        time.sleep(0.02)
    return graceful


def _alive(pid: int, program: str) -> bool:
    with contextlib.suppress(ChildProcessError, OSError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return runs(pid, program)
