"""Azure target figures against the sandbox: apply and destroy vs their critical paths for 1 to 200 access entries,
the no-change apply, and the long-running-operation poll schedule.

    .venv/bin/python bench/azure_bench.py [--latency-ms 50] [--dicom-seconds 3] [--sizes 1,10,50,200]
        [--concurrency N] [--lro-seconds 10] [--quick]

The sandbox runs in its own process (`provision sandbox serve`: it does not share this interpreter's lock, as a
cloud would not), adds `--latency-ms` to every request and takes `--dicom-seconds` to create a DICOM service (and
to delete a resource group). Every case is one CLI-like run: open a session, plan (read everything), apply (or
destroy_plan, destroy). Each prints wall / critical path, the requests the sandbox saw and the peak number of
requests in flight (from the sandbox's request log: arrival time and duration of each). Prints numbers, asserts
nothing (timings on shared machines are not test material).

Critical path: the least time any client could take. Every resource needs a minimum number of sequential
requests (`MIN_REQUESTS`: e.g. a resource group costs a token, a GET that finds it missing, and a PUT; a DICOM
service its PUT, one status poll after completion and the final GET, plus the creation time itself). The
critical path is the longest chain through the plan's real dependency graph of those costs. Destroy's critical
path: the reads that prove what the plan owns (one GET per resource along the dependency chain, after a token),
the listing of the group's contents, then the longest chain of deletes (`MIN_DELETE_REQUESTS`; what the group's
own delete takes along costs nothing, the group costs its DELETE, the deletion time, one poll and the GET that
finds it gone).

Plans of N access entries are the bundled plan with `access` replaced by N sandbox test users
(`userK@contoso.com`, the sandbox's `test_users`) with DICOM Data Reader, and their own names.

The throttled part: 30 access entries applied with the sandbox's ARM throttling on and a write bucket smaller
than ARM's (10 at once, 8 per second: a subscription other clients spend from), at concurrency 8 and 64: wall,
writes refused with 429, how often the engine's window was cut and how small it became. Raising the concurrency
should not make it slower.

The LRO part: the schedule (`provision.core.polling`) simulated for operations of 1 s to 30 min (pure arithmetic:
a poll at each scheduled time, the operation noticed at the first poll at or after its end; the round trip of a
poll comes on top), printing the worst lateness as a share of the operation's duration and the polls it costs;
then one real DICOM create of `--lro-seconds` against the sandbox, its lateness read from the request log.
`--quick` measures sizes 1 and 10 only and skips the real LRO run.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gc_bench import served  # noqa: E402

from provision.azure import open_session  # noqa: E402
from provision.cli.target import connection_of  # noqa: E402
from provision.core import Engine, Resource  # noqa: E402
from provision.core.defaults import DEFAULT_CONCURRENCY  # noqa: E402
from provision.core.polling import lateness, poll_times  # noqa: E402
from provision.plan import load_plan, parse_plan  # noqa: E402
from provision.sandbox import SandboxControl  # noqa: E402

PLAYBOOK = ROOT / "playbooks" / "azure-ohif.yaml"

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

#: requests a minimal client must send one after another to delete each kind (after reading it), when the group's
#: delete does not take it along; 0: nothing to delete (a reference, or it goes with its parent)
MIN_DELETE_REQUESTS = {
    "azure.resource_group": 4,  # list its contents, DELETE (202), one poll once deleted, GET (404); + deletion time
    "azure.workspace": 3,  # DELETE, poll, GET (404)
    "azure.dicom_service": 3,
    "azure.dicom_api_principal": 0,
    "azure.app": 2,  # DELETE, GET (404): its service principal and grants go with it
    "azure.app_principal": 0,
    "azure.admin_consent": 0,
    "azure.user": 0,
    "azure.group": 0,
    "azure.service_principal": 0,
    "azure.role_definition": 0,
    "azure.role_assignment": 0,  # scoped inside the group: goes with it
}

#: operation durations the schedule is simulated for (seconds)
LRO_DURATIONS = (10.0, 60.0, 360.0, 1200.0)


def kind_of(resource: Resource) -> str:
    return resource.address.split("[", 1)[0]


def longest_chain(resources: list[Resource], cost: dict[str, float]) -> float:
    """The longest path through the dependency graph, each resource costing `cost[address]`."""
    by_address = {r.address: r for r in resources}
    finish: dict[str, float] = {}

    def done(address: str) -> float:
        if address not in finish:
            deps = by_address[address].depends_on
            finish[address] = cost[address] + max((done(dep) for dep in deps), default=0.0)
        return finish[address]

    return max(done(address) for address in by_address)


def apply_critical_path(resources: list[Resource], latency: float, dicom_seconds: float) -> float:
    return longest_chain(resources, {
        r.address: MIN_REQUESTS[kind_of(r)] * latency + (dicom_seconds if kind_of(r) == "azure.dicom_service" else 0)
        for r in resources})


def destroy_critical_path(resources: list[Resource], latency: float, group_seconds: float) -> float:
    token = latency  # one token per API before the first read; both are fetched concurrently
    reads = token + longest_chain(resources, {r.address: latency for r in resources})
    deletes = max(MIN_DELETE_REQUESTS[kind_of(r)] * latency + (group_seconds if kind_of(r) == "azure.resource_group"
                                                               else 0) for r in resources)
    return reads + deletes


def peak_in_flight(log: list[dict[str, Any]]) -> int:
    """The most requests the sandbox was handling at once (each from its arrival for its duration)."""
    moments: list[tuple[float, int]] = []
    for entry in log:
        start = datetime.fromisoformat(entry["time"].replace("Z", "+00:00")).timestamp()
        moments += [(start, 1), (start + entry["duration_ms"] / 1000, -1)]
    peak = current = 0
    for _, step in sorted(moments):  # at equal times an end (-1) sorts before a start
        current += step
        peak = max(peak, current)
    return peak


def plan_with_entries(entries: int, name: str = "") -> Any:
    """The bundled plan with `entries` test users as its access list, under names of its own (`name`, else from
    the number of entries)."""
    name = name or str(entries)
    text = PLAYBOOK.read_text()
    head, _, tail = text.partition("  access:\n")
    rest = tail[tail.index("\n  tags:"):]
    access = "".join(f"    - user: user{k}@contoso.com\n      role: DICOM Data Reader\n" for k in range(1, entries + 1))
    text = (head + "  access:\n" + access + rest).replace("name: ohif-demo", f"name: bench-{name}")
    text = text.replace("rg-ohif-demo", f"rg-bench-{name}").replace("unique_name: ohif-viewer",
                                                                    f"unique_name: bench-viewer-{name}")
    text = text.replace("name: ohifws", f"name: benchws{name.replace('-', '')}")
    return parse_plan(text, f"bench-{name}.yaml", env={})


class Run:
    """One CLI-like run's figures."""

    def __init__(self, wall: float, log: list[dict[str, Any]], resources: list[Resource], changed: int,
                 engine: Engine) -> None:
        self.wall, self.log, self.resources, self.changed = wall, log, resources, changed
        self.engine = engine

    @property
    def requests(self) -> int:
        return len(self.log)

    @property
    def peak(self) -> int:
        return peak_in_flight(self.log)


async def run_once(plan: Any, info: Any, control: SandboxControl, action: str, concurrency: int) -> Run:
    control.clear_log()
    started = time.perf_counter()
    session = await open_session(plan, connection_of(info))
    try:
        engine = Engine(session.resources, concurrency=concurrency)
        if action == "apply":
            outcome = await engine.apply(await engine.plan())
            session.ohif(outcome.outputs)
        else:
            outcome = await engine.destroy(await engine.destroy_plan())
        wall = time.perf_counter() - started
    finally:
        await session.aclose()
    return Run(wall, [e for e in control.log() if not str(e["path"]).startswith("/_sandbox")],
               session.resources, len(outcome.done), engine)


def measure(label: str, plan: Any, info: Any, control: SandboxControl, args: argparse.Namespace) -> dict[str, Any]:
    latency = args.latency_ms / 1000
    fresh = asyncio.run(run_once(plan, info, control, "apply", args.concurrency))
    again = asyncio.run(run_once(plan, info, control, "apply", args.concurrency))
    gone = asyncio.run(run_once(plan, info, control, "destroy", args.concurrency))
    ideal = apply_critical_path(fresh.resources, latency, args.dicom_seconds)
    ideal_destroy = destroy_critical_path(gone.resources, latency, args.dicom_seconds)
    tokens = sum(1 for e in again.log if str(e["path"]).endswith("/oauth2/v2.0/token"))
    writes = sum(1 for e in again.log if e["method"] not in ("GET", "HEAD") and "/oauth2/" not in e["path"])
    print(f"{label:<22} {len(fresh.resources):>4} resources")
    print(f"  fresh apply   {fresh.wall:6.2f} s / {ideal:5.2f} s = {fresh.wall / ideal:4.2f}x  "
          f"{fresh.requests:4} requests, peak {fresh.peak:3} in flight, {fresh.changed} changes")
    print(f"  no-change     {again.wall:6.2f} s             {again.requests:4} requests "
          f"({again.requests - tokens} reads for {len(again.resources)} resources + {tokens} token, {writes} writes)")
    print(f"  destroy       {gone.wall:6.2f} s / {ideal_destroy:5.2f} s = {gone.wall / ideal_destroy:4.2f}x  "
          f"{gone.requests:4} requests, peak {gone.peak:3} in flight, {gone.changed} deleted")
    return {"apply": fresh.wall / ideal, "destroy": gone.wall / ideal_destroy, "converged": again.requests}


#: the throttled case: this many access entries against a write bucket smaller than ARM's (a subscription other
#: clients spend from too), at each of these concurrencies
THROTTLED_ENTRIES = 30
THROTTLED_WRITES = {"burst": 10, "rate": 8}
THROTTLED_CONCURRENCY = (8, 64)


def under_throttling(info: Any, control: SandboxControl) -> dict[int, float]:
    """Apply with the sandbox's ARM throttling on: wall, 429s and the gate's smallest window per concurrency. The
    client assumes ARM's 200 / 10 per second; only `x-ms-ratelimit-remaining-*` and 429s tell it about less."""
    walls: dict[int, float] = {}
    print(f"throttled: {THROTTLED_ENTRIES} access entries, ARM writes {THROTTLED_WRITES['burst']} at once refilled "
          f"at {THROTTLED_WRITES['rate']} per second")
    for concurrency in THROTTLED_CONCURRENCY:
        plan = plan_with_entries(THROTTLED_ENTRIES, f"throttled-{concurrency}")  # a fresh one each: no destroy
        control.throttling(enabled=True, limits={"writes": THROTTLED_WRITES})
        try:
            run = asyncio.run(run_once(plan, info, control, "apply", concurrency))
            refused = control.throttling()["throttled"]["writes"]
        finally:
            control.throttling(enabled=False, defaults=True)
        gate = run.engine.gate
        walls[concurrency] = run.wall
        print(f"  concurrency {concurrency:>2}  {run.wall:6.2f} s  {refused:3} writes refused (429), "
              f"window cut {gate.cuts} times, smallest {gate.lowest}")
    return walls


def simulate_schedule() -> None:
    """The schedule's lateness and cost, by arithmetic (no waiting)."""
    worst = max(lateness(d) for d in _durations(1.0, 1800.0))
    print(f"LRO poll schedule (simulated): worst lateness over 1 s..30 min {worst:.2%} of the operation's duration "
          "(plus one poll round trip)")
    for duration in LRO_DURATIONS:
        polls = len(poll_times(duration))
        near = max(lateness(d) for d in _durations(duration * 0.9, duration))
        print(f"  {_human(duration):>6}: {polls:4} polls, {lateness(duration):5.2%} late at exactly {_human(duration)}"
              f", worst {near:5.2%} for operations of {_human(duration * 0.9)}..{_human(duration)}")


def _durations(low: float, high: float) -> list[float]:
    """Durations just after each scheduled poll in [low, high] (where lateness peaks), and the ends."""
    return [low, high] + [t + 1e-6 for t in poll_times(high) if low <= t < high]


def _human(seconds: float) -> str:
    return f"{seconds:g} s" if seconds < 60 else f"{seconds / 60:g} min"


def real_lro(info: Any, control: SandboxControl, seconds: float, concurrency: int) -> None:
    """One DICOM create taking `seconds`: when it ended and when the client's poll saw it (an upper bound)."""
    control.configure(lro_seconds=seconds)
    plan = plan_with_entries(1)
    run = asyncio.run(run_once(plan, info, control, "apply", concurrency))
    asyncio.run(run_once(plan, info, control, "destroy", concurrency))
    put = next(e for e in run.log if e["method"] == "PUT" and "/dicomservices/" in e["path"].lower())
    polls = [e for e in run.log if e["method"] == "GET" and "/operationresults/" in e["path"].lower()]
    # the sandbox starts the operation while it handles the PUT: it ended `seconds` after a moment between the PUT's
    # arrival and its answer; taking the arrival makes the lateness an upper bound. The last poll is the one that
    # saw it finished.
    ended = _at(put) + seconds
    seen = _at(polls[-1]) + polls[-1]["duration_ms"] / 1000
    print(f"LRO real run (sandbox, {seconds:g} s DICOM create, {control.config()['latency_ms']:g} ms latency): "
          f"noticed {seen - ended:.2f} s late ({(seen - ended) / seconds:.1%}) with {len(polls)} polls")


def _at(entry: dict[str, Any]) -> float:
    return datetime.fromisoformat(entry["time"].replace("Z", "+00:00")).timestamp()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--dicom-seconds", type=float, default=3.0)
    parser.add_argument("--sizes", default="1,10,50,200", help="access-entry counts, comma-separated")
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, help="as provision --concurrency")
    parser.add_argument("--lro-seconds", type=float, default=10.0, help="the real LRO run's duration (0: skip it)")
    parser.add_argument("--quick", action="store_true", help="sizes 1 and 10, no real LRO run")
    args = parser.parse_args()
    sizes = [1, 10] if args.quick else [int(s) for s in args.sizes.split(",") if s]

    simulate_schedule()
    with (tempfile.TemporaryDirectory() as state, served(state, args.dicom_seconds, args.latency_ms) as info,
          SandboxControl(info) as control):
        control.configure(test_users=max([*sizes, THROTTLED_ENTRIES]))
        # warm-up: imports and the first TLS handshake are not what this measures
        asyncio.run(run_once(load_plan(ROOT / "playbooks" / "azure-ephemeral.yaml", env={"PR_NUMBER": "0"}),
                             info, control, "apply", args.concurrency))
        print(f"sandbox (own process): {args.latency_ms:g} ms per request, DICOM creation and resource group "
              f"deletion {args.dicom_seconds:g} s; concurrency {args.concurrency}")
        figures = {"bundled": measure(f"bundled {PLAYBOOK.name}", load_plan(PLAYBOOK, env={}), info, control,
                                      args)}
        for size in sizes:
            figures[size] = measure(f"{size} access entries", plan_with_entries(size), info, control, args)
        if not args.quick:
            throttled = under_throttling(info, control)
        if args.lro_seconds > 0 and not args.quick:
            real_lro(info, control, args.lro_seconds, args.concurrency)
    print("summary: fresh apply bundled {:.2f}x".format(figures["bundled"]["apply"])
          + (" | 50 entries {:.2f}x".format(figures[50]["apply"]) if 50 in figures else "")
          + " | destroy bundled {:.2f}x".format(figures["bundled"]["destroy"])
          + " | converged apply {} requests".format(figures["bundled"]["converged"])
          + ("" if args.quick else f" | throttled: 64 vs 8 {throttled[64] / throttled[8]:.2f}x"))


if __name__ == "__main__":
    main()
