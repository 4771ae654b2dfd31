"""Run a local Orthanc (Debian's `Orthanc` binary plus the DICOMweb plugin): start, readiness, stop.

Facts this module is built on (Orthanc 1.10.1, DICOMweb plugin 1.7, measured here):
- `Orthanc /path/orthanc.json` in the foreground answers `/system` about 0.1 s after exec;
- a graceful stop (SIGTERM) takes about 3.5 s whatever the configuration (fixed polling intervals);
- two Orthancs on one index directory do not work (SQLite "database is locked"), so a start first waits for
  the previous process of that storage directory (recorded in `orthanc.pid`) to exit.

By default the process is started with `PR_SET_PDEATHSIG` (Linux) so that it is told to stop when the thread
that started it ends; a crashed test run or an interrupted command leaves no Orthanc behind. `launch_orthanc`
with `die_with_parent=False` starts one that outlives the command (`provision orthanc up`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType

from provision.errors import ConfigurationError, ProvisionError

from . import processes
from .orthanc_config import DEFAULT_PLUGIN_DIRS, DICOMWEB_PLUGIN, OrthancSettings, orthanc_config

CONFIG_FILE = "orthanc.json"
PID_FILE = "orthanc.pid"
LOG_FILE = "orthanc.log"
INSTALL_HINT = "run scripts/install-system-deps.sh (apt-get install orthanc orthanc-dicomweb)"
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
PROGRAM = "Orthanc"


class OrthancError(ProvisionError):
    """Orthanc could not be started or did not become ready."""


def find_orthanc() -> str:
    """Path of the `Orthanc` executable, or a ConfigurationError that says how to install it."""
    found = shutil.which("Orthanc") or next(
        (str(p) for p in (Path("/usr/sbin/Orthanc"), Path("/usr/bin/Orthanc")) if p.is_file()), None
    )
    if found is None:
        raise ConfigurationError("Orthanc is not installed", hint=INSTALL_HINT)
    return found


def find_plugin(name: str = DICOMWEB_PLUGIN, dirs: Iterable[Path] = DEFAULT_PLUGIN_DIRS) -> Path:
    for directory in dirs:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    raise ConfigurationError(f"the Orthanc plugin {name} is not installed", hint=INSTALL_HINT)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_previous(storage_dir: Path, timeout: float = STOP_TIMEOUT) -> None:
    """Wait until an earlier Orthanc on `storage_dir` has exited (killing it after `timeout`)."""
    wait_recorded(storage_dir / PID_FILE, timeout)


def wait_recorded(pid_file: Path, timeout: float = STOP_TIMEOUT) -> None:
    """Wait until the Orthanc recorded in `pid_file`, if it still runs, has exited (killing it after `timeout`)."""
    pid = processes.running_pid(pid_file, PROGRAM)
    deadline = time.monotonic() + timeout
    while pid is not None and processes.runs(pid, PROGRAM) and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid is not None and processes.runs(pid, PROGRAM):
        processes.stop(pid, PROGRAM, sig=signal.SIGKILL, timeout=2)


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


class Orthanc:
    """One Orthanc process. `url` is its HTTP root; every request needs `authorization` (HTTP Basic)."""

    def __init__(self, settings: OrthancSettings, process: subprocess.Popen[bytes], host: str = "127.0.0.1", *,
                 log_file: Path | None = None, pid_file: Path | None = None) -> None:
        self.settings = settings
        self.process = process
        self.log_file = log_file or settings.storage_dir / LOG_FILE
        self.pid_file = pid_file or settings.storage_dir / PID_FILE
        self.url = f"http://{host}:{settings.http_port}"
        self.dicomweb_url = self.url + settings.dicomweb_root.rstrip("/")
        token = base64.b64encode(f"{settings.username}:{settings.password}".encode()).decode("ascii")
        self.authorization = f"Basic {token}"

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def storage_dir(self) -> Path:
        return self.settings.storage_dir

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # -- readiness -----------------------------------------------------------------------------------------------

    def _probe(self) -> bool:
        """True once Orthanc answers with the DICOMweb plugin (and the python one, for a script) loaded."""
        request = urllib.request.Request(self.url + "/plugins", headers={"Authorization": self.authorization})
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                plugins = json.loads(response.read())
        except (OSError, urllib.error.URLError, ValueError):
            return False
        if "dicom-web" not in plugins:
            raise OrthancError(f"Orthanc at {self.url} runs without the DICOMweb plugin", hint=INSTALL_HINT)
        if self.settings.python_script is not None and "python" not in plugins:
            raise OrthancError(f"Orthanc at {self.url} runs without the python plugin", hint=INSTALL_HINT)
        return True

    def _not_started(self) -> OrthancError:
        return OrthancError(
            f"Orthanc exited with status {self.process.returncode} before it was ready; its log ends with:\n"
            + self.log_tail()
        )

    def wait_ready(self, timeout: float = START_TIMEOUT) -> Orthanc:
        deadline = time.monotonic() + timeout
        while not self._probe():
            if not self.alive():
                raise self._not_started()
            if time.monotonic() > deadline:
                self.stop()
                raise OrthancError(f"Orthanc did not answer on {self.url} within {timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(0.03)
        return self

    async def wait_ready_async(self, timeout: float = START_TIMEOUT) -> Orthanc:
        """`wait_ready` for an event loop: the probes run in a worker thread, the waiting does not block."""
        deadline = time.monotonic() + timeout
        while not await asyncio.to_thread(self._probe):
            if not self.alive():
                raise self._not_started()
            if time.monotonic() > deadline:
                self.terminate()
                raise OrthancError(f"Orthanc did not answer on {self.url} within {timeout:.0f} s:\n{self.log_tail()}")
            await asyncio.sleep(0.03)
        return self

    # -- stopping ------------------------------------------------------------------------------------------------

    def terminate(self) -> None:
        """Ask Orthanc to stop (SIGTERM) without waiting; a later start on the same storage waits for it."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop gracefully (about 3.5 s), killing after `timeout`; the storage stays for the next start."""
        self.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        with contextlib.suppress(OSError, ValueError):
            if int(self.pid_file.read_text().strip()) == self.pid:
                self.pid_file.unlink()

    def __enter__(self) -> Orthanc:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def launch_orthanc(
    settings: OrthancSettings,
    config_file: Path,
    *,
    log_file: Path,
    pid_file: Path,
    host: str = "127.0.0.1",
    env: Mapping[str, str] | None = None,
    die_with_parent: bool = True,
) -> Orthanc:
    """Start Orthanc on an existing configuration file (which `settings` describes) and return at once; call
    `wait_ready` next. Waits first for the earlier Orthanc recorded in `pid_file` to exit. `die_with_parent=False`
    lets it outlive this process (see `processes.spawn`)."""
    executable = find_orthanc()
    wait_recorded(pid_file)
    process = processes.spawn([executable, str(config_file)], log_file=log_file, cwd=config_file.parent, env=env,
                              die_with_parent=die_with_parent)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{process.pid}\n")
    return Orthanc(settings, process, host, log_file=log_file, pid_file=pid_file)


def spawn_orthanc(
    storage_dir: str | Path,
    *,
    port: int = 0,
    host: str = "127.0.0.1",
    plugins: Iterable[Path] | None = None,
    name: str = "provision",
    die_with_parent: bool = True,
) -> Orthanc:
    """Start Orthanc on `storage_dir` (created if needed, holding its configuration, log and pid file) and return
    at once; call `wait_ready` next. `port=0` picks a free port. Waits first for an earlier Orthanc of the same
    storage directory to exit."""
    plugin_paths = tuple(plugins) if plugins is not None else (find_plugin(),)
    storage = Path(storage_dir).resolve()
    storage.mkdir(parents=True, exist_ok=True)
    settings = OrthancSettings(
        storage_dir=storage,
        http_port=port or free_port(host),
        plugins=plugin_paths,
        name=name,
        remote_access=host not in ("127.0.0.1", "localhost", "::1"),
    )
    config_path = storage / CONFIG_FILE
    wait_previous(storage)
    _write_private(config_path, json.dumps(orthanc_config(settings), indent=2))
    return launch_orthanc(settings, config_path, log_file=storage / LOG_FILE, pid_file=storage / PID_FILE,
                          host=host, die_with_parent=die_with_parent)


def start_orthanc(
    storage_dir: str | Path,
    *,
    port: int = 0,
    host: str = "127.0.0.1",
    plugins: Iterable[Path] | None = None,
    name: str = "provision",
    die_with_parent: bool = True,
    attempts: int = 3,
) -> Orthanc:
    """Start Orthanc and wait until it serves DICOMweb; with `port=0`, retries on another port if the one it
    picked was taken in the meantime."""
    last: OrthancError | None = None
    for _ in range(attempts if port == 0 else 1):
        orthanc = spawn_orthanc(
            storage_dir, port=port, host=host, plugins=plugins, name=name, die_with_parent=die_with_parent
        )
        try:
            return orthanc.wait_ready()
        except OrthancError as error:
            last = error
    assert last is not None
    raise last
