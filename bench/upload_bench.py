"""Upload figures: `provision azure upload` of a generated study set into the sandbox's DICOM service.

    .venv/bin/python bench/upload_bench.py [--instances 2000] [--per-study 50] [--quick]

For each concurrency (1, 8, 32, 64) a fresh DICOM service (its own Orthanc) receives the whole set from
`provision azure upload` run as its own process, as a user runs it; then, for the ratio, the same set is sent by
the loop one would write with dicomweb-client alone (one instance per request, `store_instances`, sequential).
Then a re-run after completion (what it sends, how long it takes: reads only), and a `kill -9` at about half
way followed by a re-run (total stored must be the set's size, none stored twice; counted from the service's
change feed, which records every instance stored). Peak RSS is the upload process's (`wait4`).

Prints figures, asserts nothing but the crash invariant (timings on a shared 2-core machine are not test
material; compare the ratios within one run). The full run takes about 1 min 45 s here (`make bench` runs it);
`--quick` sends 400 instances instead.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from provision.dicom.synthetic import synthetic_study  # noqa: E402
from provision.sandbox import RunningSandbox, start_sandbox  # noqa: E402

CONCURRENCIES = (1, 8, 32, 64)
PLAN = """\
version: 1
name: bench
env: {name}
azure:
  location: westeurope
  resource_group:
    name: rg-bench-{name}
  workspace:
    name: bench{name}
  dicom:
    name: svc-{name}
  access:
    - service_principal: {principal}
      role: DICOM Data Owner
"""


def generate(folder: Path, instances: int, per_study: int) -> int:
    """The study set: `instances` 64x64 images (about 8 KiB each), `per_study` to a study; returns its bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    size = 0
    for study in range((instances + per_study - 1) // per_study):
        count = min(per_study, instances - study * per_study)
        for number, instance in enumerate(synthetic_study(seed=f"bench-{study}", instances=count), start=1):
            (folder / f"s{study:03d}-{number:03d}.dcm").write_bytes(instance.data)
            size += len(instance.data)
    return size


class Bench:
    def __init__(self, sandbox: RunningSandbox, work: Path) -> None:
        self.sandbox = sandbox
        self.work = work
        self.env = {**os.environ, "PROVISION_SANDBOX": str(Path(sandbox.info.state_dir) / "sandbox.json"),
                    "NO_COLOR": "1"}

    def service(self, name: str) -> tuple[Path, str]:
        """A fresh DICOM service (plan applied through the CLI); its plan file and DICOMweb root."""
        plan = self.work / f"plan-{name}.yaml"
        plan.write_text(PLAN.format(name=name, principal=self.sandbox.world.identity.sp_object_id))
        subprocess.run([sys.executable, "-m", "provision", "azure", "apply", str(plan), "--auto-approve", "--out",
                        str(self.work / f"out-{name}")], env=self.env, check=True, capture_output=True)
        return plan, f"{self.sandbox.info.url}/dicom/bench{name}-svc-{name}/v2"

    def run(self, command: list[str]) -> tuple[dict[str, Any] | None, float, int, int]:
        """Run a command; its JSON output, wall seconds, exit status and peak RSS in MiB."""
        started = time.monotonic()
        process = subprocess.Popen(command, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert process.stdout is not None
        out = process.stdout.read()
        _pid, status, usage = os.wait4(process.pid, 0)
        seconds = time.monotonic() - started
        document = json.loads(out) if out.strip() else None
        return document, seconds, os.waitstatus_to_exitcode(status), usage.ru_maxrss // 1024

    def upload(self, plan: Path, corpus: Path, concurrency: int) -> tuple[dict[str, Any], float, int]:
        document, seconds, code, rss = self.run([sys.executable, "-m", "provision", "azure", "upload", str(plan),
                                                 str(corpus), "--concurrency", str(concurrency), "-o", "json"])
        assert code == 0 and document is not None, f"upload failed ({code})"
        return document, seconds, rss

    def token(self) -> str:
        import httpx

        info = self.sandbox.info
        response = httpx.post(f"{info.url}/{info.tenant_id}/oauth2/v2.0/token", verify=info.ca_bundle, data={
            "grant_type": "client_credentials", "client_id": info.client_id, "client_secret": info.client_secret,
            "scope": "https://dicom.healthcareapis.azure.com/.default"})
        response.raise_for_status()
        return str(response.json()["access_token"])

    def creates(self, root: str) -> Counter[str]:
        import httpx

        found: Counter[str] = Counter()
        headers = {"Authorization": f"Bearer {self.token()}"}
        with httpx.Client(verify=self.sandbox.info.ca_bundle, headers=headers, timeout=30) as http:
            offset = 0
            while True:
                page = http.get(f"{root}/changefeed", params={"offset": str(offset), "limit": "200",
                                                              "includemetadata": "false"}).json()
                found.update(e["SopInstanceUid"] for e in page if e["Action"] == "create")
                if len(page) < 200:
                    return found
                offset += len(page)

    def requests(self, root: str, since: int) -> Counter[str]:
        import httpx

        with httpx.Client(verify=self.sandbox.info.ca_bundle, timeout=30) as http:
            log = http.get(f"{self.sandbox.info.url}/_sandbox/log", params={"since": str(since)}).json()
        path = root.split("://", 1)[1].split("/", 1)[1]
        return Counter(e["method"] for e in log if f"/{path}/" in e["path"] and "/changefeed" not in e["path"])

    def last_seq(self) -> int:
        import httpx

        with httpx.Client(verify=self.sandbox.info.ca_bundle, timeout=30) as http:
            log = http.get(f"{self.sandbox.info.url}/_sandbox/log").json()
        return int(log[-1]["seq"]) if log else 0


def sequential_loop(root: str, token: str, ca_bundle: str, corpus: Path) -> None:
    """What one writes with dicomweb-client alone: read each file, `store_instances` it, one after another."""
    import pydicom
    from dicomweb_client.api import DICOMwebClient

    from provision.dicom.dicomweb import trusted_session

    session = trusted_session([Path(ca_bundle)])  # requests' Session.verify loses to REQUESTS_CA_BUNDLE
    client = DICOMwebClient(root, session=session, headers={"Authorization": f"Bearer {token}"})
    for path in sorted(corpus.iterdir()):
        client.store_instances(datasets=[pydicom.dcmread(path)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=2000)
    parser.add_argument("--per-study", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="400 instances instead of --instances")
    parser.add_argument("--sequential-loop", nargs=4, metavar=("ROOT", "TOKEN", "CA", "CORPUS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined]  # figures as they come
    if args.sequential_loop:
        root, token, ca, corpus = args.sequential_loop
        sequential_loop(root, token, ca, Path(corpus))
        return
    instances = 400 if args.quick else args.instances
    with tempfile.TemporaryDirectory(prefix="upload-bench-") as tmp:
        work = Path(tmp)
        corpus = work / "corpus"
        size = generate(corpus, instances, args.per_study)
        studies = (instances + args.per_study - 1) // args.per_study
        print(f"study set: {instances} instances in {studies} studies, {size / 1e6:.1f} MB "
              f"({size // instances} bytes each); 2 cores shared with the sandbox and its Orthancs")
        with start_sandbox(work / "sandbox", lro_seconds=0.05) as sandbox:
            bench = Bench(sandbox, work)
            rates: dict[int, float] = {}
            services: dict[int, tuple[Path, str]] = {}
            print(f"{'concurrency':>11}  {'instances/s':>11}  {'upload s':>8}  {'wall s':>6}  {'STOW':>5}  "
                  f"{'peak RSS':>8}")
            for concurrency in CONCURRENCIES:
                plan, root = services[concurrency] = bench.service(f"c{concurrency}")
                report, wall, rss = bench.upload(plan, corpus, concurrency)
                stored = report["summary"]["stored"]
                assert stored == instances, report["summary"]
                rates[concurrency] = stored / report["seconds"]
                print(f"{concurrency:>11}  {rates[concurrency]:>11.0f}  {report['seconds']:>8.2f}  {wall:>6.2f}  "
                      f"{report['requests'].get('store', 0):>5}  {rss:>5} MiB")

            plan, root = bench.service("loop")
            _doc, loop_seconds, code, loop_rss = bench.run([
                sys.executable, __file__, "--sequential-loop", root, bench.token(), sandbox.info.ca_bundle,
                str(corpus)])
            assert code == 0, "the sequential dicomweb-client loop failed"
            loop_rate = instances / loop_seconds
            best = max(rates, key=lambda c: rates[c])
            print(f"sequential dicomweb-client loop (store_instances, one instance a request): {loop_rate:.0f} "
                  f"instances/s ({loop_seconds:.1f} s wall, {loop_rss} MiB peak RSS)")
            print("ratio to that loop: " + ", ".join(f"c{c} {rates[c] / loop_rate:.1f}x" for c in CONCURRENCIES)
                  + f" (best: concurrency {best})")

            plan, root = services[8]  # the service of the concurrency-8 run, complete
            mark = bench.last_seq()
            report, wall, rss = bench.upload(plan, corpus, 8)
            sent = bench.requests(root, mark)
            print(f"re-run after completion: {report['summary']['already present']} already present, "
                  f"{report['summary']['stored']} stored, {report['seconds']:.2f} s ({wall:.2f} s wall); requests "
                  f"{dict(sent)} (one QIDO per study, no STOW), {rss} MiB peak RSS")

            plan, root = bench.service("kill")
            command = [sys.executable, "-m", "provision", "azure", "upload", str(plan), str(corpus),
                       "--concurrency", "8", "-o", "json"]
            victim = subprocess.Popen(command, env=bench.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            while sum(bench.creates(root).values()) < instances // 2 and victim.poll() is None:
                time.sleep(0.05)
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            at_kill = sum(bench.creates(root).values())
            report, wall, _rss = bench.upload(plan, corpus, 8)
            created = bench.creates(root)
            twice = sum(1 for n in created.values() if n > 1)
            print(f"kill -9 after {at_kill} of {instances} stored; the re-run stored {report['summary']['stored']} and "
                  f"found {report['summary']['already present']} present ({wall:.2f} s wall): {len(created)} "
                  f"instances stored in total, {twice} stored twice")
            assert len(created) == instances and twice == 0, "resuming after kill -9 lost or duplicated instances"


if __name__ == "__main__":
    main()
