"""Sandbox figures: start-up time and GET throughput on loopback. Prints numbers, asserts nothing.

    .venv/bin/python bench/sandbox_bench.py [--seconds 3] [--clients 4]

Start-up is measured in-process (`start_sandbox`, cold = new state directory with key generation, warm = a
restart on existing state) and as a user sees it: from starting `provision sandbox serve --state DIR` to its
JSON line on stdout (interpreter and imports included). Throughput is measured against `provision sandbox
serve` in its own process (so the clients do not share the server's interpreter lock), with a few concurrent
keep-alive httpx clients sending authenticated ARM and Graph GETs over HTTPS with TLS verification on.
"""

from __future__ import annotations

import argparse
import json
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from provision.sandbox import SandboxInfo, start_sandbox


def startup(state: Path) -> tuple[float, float]:
    began = time.perf_counter()
    with start_sandbox(state):
        cold = time.perf_counter() - began
    began = time.perf_counter()
    with start_sandbox(state):
        warm = time.perf_counter() - began
    return cold, warm


def serve_to_json_line(state: Path, runs: int = 5) -> tuple[float, list[float]]:
    """Seconds from starting `provision sandbox serve --state DIR` (the console script, a new interpreter) to
    its JSON line on stdout: cold (new state directory), then warm restarts on the same state."""
    script = str(Path(sys.executable).with_name("provision"))
    times = []
    for _ in range(runs + 1):
        began = time.perf_counter()
        proc = subprocess.Popen([script, "sandbox", "serve", "--state", str(state)], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        assert proc.stdout is not None
        json.loads(proc.stdout.readline())
        times.append(time.perf_counter() - began)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    return times[0], times[1:]


def token(client: httpx.Client, info: SandboxInfo, resource: str) -> str:
    response = client.post(f"/{info.tenant_id}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": info.client_id, "client_secret": info.client_secret,
        "scope": f"{resource}/.default"})
    response.raise_for_status()
    return str(response.json()["access_token"])


def hammer(info: SandboxInfo, path: str, auth: str, seconds: float, clients: int) -> tuple[float, list[float]]:
    ctx = ssl.create_default_context(cafile=info.ca_bundle)
    counts = [0] * clients
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def worker(i: int) -> None:
        local: list[float] = []
        with httpx.Client(base_url=info.url, verify=ctx, headers={"Authorization": f"Bearer {auth}"}) as c:
            while time.perf_counter() < stop:
                t = time.perf_counter()
                c.get(path).raise_for_status()
                local.append(time.perf_counter() - t)
                counts[i] += 1
        with lock:
            latencies.extend(local)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - began), latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        cold, warm = startup(Path(tmp) / "startup")
        print(f"start-up: cold {cold * 1000:.0f} ms (new CA, server cert, RSA key), warm {warm * 1000:.0f} ms")
        first, again = serve_to_json_line(Path(tmp) / "serve")
        print(f"provision sandbox serve -> JSON line: cold {first * 1000:.0f} ms, warm median "
              f"{statistics.median(again) * 1000:.0f} ms (max {max(again) * 1000:.0f}; target <= 2000 ms)")

        state = Path(tmp) / "served"
        proc = subprocess.Popen(
            [sys.executable, "-c", "from provision.cli.sandbox import app; app()", "serve", "--state", str(state)],
            stdout=subprocess.PIPE, text=True,
        )
        try:
            assert proc.stdout is not None
            info = SandboxInfo.from_dict(json.loads(proc.stdout.readline()))
            ctx = ssl.create_default_context(cafile=info.ca_bundle)
            with httpx.Client(base_url=info.url, verify=ctx) as setup:
                arm = token(setup, info, "https://management.azure.com")
                graph = token(setup, info, "https://graph.microsoft.com")
                setup.put(f"/subscriptions/{info.subscription_id}/resourceGroups/bench?api-version=2021-04-01",
                          json={"location": "westus2"}, headers={"Authorization": f"Bearer {arm}"}).raise_for_status()
            cases = [
                ("ARM GET resource group", f"/subscriptions/{info.subscription_id}/resourceGroups/bench"
                                           "?api-version=2021-04-01", arm),
                ("Graph GET user", "/v1.0/users/alice@contoso.onmicrosoft.com", graph),
                ("Entra GET openid-configuration", f"/{info.tenant_id}/v2.0/.well-known/openid-configuration", arm),
            ]
            print(f"throughput: {args.clients} keep-alive HTTPS clients, {args.seconds:.0f} s each "
                  f"(server in its own process)")
            for label, path, auth in cases:
                rate, latencies = hammer(info, path, auth, args.seconds, args.clients)
                p50 = statistics.median(latencies) * 1000
                p99 = statistics.quantiles(latencies, n=100)[98] * 1000
                print(f"  {label:32s} {rate:7.0f} req/s   p50 {p50:5.1f} ms   p99 {p99:5.1f} ms")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
