"""The crash lab: a sandbox of its own, `provision` run as a user runs it (a child process that can be killed
with SIGKILL, or the same command line in this process when it is not to be killed), the sandbox's hold fault to
stop the world right after the k-th committed write, and a census of what the world holds afterwards.

Tables go to the terminal (`pytest -s`) and to test-artifacts/crash/<name>.txt.
"""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from provision.cli.main import app
from provision.sandbox import RunningSandbox, SandboxControl, start_sandbox

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "crash"

#: long enough for a re-run to find an interrupted DICOM create or group delete still running, short enough
#: for the whole suite to fit the CI budget
LRO_SECONDS = 0.8
CONFIG: dict[str, Any] = {
    "latency_ms": 0, "lro_seconds": LRO_SECONDS, "principal_delay_seconds": 0, "principal_delay_strict": False,
    "dicom_sp": True, "graph_replication_seconds": 0, "graph_strict_uniqueness": True,
}


@dataclass
class Finished:
    """One `provision` command that ran to its end."""

    code: int
    #: stdout and stderr, as a terminal shows them
    output: str
    stdout: str


class Lab:
    def __init__(self, running: RunningSandbox, workdir: Path) -> None:
        self.running = running
        self.control = SandboxControl(running.info)
        self.workdir = workdir
        self.env = {"NO_COLOR": "1", "PROVISION_SANDBOX": str(Path(running.info.state_dir) / "sandbox.json")}

    def reset(self, **config: Any) -> None:
        self.control.clear_faults()
        self.control.configure(**{**CONFIG, **config})
        self.control.reset()
        self.control.clear_log()

    # -- running provision ----------------------------------------------------------------------------------

    def start(self, *args: str, name: str = "run") -> subprocess.Popen[bytes]:
        """`provision ARGS` in a child process (output to files in the work directory)."""
        with (self.workdir / f"{name}.out").open("wb") as out:  # the child keeps its own copy of the file
            return subprocess.Popen([sys.executable, "-m", "provision", *args], stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env={**os.environ, **self.env}, cwd=self.workdir)

    def output_of(self, name: str) -> str:
        return (self.workdir / f"{name}.out").read_text(errors="replace")

    def run(self, *args: str) -> Finished:
        """`provision ARGS` in this process: the same command line, no interpreter start-up."""
        result = CliRunner().invoke(app, list(args), env=self.env, catch_exceptions=False)
        return Finished(result.exit_code, result.output, result.stdout)

    def kill_after_write(self, k: int, *args: str, method: str | None = None,
                         path_regex: str | None = None) -> dict[str, Any] | None:
        """Start `provision ARGS`, stop the world right after its k-th committed write (of those that match
        `method` and `path_regex`), SIGKILL it, and let the world go on. Returns the log entry of the k-th write
        (None: the run made fewer than k writes)."""
        rule = self.control.add_fault("hold", after=True, skip=k - 1, method=method, path_regex=path_regex)
        child = self.start(*args, name=f"killed-{k}")
        fired = None
        try:
            while fired is None and child.poll() is None:
                fired = self.control.wait_fired(rule["id"], timeout=0.5)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
            self.control.remove_fault(rule["id"])  # what the killed run sent afterwards is dropped unprocessed
        if fired is None:
            return None
        return next(e for e in reversed(self.control.log()) if e.get("fault") == rule["id"] and e["committed"])

    def committed(self) -> list[dict[str, Any]]:
        return [e for e in self.control.log() if e["committed"]]

    def remove_principal(self, app_unique_name: str) -> None:
        """What deleting the app's service principal in the portal leaves: the app without it (its consent goes
        with it), and none of its role assignments (deleted first, as the portal asks)."""
        info = self.running.info
        with httpx.Client(base_url=info.url, verify=ssl.create_default_context(cafile=info.ca_bundle),
                          timeout=30) as http:

            def bearer(resource: str) -> dict[str, str]:
                answer = http.post(f"/{info.tenant_id}/oauth2/v2.0/token", data={
                    "grant_type": "client_credentials", "client_id": info.client_id,
                    "client_secret": info.client_secret, "scope": f"{resource}/.default"})
                return {"Authorization": f"Bearer {answer.raise_for_status().json()['access_token']}"}

            graph, arm = bearer("https://graph.microsoft.com"), bearer("https://management.azure.com")
            app = http.get(f"/v1.0/applications(uniqueName='{app_unique_name}')", headers=graph).json()
            principals = http.get("/v1.0/servicePrincipals", headers=graph,
                                  params={"$filter": f"appId eq '{app['appId']}'"}).json()["value"]
            for principal in principals:
                listed = http.get(f"/subscriptions/{info.subscription_id}/providers/Microsoft.Authorization/"
                                  "roleAssignments", headers=arm, params={
                                      "api-version": "2022-04-01", "$filter": f"principalId eq '{principal['id']}'"})
                for assignment in listed.raise_for_status().json()["value"]:
                    http.delete(assignment["id"], headers=arm, params={"api-version": "2022-04-01"}
                                ).raise_for_status()
                http.delete(f"/v1.0/servicePrincipals/{principal['id']}", headers=graph).raise_for_status()

    # -- what the world holds -------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return self.running.world.snapshot()


def write_name(entry: dict[str, Any]) -> str:
    """`PUT dicomservices/ohif-dicom`: the method and the last two segments of the path."""
    path = entry["path"].replace("/v1.0/", "")
    kind, _, name = "/".join(path.rstrip("/").split("/")[-2:]).rpartition("/")
    if len(name) > 12 and kind in ("roleAssignments", "oauth2PermissionGrants", "servicePrincipals"):
        name = name[:8] + "…"  # an id
    return f"{entry['method']} {kind}/{name}" if kind else f"{entry['method']} {name}"


def duplicates(state: dict[str, Any]) -> list[str]:
    """Every duplicate or orphan in the world: apps by uniqueName and displayName, principals by appId, grants by
    client (and resource), role assignments by scope + principal + role, assignments and grants to principals
    that no longer exist."""
    directory = state["directory"]
    apps = list(directory["applications"].values())
    principals = directory["servicePrincipals"]
    grants = list(directory["oauth2PermissionGrants"].values())
    known = {*principals, *directory["users"], *directory["groups"]}
    found: list[str] = []

    def repeated(what: str, keys: Sequence[Any]) -> None:
        found.extend(f"{what} {key!r} x{n}" for key, n in Counter(keys).items() if n > 1 and key is not None)

    repeated("app uniqueName", [(a.get("uniqueName") or "").lower() or None for a in apps])
    repeated("app displayName", [a.get("displayName") for a in apps])
    repeated("principal of app", [p["appId"].lower() for p in principals.values()])
    repeated("grant of client", [(g["clientId"], g["resourceId"], g["consentType"]) for g in grants])
    assignments = list(state["role_assignments"].values())
    repeated("assignment", [(a["scope"].lower(), a["principalId"].lower(), a["roleDefinition"].lower())
                            for a in assignments])
    found += [f"assignment to missing principal {a['principalId']}" for a in assignments
              if a["principalId"].lower() not in known]
    found += [f"grant of missing client {g['clientId']}" for g in grants if g["clientId"] not in principals]
    return found


def environment(state: dict[str, Any], subscription: str, *, app: str, group: str, workspace: str,
                dicom: str) -> dict[str, Any]:
    """What one environment holds: its app, principals, grants, assignments, group, workspace, DICOM service."""
    directory = state["directory"]
    apps = [a for a in directory["applications"].values() if (a.get("uniqueName") or "").lower() == app.lower()]
    app_ids = {a["appId"].lower() for a in apps}
    principals = [p for p in directory["servicePrincipals"].values() if p["appId"].lower() in app_ids]
    principal_ids = {p["id"] for p in principals}
    grants = [g for g in directory["oauth2PermissionGrants"].values() if g["clientId"] in principal_ids]
    group_id = f"/subscriptions/{subscription}/resourcegroups/{group}".lower()
    workspace_id = f"{group_id}/providers/microsoft.healthcareapis/workspaces/{workspace}"
    dicom_id = f"{workspace_id}/dicomservices/{dicom}"
    service = state["arm"].get(dicom_id)
    return {
        "apps": len(apps), "principals": len(principals), "grants": len(grants),
        "assignments": sum(1 for a in state["role_assignments"].values() if a["scope"].lower() == dicom_id),
        "group": group_id in state["arm"], "workspace": workspace_id in state["arm"],
        "dicom": None if service is None else (service["properties"]["provisioningState"]
                                               + ("" if service.get("_ready") else " (no serviceUrl)")),
    }


def table(name: str, title: str, header: Sequence[str], rows: Sequence[Sequence[Any]], command: str) -> str:
    """A plain-text table, printed and written to test-artifacts/crash/<name>.txt."""
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [title, f"reproduce: {command}", ""]
    for index, row in enumerate(cells):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    text = "\n".join(lines) + "\n"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"{name}.txt").write_text(text)
    print("\n" + text)
    return text


@pytest.fixture(scope="module")
def crash_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    with start_sandbox(tmp_path_factory.mktemp("crash-sandbox"), lro_seconds=LRO_SECONDS) as running:
        yield running


@pytest.fixture
def lab(crash_sandbox: RunningSandbox, tmp_path: Path) -> Iterator[Lab]:
    lab = Lab(crash_sandbox, tmp_path)
    lab.reset()
    try:
        yield lab
    finally:
        lab.control.clear_faults()
        lab.control.close()
