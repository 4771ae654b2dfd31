"""Fixtures for the Azure target: a sandbox of its own (real SDKs over HTTPS, TLS verification on), plans built
from the playbooks, and a `Reconcile` helper that runs the engine the way one CLI invocation would."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from provision.azure import AzureSession, open_session
from provision.cli.target import connection_of
from provision.core import Engine, Event, Outcome, Plan
from provision.core.target import OhifResult
from provision.plan import load_plan
from provision.sandbox import RunningSandbox, start_sandbox

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOKS = ROOT / "playbooks"

#: what the sandbox runs with in these tests unless a test says otherwise
DEFAULT_CONFIG: dict[str, Any] = {
    "latency_ms": 0,
    "lro_seconds": 0.3,
    "principal_delay_seconds": 0,
    "principal_delay_strict": False,
    "graph_replication_seconds": 0,
    "graph_strict_uniqueness": True,
}


@pytest.fixture(scope="session")
def azure_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    running = start_sandbox(tmp_path_factory.mktemp("azure-sandbox"), lro_seconds=0.3)
    try:
        yield running
    finally:
        running.stop()


class Control:
    """The sandbox's control API (`/_sandbox/...`, see docs/sandbox.md) and what the tests ask of its state."""

    def __init__(self, running: RunningSandbox) -> None:
        self.running = running
        context = ssl.create_default_context(cafile=running.info.ca_bundle)
        self.http = httpx.Client(base_url=running.info.url, verify=context, timeout=30)

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(method, path, json=body)
        response.raise_for_status()
        return response.json() if response.content else None

    def log(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/_sandbox/log"))

    def clear_log(self) -> None:
        self._call("DELETE", "/_sandbox/log")

    def add_fault(self, status: int | str, **rule: Any) -> None:
        self._call("POST", "/_sandbox/faults", {"status": status, **rule})

    def clear_faults(self) -> None:
        self._call("DELETE", "/_sandbox/faults")

    def configure(self, **values: Any) -> None:
        self._call("POST", "/_sandbox/config", values)

    def fail_operations(self, resource_regex: str, **rule: Any) -> None:
        """The next ARM operation on a matching resource ends Failed (`/_sandbox/operation-failures`)."""
        self._call("POST", "/_sandbox/operation-failures", {"resource_regex": resource_regex, **rule})

    def reset(self) -> None:
        self._call("POST", "/_sandbox/reset")

    def api_log(self) -> list[dict[str, Any]]:
        return [entry for entry in self.log() if not str(entry["path"]).startswith("/_sandbox")]

    @staticmethod
    def is_token(entry: Mapping[str, Any]) -> bool:
        return str(entry["path"]).endswith("/oauth2/v2.0/token")

    def writes(self) -> list[dict[str, Any]]:
        """Every request that could change something (token requests excluded)."""
        return [e for e in self.api_log() if e["method"] not in ("GET", "HEAD") and not self.is_token(e)]

    def state(self) -> dict[str, Any]:
        return self.running.world.snapshot()

    def apps(self, unique_name: str) -> list[dict[str, Any]]:
        apps = self.state()["directory"]["applications"].values()
        return [a for a in apps if (a.get("uniqueName") or "").lower() == unique_name.lower()]

    def service_principals(self, app_id: str) -> list[dict[str, Any]]:
        principals = self.state()["directory"]["servicePrincipals"].values()
        return [p for p in principals if p["appId"].lower() == app_id.lower()]

    def grants(self, client_id: str) -> list[dict[str, Any]]:
        return [g for g in self.state()["directory"]["oauth2PermissionGrants"].values() if g["clientId"] == client_id]

    def arm(self, resource_id: str) -> dict[str, Any] | None:
        return self.state()["arm"].get(resource_id.lower())

    def assignments(self, scope: str) -> list[dict[str, Any]]:
        return [ra for ra in self.state()["role_assignments"].values() if ra["scope"].lower() == scope.lower()]


@pytest.fixture
def control(azure_sandbox: RunningSandbox) -> Iterator[Control]:
    """A clean sandbox world for each test (tenant, subscription and credentials stay)."""
    ctl = Control(azure_sandbox)
    try:
        ctl.clear_faults()
        ctl.configure(**DEFAULT_CONFIG, dicom_sp=True)
        ctl.reset()
        ctl.clear_log()
        yield ctl
    finally:
        ctl.clear_faults()
        ctl.configure(**DEFAULT_CONFIG)
        ctl.close()


@dataclass
class Result:
    plan: Plan
    outcome: Outcome | None = None
    ohif: OhifResult | None = None
    events: list[Event] = field(default_factory=list)

    def changes(self) -> dict[str, str]:
        """address -> action kind, for every step that changes something."""
        return {s.resource.address: s.action.kind for s in self.plan.steps if s.action.changes_anything}

    def step(self, address: str) -> Any:
        return next(s for s in self.plan.steps if s.resource.address == address)

    def messages(self, phase: str) -> list[str]:
        return [f"{e.address}: {e.message}" for e in self.events if e.phase.value == phase]


class Harness:
    """Runs plans the way one CLI invocation does: its own session, clients and tokens each time."""

    def __init__(self, control: Control) -> None:
        self.control = control
        self.info = control.running.info

    @staticmethod
    def playbook(name: str, **env: str) -> Any:
        """A playbook with `${VAR}` taken from `env` only (the developer's environment never leaks in)."""
        return load_plan(PLAYBOOKS / name, env=env)

    def run(
        self,
        plan: Any,
        action: str = "apply",
        *,
        adopt: bool = False,
        inspect: Callable[[AzureSession], Awaitable[Any]] | None = None,
    ) -> Result:
        return asyncio.run(self._run(plan, action, adopt, inspect))

    async def _run(
        self, plan: Any, action: str, adopt: bool, inspect: Callable[[AzureSession], Awaitable[Any]] | None
    ) -> Result:
        events: list[Event] = []
        session = await open_session(plan, connection_of(self.info))
        try:
            if inspect is not None:
                await inspect(session)
            engine = Engine(session.resources, on_event=events.append, adopt=adopt)
            if action == "destroy":
                planned = await engine.destroy_plan()
                return Result(planned, await engine.destroy(planned), events=events)
            planned = await engine.plan()
            if action == "plan":
                return Result(planned, events=events)
            if action == "output":
                return Result(planned, ohif=session.ohif(planned.outputs), events=events)
            outcome = await engine.apply(planned)
            return Result(planned, outcome, session.ohif(outcome.outputs), events=events)
        finally:
            await session.aclose()


@pytest.fixture
def azure(control: Control) -> Harness:
    return Harness(control)
