"""App assembly, TLS and the background-thread runner of the sandbox."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

from starlette.applications import Starlette

from provision.registry import TARGETS

from . import control
from .info import INFO_FILE, SandboxInfo
from .tokens import TokenSigner, ensure_tls
from .world import Config, World

STARTUP_TIMEOUT = 15.0

# The registered targets (provision.registry): each whose cloud the sandbox emulates has a subpackage
# `provision.sandbox.<name>` that exposes `routes(world, signer) -> list[BaseRoute]` and, optionally,
# `control_routes(world) -> list[BaseRoute]` (mounted under /_sandbox, outside log/faults/latency) and
# `shutdown(world)` (when the sandbox stops). A target without a sandbox subpackage is skipped.
EMULATED_TARGETS = tuple(TARGETS)


def emulated_targets(names: Iterable[str] = EMULATED_TARGETS) -> list[ModuleType]:
    """The sandbox subpackages of the named targets, in that order (mount order does not matter)."""
    found = []
    for name in names:
        module = f"{__package__}.{name}"
        if importlib.util.find_spec(module) is not None:
            found.append(importlib.import_module(module))
    return found


def build_app(world: World, signer: TokenSigner, targets: Sequence[ModuleType],
              state: control.ControlState | None = None) -> control.SandboxApp:
    state = state or control.ControlState(seed=world.config.fault_seed)
    api = Starlette(routes=[r for t in targets for r in t.routes(world, signer)])
    extra_control = [r for t in targets if hasattr(t, "control_routes") for r in t.control_routes(world)]
    ctl = Starlette(routes=[*control.routes(world, state), *extra_control])
    return control.SandboxApp(api, ctl, world, state)


def _write_info(path: Path, info: SandboxInfo) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(info.to_json() + "\n", encoding="utf-8")
    os.replace(tmp, path)


class RunningSandbox:
    """A sandbox served by uvicorn on its own event loop in a background thread."""

    def __init__(self, info: SandboxInfo, world: World, app: control.SandboxApp, server: Any,
                 thread: threading.Thread, targets: Sequence[ModuleType]) -> None:
        self.info = info
        self.world = world
        self.app = app
        self.targets = targets
        self._server = server
        self._thread = thread

    @property
    def url(self) -> str:
        return self.info.url

    @property
    def config(self) -> Config:
        return self.world.config

    def stop(self, timeout: float = 10.0) -> None:
        """Finish in-flight requests, close the socket, and save the world."""
        if not self._thread.is_alive():
            return
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():  # pragma: no cover - stubborn keep-alive connections
            self._server.force_exit = True
            self._thread.join(timeout)
        for target in self.targets:  # processes a target started (the Orthancs behind Azure's DICOM services)
            if hasattr(target, "shutdown"):
                target.shutdown(self.world)
        self.world.save_if_dirty()

    def wait(self) -> None:
        """Block until the server stops (used by `provision sandbox serve`)."""
        while self._thread.is_alive():
            self._thread.join(0.5)

    def __enter__(self) -> RunningSandbox:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _server_class() -> type[Any]:
    import asyncio

    import uvicorn

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            # An idle keep-alive TLS connection would hold shutdown until the client answers close_notify
            # (or the graceful timeout passes); drop those at once. In-flight requests still complete.
            for connection in list(self.server_state.connections):
                cycle = getattr(connection, "cycle", None)
                transport = getattr(connection, "transport", None)
                if transport is not None and (cycle is None or cycle.response_complete):
                    transport.abort()
            await asyncio.sleep(0)
            await super().shutdown(sockets)

    return Server


def start_sandbox(
    state_dir: str | Path,
    *,
    port: int = 0,
    host: str = "127.0.0.1",
    latency_ms: float = 0.0,
    lro_seconds: float = 2.0,
    principal_delay_seconds: float = 0.0,
    principal_delay_strict: bool = False,
    dicom_sp: bool | None = None,
    fault_seed: int = 0,
) -> RunningSandbox:
    """Start a sandbox on `host:port` (0 = any free port) with its state in `state_dir`.

    Returns once the server accepts connections. `dicom_sp=None` keeps whatever the state holds (a new
    state gets the first-party DICOM service principal); True/False makes it present/absent.
    """
    import uvicorn

    _Server = _server_class()
    state_path = Path(state_dir).resolve()
    state_path.mkdir(parents=True, exist_ok=True)
    config = Config(latency_ms=latency_ms, lro_seconds=lro_seconds, principal_delay_seconds=principal_delay_seconds,
                    principal_delay_strict=principal_delay_strict, dicom_sp=dicom_sp, fault_seed=fault_seed)
    tls = ensure_tls(state_path)
    signer = TokenSigner.load_or_create(state_path)
    targets = emulated_targets()
    world = World(state_path, config, targets=targets)
    app = build_app(world, signer, targets)

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    bound_port = sock.getsockname()[1]
    uv_config = uvicorn.Config(
        app,
        ssl_certfile=str(tls.cert_file),
        ssl_keyfile=str(tls.key_file),
        log_config=None,
        log_level="warning",
        access_log=False,
        lifespan="off",
        proxy_headers=False,
        server_header=False,
        timeout_keep_alive=30,
        timeout_graceful_shutdown=5,
    )
    server = _Server(uv_config)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # pragma: no cover - surfaced to the caller below
            failure.append(exc)
        finally:
            with contextlib.suppress(OSError):
                sock.close()

    thread = threading.Thread(target=run, name=f"provision-sandbox:{bound_port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not server.started:
        if failure or not thread.is_alive():
            raise RuntimeError(f"sandbox failed to start: {failure[0] if failure else 'server exited'}")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("sandbox did not start in time")
        time.sleep(0.005)

    url_host = f"[{host}]" if ":" in host else host
    ident = world.identity
    info = SandboxInfo(
        url=f"https://{url_host}:{bound_port}",
        ca_bundle=str(tls.ca_bundle),
        tenant_id=ident.tenant_id,
        subscription_id=ident.subscription_id,
        client_id=ident.client_id,
        client_secret=ident.client_secret,
        state_dir=str(state_path),
    )
    _write_info(state_path / INFO_FILE, info)
    return RunningSandbox(info, world, app, server, thread, targets)
