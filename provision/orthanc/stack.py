"""`provision orthanc up | down`: run the rendered files locally with Debian's Orthanc and nginx, for development
and tests (a production host runs the same files with the rendered systemd units or docker-compose file).

`up` starts what is not running, waits until each answers (Orthanc: the DICOMweb and python plugins loaded and a
request without credentials refused, so the share filter is active; nginx: the viewer over HTTPS, verified
against the CA), restarts Orthanc or reloads nginx when its files changed since it started, and leaves what is
current alone: a second `up` does nothing. The processes outlive the command (a session of their own) and are
recorded in `run/*.pid`; `--foreground` keeps them attached and stops both on Ctrl+C or SIGTERM. `down` stops
nginx (SIGQUIT, graceful) and Orthanc (SIGTERM: it finishes writing, about 2.5 s) and removes the pid files.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from provision.core.events import Event, EventSink, Phase
from provision.core.target import Connection
from provision.dicom import processes
from provision.dicom.orthanc_process import PROGRAM as ORTHANC
from provision.dicom.orthanc_process import OrthancError, find_plugin, launch_orthanc
from provision.errors import ConfigurationError, ProvisionError
from provision.orthanc.client import ssl_context
from provision.orthanc.render import orthanc_settings
from provision.orthanc.site import DICOMWEB_PLUGIN, PYTHON_PLUGIN, Layout, Site

NGINX = "nginx"
READY_TIMEOUT = 20.0
ORTHANC_STOP_TIMEOUT = 30.0
NGINX_STOP_TIMEOUT = 10.0
INSTALL_HINT = "run scripts/install-system-deps.sh (apt-get install orthanc orthanc-dicomweb orthanc-python " \
               "python3-jwt nginx)"


def pid_files(layout: Layout) -> dict[str, Path]:
    return {ORTHANC: layout.run_dir / "orthanc.pid", NGINX: layout.run_dir / "nginx.pid"}


def running(layout: Layout) -> dict[str, int]:
    """The programs of this deployment that run now, with their pids."""
    found = {name: processes.running_pid(path, name) for name, path in pid_files(layout).items()}
    return {name: pid for name, pid in found.items() if pid is not None}


def refuse_while_running(layout: Layout) -> None:
    live = running(layout)
    if live:
        described = ", ".join(f"{name} (pid {pid})" for name, pid in live.items())
        raise ProvisionError(f"{described} of {layout.root} still run on these files",
                             hint="stop them first: `provision orthanc down PLAN`")


def _digest(*paths: Path | None) -> str:
    digest = hashlib.sha256()
    for path in paths:
        if path is not None:
            digest.update(path.read_bytes() if path.is_file() else b"(missing)")
    return digest.hexdigest()


def fingerprints(site: Site) -> dict[str, str]:
    """What each program read at start: a change means a restart (Orthanc) or a reload (nginx)."""
    layout = site.layout
    return {
        ORTHANC: _digest(layout.orthanc_json, layout.filter_script, layout.token_module),
        NGINX: _digest(layout.nginx_conf, site.certificate, site.certificate_key),
    }


@dataclass
class StackReport:
    """What up or down did, for `render_result`."""

    actions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return True

    def lines(self) -> list[str]:
        return [*self.actions, *self.notes]

    def document(self) -> dict[str, Any]:
        return {"actions": self.actions, **self.details}


class _Progress:
    """Engine events for the CLI's progress display (one line each in a log, a live table on a terminal)."""

    def __init__(self, sink: EventSink, action: str) -> None:
        self.sink = sink
        self.action = action

    def __call__(self, address: str, phase: Phase, message: str = "", started: float = 0.0) -> None:
        self.sink(Event(address, phase, self.action, message, time.monotonic() - started if started else 0.0))


def _port_free(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError:
            return False
    return True


def _tail(path: Path, lines: int = 12) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _nginx_globals() -> str:
    # as root, nginx would run its workers as `nobody`, which cannot read a target directory in a private home or
    # temporary directory; run them as the user who runs `up` (what nginx does anyway for everyone else)
    return "daemon off;" + (" user root;" if os.geteuid() == 0 else "")


def nginx_argv(site: Site, *, test: bool = False) -> list[str]:
    layout = site.layout
    program = _find_nginx()
    return [program, *(["-t", "-q"] if test else []), "-p", str(layout.root / "nginx"), "-c", str(layout.nginx_conf),
            "-e", "stderr", "-g", _nginx_globals()]


def _find_nginx() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").is_file() else None)
    if found is None:
        raise ConfigurationError("nginx is not installed", hint=INSTALL_HINT)
    return found


def _connect_address(site: Site) -> str:
    host = site.listen.rsplit(":", 1)[0].strip("[]")
    return {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)


async def _viewer_answers(site: Site, connection: Connection) -> bool:
    """Whether nginx serves the viewer on its listen address, with the certificate verified for the public host."""
    address = _connect_address(site)
    shown = f"[{address}]" if ":" in address else address
    scheme = "https" if site.https else "http"
    extensions = {"sni_hostname": site.host} if site.https else {}
    async with httpx.AsyncClient(verify=ssl_context(site, connection), timeout=2.0, trust_env=False) as client:
        try:
            answer = await client.get(f"{scheme}://{shown}:{site.listen_port}/",
                                      headers={"Host": site.public_url.split("://", 1)[1]}, extensions=extensions)
        except httpx.ConnectError as error:
            if isinstance(error.__cause__, ssl.SSLError) or "CERTIFICATE" in str(error):
                raise ProvisionError(f"nginx on {site.listen} serves a certificate that does not verify for "
                                     f"{site.host}: {error}", hint="run `provision orthanc apply PLAN`, or pass "
                                     "--ca-bundle for a given certificate's CA") from None
            return False
        except httpx.HTTPError as error:
            raise ProvisionError(f"nginx answers on {site.listen} but not as expected: {error}") from None
    return answer.status_code == 200


class _Start:
    """One `up`: what it started (stopped again if a later step fails) and what it reports."""

    def __init__(self, site: Site, connection: Connection, admin_password: str, foreground: bool, sink: EventSink,
                 where: Callable[[str], str]) -> None:
        self.site = site
        self.connection = connection
        self.admin_password = admin_password
        self.foreground = foreground
        self.progress = _Progress(sink, "start")
        self.where = where
        self.report = StackReport()
        self.started: list[tuple[str, int]] = []

    def undo(self) -> None:
        for name, pid in reversed(self.started):
            processes.stop(pid, name, sig=signal.SIGQUIT if name == NGINX else signal.SIGTERM)

    async def orthanc(self, pid: int | None, changed: bool) -> int:
        if pid is not None and not changed:
            self.report.actions.append(f"Orthanc already running (pid {pid})")
            return pid
        if pid is not None:
            self.progress(ORTHANC, Phase.PROGRESS, "its files changed: restarting")
            processes.stop(pid, ORTHANC, timeout=ORTHANC_STOP_TIMEOUT)
            self.report.actions.append(f"Orthanc (pid {pid}) stopped: its files changed")
        site, layout = self.site, self.site.layout
        for plugin in (DICOMWEB_PLUGIN, PYTHON_PLUGIN):
            find_plugin(plugin)
        if not _port_free("127.0.0.1", site.http_port):
            raise ConfigurationError(f"{self.where('http_port')}: port {site.http_port} on 127.0.0.1 is in use",
                                     hint="stop what uses it or choose another orthanc.http_port")
        started = time.monotonic()
        self.progress(ORTHANC, Phase.STARTED, f"starting on 127.0.0.1:{site.http_port}")
        orthanc = launch_orthanc(orthanc_settings(site, admin_password=self.admin_password), layout.orthanc_json,
                                 log_file=layout.logs_dir / "orthanc.log", pid_file=pid_files(layout)[ORTHANC],
                                 die_with_parent=self.foreground)
        self.started.append((ORTHANC, orthanc.pid))
        try:
            await orthanc.wait_ready_async(READY_TIMEOUT)
        except OrthancError as error:
            raise OrthancError(error.message, hint=f"see {orthanc.log_file}") from None
        async with httpx.AsyncClient(timeout=5.0, trust_env=False) as client:
            anonymous = await client.get(f"{orthanc.url}/system")
        if anonymous.status_code != 403:
            raise OrthancError(f"Orthanc answered a request without credentials with {anonymous.status_code}, not "
                               "403: the share filter is not active; it was stopped", hint=f"see {orthanc.log_file}")
        self.progress(ORTHANC, Phase.DONE, f"ready (pid {orthanc.pid})", started)
        self.report.actions.append(f"Orthanc started on 127.0.0.1:{site.http_port} (pid {orthanc.pid})")
        return orthanc.pid

    async def nginx(self, pid: int | None, changed: bool) -> int:
        site, layout = self.site, self.site.layout
        log = layout.logs_dir / "nginx-stderr.log"
        if pid is not None and not changed:
            self.report.actions.append(f"nginx already running (pid {pid})")
            return pid
        if pid is not None:
            os.kill(pid, signal.SIGHUP)  # reload: new workers on the new files, no dropped connection
            await asyncio.sleep(0.3)
            await self._ready(pid, log)
            self.report.actions.append(f"nginx (pid {pid}) reloaded: its files changed")
            return pid
        address, _, port = site.listen.rpartition(":")
        if not _port_free(address.strip("[]"), int(port)):
            raise ConfigurationError(f"{self.where('listen')}: {site.listen} is in use", hint="stop what listens "
                                     "there, or choose another address (orthanc.listen) or port (orthanc.public_url)")
        started = time.monotonic()
        self.progress(NGINX, Phase.STARTED, f"starting on {site.listen}")
        process = processes.spawn(nginx_argv(site), log_file=log, cwd=layout.root, die_with_parent=self.foreground)
        self.started.append((NGINX, process.pid))
        await self._ready(process.pid, log, process)
        self.progress(NGINX, Phase.DONE, f"ready (pid {process.pid})", started)
        self.report.actions.append(f"nginx started on {site.listen} (pid {process.pid})")
        return process.pid

    async def _ready(self, pid: int, log: Path, process: subprocess.Popen[bytes] | None = None) -> None:
        site = self.site
        deadline = time.monotonic() + READY_TIMEOUT
        while not await _viewer_answers(site, self.connection):
            exited = process.poll() if process is not None else None
            if exited is not None or not processes.runs(pid, NGINX):
                status = f" with status {exited}" if exited is not None else ""
                raise ProvisionError(f"nginx stopped{status} before it was ready:\n{_tail(log)}",
                                     hint=f"is {site.listen} free? (orthanc.listen, orthanc.public_url)")
            if time.monotonic() > deadline:
                raise ProvisionError(f"nginx did not serve {site.public_url} within {READY_TIMEOUT:.0f} s:\n"
                                     f"{_tail(log)}")
            await asyncio.sleep(0.05)


async def up(site: Site, connection: Connection, *, admin_password: str, foreground: bool, sink: EventSink,
             where: Callable[[str], str]) -> StackReport:
    """Start (or restart, or leave alone) Orthanc and nginx for `site`; see the module's docstring."""
    layout = site.layout
    for directory in (layout.storage, layout.run_dir, layout.logs_dir, layout.tmp_dir, layout.shares_dir):
        directory.mkdir(parents=True, exist_ok=True)
    test = subprocess.run(nginx_argv(site, test=True), capture_output=True, text=True, check=False)
    if test.returncode != 0:
        raise ConfigurationError(f"nginx refuses {layout.nginx_conf}:\n{test.stderr.strip()}")
    state_file = layout.run_dir / "started.json"
    recorded: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        loaded = json.loads(state_file.read_text())
        recorded = loaded if isinstance(loaded, dict) else {}
    current = fingerprints(site)
    live = running(layout)
    start = _Start(site, connection, admin_password, foreground, sink, where)
    try:
        orthanc_pid = await start.orthanc(live.get(ORTHANC), recorded.get(ORTHANC) != current[ORTHANC])
        nginx_pid = await start.nginx(live.get(NGINX), recorded.get(NGINX) != current[NGINX])
    except BaseException:
        start.undo()  # a failed up leaves nothing of its own running
        raise
    state_file.write_text(json.dumps(current) + "\n")
    report = start.report
    report.notes.append(f"Viewer: {site.public_url}/viewer?StudyInstanceUIDs=<UID>&token=<token> "
                        "(`provision orthanc share PLAN --study UID` prints one)")
    if site.local_ca is not None:
        report.notes.append(f"Development CA to trust: {site.local_ca}")
    report.details = {"orthanc_pid": orthanc_pid, "nginx_pid": nginx_pid, "viewer": f"{site.public_url}/viewer"}
    if foreground:
        await _stay(layout, sink)
        report.actions += down(site, sink).actions
    else:
        report.notes.append("Stop it with `provision orthanc down PLAN`.")
    return report


async def _stay(layout: Layout, sink: EventSink) -> None:
    """Until Ctrl+C, SIGTERM, or one of the programs stops."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):  # not the main thread
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    sink(Event("orthanc", Phase.PROGRESS, "", "running in the foreground: Ctrl+C stops Orthanc and nginx"))
    try:
        while not stop.is_set() and len(running(layout)) == 2:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass
    finally:
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
            loop.remove_signal_handler(signal.SIGTERM)


def down(site: Site, sink: EventSink) -> StackReport:
    """Stop nginx, then Orthanc; nothing to do when neither runs."""
    layout = site.layout
    progress = _Progress(sink, "stop")
    report = StackReport()
    live = running(layout)
    for name, sig, timeout in ((NGINX, signal.SIGQUIT, NGINX_STOP_TIMEOUT),
                               (ORTHANC, signal.SIGTERM, ORTHANC_STOP_TIMEOUT)):
        pid = live.get(name)
        if pid is None:
            continue
        started = time.monotonic()
        progress(name, Phase.STARTED, f"stopping pid {pid}")
        graceful = processes.stop(pid, name, sig=sig, timeout=timeout)
        elapsed = time.monotonic() - started
        progress(name, Phase.DONE, "stopped", started)
        report.actions.append(f"{name} (pid {pid}) stopped in {elapsed:.1f} s" + ("" if graceful else ", killed"))
    for path in (*pid_files(layout).values(), layout.run_dir / "started.json"):
        path.unlink(missing_ok=True)
    if not live:
        report.actions.append(f"Nothing was running for {layout.root}.")
    report.details = {"stopped": sorted(live)}
    return report
