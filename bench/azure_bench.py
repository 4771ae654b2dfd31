"""Azure target figures against the sandbox: fresh apply vs its critical path, and a no-change apply.

    .venv/bin/python bench/azure_bench.py [--latency-ms 50] [--dicom-seconds 3] [--plan playbooks/azure-ohif.yaml]

The sandbox adds `--latency-ms` to every request and takes `--dicom-seconds` to create a DICOM service. Prints
numbers, asserts nothing (timings on shared machines are not test material).

Critical path: the least time any client could take. Every resource needs a minimum number of sequential
requests (table `MIN_REQUESTS`: e.g. a resource group costs a token, a GET that finds it missing, and a PUT;
a DICOM service its PUT, one status poll after completion and the final GET, plus the creation time itself).
The critical path is the longest chain through the plan's real dependency graph of those costs. A fresh
`apply` here is what `provision azure apply` runs: open a session, plan (read everything), apply.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from provision.azure import open_session  # noqa: E402
from provision.cli.target import connection_of  # noqa: E402
from provision.core import Engine, Resource  # noqa: E402
from provision.plan import load_plan  # noqa: E402
from provision.sandbox import start_sandbox  # noqa: E402

#: requests a minimal client must send one after another to create each kind of resource
MIN_REQUESTS = {
    "azure.resource_group": 3,  # token, GET (404), PUT
    "azure.workspace": 1,  # PUT (its parent was missing, so it cannot exist)
    "azure.dicom_service": 3,  # PUT, one poll once created, final GET
    "azure.dicom_api_principal": 2,  # token, GET
    "azure.app": 1,  # PATCH (uniqueName upsert)
    "azure.app_principal": 1,  # POST
    "azure.admin_consent": 1,  # POST
    "azure.user": 1,  # GET (the Graph token is already there at the earliest)
    "azure.group": 1,
    "azure.service_principal": 1,
    "azure.role_definition": 2,  # token, GET (ARM)
    "azure.role_assignment": 1,  # PUT
}


def critical_path(resources: list[Resource], latency: float, dicom_seconds: float) -> float:
    by_address = {r.address: r for r in resources}
    finish: dict[str, float] = {}

    def done(address: str) -> float:
        if address not in finish:
            resource = by_address[address]
            kind = address.split("[", 1)[0]
            cost = MIN_REQUESTS[kind] * latency + (dicom_seconds if kind == "azure.dicom_service" else 0.0)
            finish[address] = cost + max((done(dep) for dep in resource.depends_on), default=0.0)
        return finish[address]

    return max(done(address) for address in by_address)


class Counter:
    def __init__(self, running: Any) -> None:
        import ssl

        import httpx

        context = ssl.create_default_context(cafile=running.info.ca_bundle)
        self.http = httpx.Client(base_url=running.info.url, verify=context, timeout=30)

    def clear(self) -> None:
        self.http.delete("/_sandbox/log").raise_for_status()

    def log(self) -> list[dict[str, Any]]:
        return [e for e in self.http.get("/_sandbox/log").raise_for_status().json()
                if not str(e["path"]).startswith("/_sandbox")]


async def apply_once(plan: Any, info: Any) -> tuple[float, list[Resource], int]:
    """(wall time, resources, actions that changed something) of one CLI-like `apply`."""
    started = time.perf_counter()
    session = await open_session(plan, connection_of(info))
    try:
        engine = Engine(session.resources)
        planned = await engine.plan()
        outcome = await engine.apply(planned)
        session.ohif(outcome.outputs)
        return time.perf_counter() - started, session.resources, len(outcome.done)
    finally:
        await session.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--dicom-seconds", type=float, default=3.0)
    parser.add_argument("--plan", type=Path, default=ROOT / "playbooks" / "azure-ohif.yaml")
    args = parser.parse_args()

    plan = load_plan(args.plan, env={})
    latency = args.latency_ms / 1000
    with tempfile.TemporaryDirectory() as state:
        running = start_sandbox(state, latency_ms=args.latency_ms, lro_seconds=args.dicom_seconds)
        try:
            counter = Counter(running)
            # warm-up: imports and the first TLS handshake are not what this measures
            asyncio.run(apply_once(load_plan(ROOT / "playbooks" / "azure-ephemeral.yaml",
                                             env={"PR_NUMBER": "0"}), running.info))
            counter.clear()

            fresh, resources, changed = asyncio.run(apply_once(plan, running.info))
            fresh_requests = len(counter.log())
            ideal = critical_path(resources, latency, args.dicom_seconds)
            counter.clear()

            again, _, changed_again = asyncio.run(apply_once(plan, running.info))
            log = counter.log()
        finally:
            running.stop()

    tokens = [e for e in log if str(e["path"]).endswith("/oauth2/v2.0/token")]
    writes = [e for e in log if e["method"] not in ("GET", "HEAD") and e not in tokens]
    print(f"sandbox: {args.latency_ms:.0f} ms per request, DICOM creation {args.dicom_seconds:.1f} s; "
          f"plan {args.plan.name}: {len(resources)} resources")
    print(f"fresh apply       {fresh:6.2f} s  {changed} changes, {fresh_requests} requests")
    print(f"critical path     {ideal:6.2f} s  (minimum sequential requests x latency + DICOM creation)")
    print(f"ratio             {fresh / ideal:6.2f}    (target <= 1.3)")
    print(f"no-change apply   {again:6.2f} s  {changed_again} changes, {len(log)} requests: "
          f"{len(log) - len(tokens)} reads for {len(resources)} resources + {len(tokens)} token requests, "
          f"{len(writes)} writes")


if __name__ == "__main__":
    main()
