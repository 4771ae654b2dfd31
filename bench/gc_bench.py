"""`provision gc` against the sandbox with ARM throttling on: 50 pull-request environments reaped at once, compared
with reaping one.

    .venv/bin/python bench/gc_bench.py [--environments 50] [--lro-seconds 3] [--latency-ms 20] [--concurrency 50]

1. A sandbox in its own process (`provision sandbox serve`, so that it does not share gc's interpreter
   lock, as a cloud would not) with `--lro-seconds` long-running operations, `--latency-ms` per request, and ARM
   throttling on with Azure's limits (reads 250 burst / 25 per s, writes and deletes 200 / 10 per s).
2. One environment (playbooks/azure-ephemeral.yaml, PR_NUMBER=1000): what `provision azure destroy` takes for it,
   then, re-created, what `provision gc --older-than 0s --yes` takes when it is the only one.
3. `--environments` environments created (10 applies at a time, throttled as well), buckets refilled (as the
   next night would find them), then one `gc --older-than 0s --yes` over all of them.

Prints gc's wall time for all of them divided by its time for one (the target is at most 1.5), and the
429s absorbed (counted by the sandbox, and the ones gc retried itself; LRO polls absorb theirs inside the
poller). Asserts nothing: timings on shared machines are not test material.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from provision.azure import open_session  # noqa: E402
from provision.azure.gc import gc_places  # noqa: E402
from provision.cli.target import connection_of  # noqa: E402
from provision.core import Engine  # noqa: E402
from provision.core.commands import GcCall  # noqa: E402
from provision.core.gc import collect  # noqa: E402
from provision.plan import load_plan  # noqa: E402
from provision.sandbox import SandboxInfo  # noqa: E402

PLAYBOOK = ROOT / "playbooks/azure-ephemeral.yaml"


@contextlib.contextmanager
def served(state: str, lro_seconds: float, latency_ms: float) -> Iterator[SandboxInfo]:
    """`provision sandbox serve` in a child process; its info once it accepts connections."""
    process = subprocess.Popen(
        [sys.executable, "-c", "from provision.cli.sandbox import app; app()", "serve", "--state", state,
         "--lro-seconds", str(lro_seconds), "--latency-ms", str(latency_ms)],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        yield SandboxInfo.from_dict(json.loads(process.stdout.readline()))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)


class Throttle:
    """The sandbox's /_sandbox/throttling."""

    def __init__(self, info: Any) -> None:
        self.http = httpx.Client(base_url=info.url, verify=ssl.create_default_context(cafile=info.ca_bundle))

    def on(self) -> None:
        """Azure's limits, full buckets, counters at zero."""
        self.http.post("/_sandbox/throttling", json={"enabled": True, "defaults": True}).raise_for_status()

    def counts(self) -> dict[str, Any]:
        return dict(self.http.get("/_sandbox/throttling").json())


async def run_plan(info: Any, pr: int, action: str = "apply") -> None:
    plan = load_plan(PLAYBOOK, env={"PR_NUMBER": str(pr)})
    session = await open_session(plan, connection_of(info))
    try:
        engine = Engine(session.resources)
        await (engine.apply() if action == "apply" else engine.destroy())
    finally:
        await session.aclose()


async def create(info: Any, numbers: list[int], at_once: int) -> None:
    gate = asyncio.Semaphore(at_once)

    async def one(pr: int) -> None:
        async with gate:
            await run_plan(info, pr)

    await asyncio.gather(*(one(pr) for pr in numbers))


async def reap(info: Any, concurrency: int) -> tuple[float, Any]:
    started = time.monotonic()
    inventories = gc_places(GcCall(connection_of(info)), azure_subscription=None, azure_cloud="public")
    try:
        result = await collect(inventories, older_than=0, env_prefix="pr-", plan=None, delete=True,
                               concurrency=concurrency)
    finally:
        for inventory in inventories:
            await inventory.aclose()
    return time.monotonic() - started, result


def since(after: dict[str, Any], before: dict[str, Any] | None, key: str) -> dict[str, int]:
    return {kind: n - (before[key][kind] if before else 0) for kind, n in after[key].items()}


def throttled(spent: dict[str, int]) -> str:
    return f"{sum(spent.values())} (reads {spent['reads']}, writes {spent['writes']}, deletes {spent['deletes']})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--environments", type=int, default=50)
    parser.add_argument("--lro-seconds", type=float, default=3.0)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=50, help="provision gc --concurrency")
    parser.add_argument("--drained", action="store_true",
                        help="reap right after creating (buckets as the creation left them) instead of full buckets")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as state, served(state, args.lro_seconds, args.latency_ms) as info:
        throttle = Throttle(info)
        throttle.on()
        print(f"sandbox (own process): LRO {args.lro_seconds:g} s, latency {args.latency_ms:g} ms/request, "
              "ARM throttling on (reads 250/25 s, writes 200/10 s, deletes 200/10 s)")

        asyncio.run(run_plan(info, 1000))
        started = time.monotonic()
        asyncio.run(run_plan(info, 1000, "destroy"))
        destroy_one = time.monotonic() - started
        print(f"one environment, provision azure destroy:         {destroy_one:6.2f} s")

        asyncio.run(run_plan(info, 1000))
        throttle.on()
        reap_one, result = asyncio.run(reap(info, args.concurrency))
        assert [r.status for r in result.reports] == ["deleted"], result.reports
        print(f"one environment, provision gc --older-than 0s --yes: {reap_one:6.2f} s")

        numbers = list(range(1, args.environments + 1))
        throttle.on()
        started = time.monotonic()
        asyncio.run(create(info, numbers, at_once=10))
        setup = time.monotonic() - started
        before = throttle.counts()
        print(f"{len(numbers)} environments created (10 applies at a time) in {setup:.1f} s; "
              f"429s absorbed: {throttled(since(before, None, 'throttled'))}")

        if not args.drained:
            throttle.on()  # the next night: full buckets, counters at zero
            before = throttle.counts()
        reap_all, result = asyncio.run(reap(info, args.concurrency))
        after = throttle.counts()
        admitted = since(after, before, "admitted")
        reports = result.reports or []
        failed = [r for r in reports if r.status != "deleted"]
        deleted = sum(r.deleted for r in reports)
        slowest = max((r.seconds for r in reports), default=0.0)
        print(f"{len(reports)} environments, provision gc --older-than 0s --yes --concurrency {args.concurrency}: "
              f"{reap_all:6.2f} s ({deleted} resources, {len(failed)} failed; slowest environment {slowest:.2f} s)")
        print(f"  ARM requests admitted: reads {admitted['reads']}, writes {admitted['writes']}, "
              f"deletes {admitted['deletes']}{' (buckets as the creation left them)' if args.drained else ''}")
        print(f"  429s absorbed: {throttled(since(after, before, 'throttled'))}; "
              f"retried by gc itself (the others inside LRO polling): {result.throttled}")
        print(f"gc wall time / one environment's teardown: {reap_all:.2f} / {reap_one:.2f} = "
              f"{reap_all / reap_one:.2f} (target <= 1.5); vs provision azure destroy of one: "
              f"{reap_all / destroy_one:.2f}")


if __name__ == "__main__":
    main()
