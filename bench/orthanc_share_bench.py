"""What share links cost: the token check per call (µs), and frames/s through nginx with and without the filter.

    .venv/bin/python bench/orthanc_share_bench.py [--seconds 3] [--rounds 2]

1. The pure check (`provision.orthanc.sharetoken`) timed in this interpreter and in Debian's python3 with
   python3-jwt 2.6, the one Orthanc embeds: verifying a token the first time (HMAC + JSON) and when cached (what
   every request after the first costs), the whole decision for a frame request, the admin's Basic check once
   remembered, and one Advanced Authorization contract call.
2. Two deployments side by side, each Orthanc + nginx from Debian with the same 40 frames (64x64, 16-bit):
   `filter` is what `provision orthanc up` runs (share token in `Authorization: Bearer`); `no filter` is the
   same files with the python plugin taken out of Orthanc's configuration and Orthanc's own Basic check on
   instead (what an Orthanc behind nginx would do without share links). wrk (C, one thread, 4 connections)
   requests the frames through nginx, rounds interleaved so that machine load hits both alike. The figure
   to read is the ratio within one run: client, nginx and Orthanc share the machine.

Takes about 30 s. Needs what `scripts/install-system-deps.sh` installs (Orthanc, its plugins, nginx, wrk).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from provision.dicom import processes  # noqa: E402
from provision.dicom.orthanc_process import free_port  # noqa: E402
from provision.orthanc import sharetoken  # noqa: E402

PASSWORD = "bench-admin-password-1234"
KEY = "bench-signing-key-0123456789abcdef-xyz"
FRAMES = "multipart/related; type=application/octet-stream; transfer-syntax=*"

PURE = textwrap.dedent('''
    import base64, json, sys, time
    import jwt, sharetoken as st
    key = sys.argv[1].encode()
    uid = "2.25.215044993674982928068010675557386342198"
    now = int(time.time())
    token = st.mint(key, [uid], share_id="bench", issued_at=now, expires_at=now + 600)
    revoked = st.RevocationList(sys.argv[2])
    headers = {"authorization": "Bearer " + token, "accept": "*/*"}
    admins = {"admin": st.hash_password("pw", b"s" * 16)}
    basic = {"authorization": "Basic " + base64.b64encode(b"admin:pw").decode()}
    frame = "/dicom-web/studies/%s/series/2.25.1/instances/2.25.2/frames/1" % uid
    check = st.Authorizer(admins=st.AdminCheck(admins), tokens=st.TokenVerifier(key, revoked))
    check.authorize("GET", frame, {}, basic)
    def uncached():
        return st.TokenVerifier(key, revoked).verify(token)
    contract = {"level": "study", "method": "get", "dicom-uid": uid, "token-key": "authorization",
                "token-value": "Bearer " + token}
    cases = {
        "verify, first time (HMAC + claims)": uncached,
        "verify, cached (expiry + revocation stat)": lambda: check.tokens.verify(token),
        "whole check of a frame request": lambda: check.authorize("GET", frame, {}, headers),
        "whole check of a QIDO by StudyInstanceUID": lambda: check.authorize(
            "GET", "/dicom-web/studies", {"StudyInstanceUID": uid}, headers),
        "admin Basic, remembered": lambda: check.authorize("GET", frame, {}, basic),
        "Advanced Authorization contract call": lambda: check.validate(contract),
    }
    out = {}
    for name, case in cases.items():
        for _ in range(300):
            case()
        n = 3000 if "first time" in name else 20000
        started = time.perf_counter()
        for _ in range(n):
            case()
        out[name] = (time.perf_counter() - started) / n * 1e6
    print(json.dumps({"python": sys.version.split()[0], "pyjwt": jwt.__version__, "us": out}))
''')


def pure(python: str, work: Path) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(Path(sharetoken.__file__).parent)}
    done = subprocess.run([python, "-c", PURE, KEY, str(work / "revoked.txt")], capture_output=True, text=True,
                          env=env, check=True, timeout=300)
    return dict(json.loads(done.stdout))


def provision(*args: str, env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run([sys.executable, "-m", "provision", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=600, check=False)
    if done.returncode != 0:
        raise SystemExit(f"provision {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def plan_file(work: Path, name: str) -> tuple[Path, int]:
    https_port = free_port()
    plan = work / f"{name}.yaml"
    plan.write_text(f"version: 1\nname: {name}\northanc:\n  directory: {work / name}\n"
                    f"  public_url: https://localhost:{https_port}\n  http_port: {free_port()}\n"
                    "  tls: {local_ca: true}\n")
    return plan, https_port


def wrk(url: str, paths: list[str], headers: dict[str, str], seconds: int) -> float:
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    script.write_text("local paths = {" + ",".join(json.dumps(p) for p in paths) + "}\nlocal i = 0\n"
                      "request = function()\n  i = i + 1\n  return wrk.format('GET', paths[(i % #paths) + 1])\nend\n")
    args = ["wrk", "-t1", "-c4", f"-d{seconds}s", "-s", str(script), "-H", f"Accept: {FRAMES}"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    try:
        out = subprocess.run([*args, url], capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    finally:
        script.unlink()
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise SystemExit(f"wrk saw {errors.group(1)} refused requests on {url}: the set-up is wrong")
    found = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    if found is None:
        raise SystemExit(f"no figure from wrk:\n{out}")
    return float(found.group(1))


def without_filter(work: Path, name: str, env: dict[str, str]) -> list[tuple[str, int]]:
    """Start the second deployment's files with Orthanc's own Basic check instead of the python filter."""
    from provision.dicom.orthanc_process import OrthancSettings, launch_orthanc
    from provision.orthanc import stack
    from provision.orthanc.session import deployment
    from provision.plan import load_plan

    os.environ.update(env)
    site = deployment(load_plan(work / f"{name}.yaml")).site
    config = json.loads(site.layout.orthanc_json.read_text())
    config.pop("PythonScript")
    config.pop("ProvisionShares")
    config["Plugins"] = [p for p in config["Plugins"] if "Python" not in p]
    config.update(AuthenticationEnabled=True, RegisteredUsers={"admin": PASSWORD})
    baseline = site.layout.root / "orthanc" / "no-filter.json"
    baseline.write_text(json.dumps(config))
    for directory in (site.layout.storage, site.layout.run_dir, site.layout.logs_dir, site.layout.tmp_dir):
        directory.mkdir(parents=True, exist_ok=True)
    settings = OrthancSettings(storage_dir=site.layout.storage, http_port=site.http_port, plugins=(),
                               username="admin", password=PASSWORD)
    orthanc = launch_orthanc(settings, baseline, log_file=site.layout.logs_dir / "orthanc.log",
                             pid_file=site.layout.run_dir / "orthanc.pid", die_with_parent=False)
    orthanc.wait_ready()
    nginx = processes.spawn(stack.nginx_argv(site), log_file=site.layout.logs_dir / "nginx-stderr.log",
                            cwd=site.layout.root, die_with_parent=False)
    time.sleep(0.5)
    return [("nginx", nginx.pid), ("Orthanc", orthanc.pid)]


def store(url: str, ca: Path, instances: list[object]) -> None:
    import ssl

    import httpx

    from provision.dicom.synthetic import multipart_related

    body, content_type = multipart_related([i.data for i in instances])  # type: ignore[attr-defined]
    answer = httpx.post(f"{url}/dicom-web/studies", content=body, auth=("admin", PASSWORD), timeout=60,
                        verify=ssl.create_default_context(cafile=str(ca)),
                        headers={"Content-Type": content_type, "Accept": "application/dicom+json"})
    answer.raise_for_status()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=3, help="length of one wrk run")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds per variant")
    args = parser.parse_args()
    if shutil.which("wrk") is None or not Path("/usr/sbin/Orthanc").is_file() or not Path("/usr/sbin/nginx").is_file():
        raise SystemExit("needs Orthanc, nginx and wrk: run scripts/install-system-deps.sh")
    from provision.dicom.synthetic import synthetic_study

    work = Path(tempfile.mkdtemp(prefix="orthanc-bench-"))
    env = {**os.environ, "ORTHANC_ADMIN_PASSWORD": PASSWORD, "PROVISION_SHARE_KEY": KEY, "NO_COLOR": "1",
           "PROVISION_OHIF_CACHE": os.environ.get("PROVISION_OHIF_CACHE", str(REPO / ".cache" / "ohif"))}
    started: list[tuple[str, int]] = []
    filtered_plan: Path | None = None
    try:
        print("token check, µs per call (compare rows; Orthanc runs the second column's interpreter):")
        here = pure(sys.executable, work)
        there = pure("/usr/bin/python3", work)
        head = f"python {here['python']} PyJWT {here['pyjwt']}", f"Orthanc's python {there['python']} PyJWT " \
            f"{there['pyjwt']}"
        print(f"  {'':45s} {head[0]:>24s} {head[1]:>32s}")
        for name, value in here["us"].items():  # type: ignore[attr-defined]
            print(f"  {name:45s} {value:24.1f} {there['us'][name]:32.1f}")  # type: ignore[index]

        filtered_plan, filtered_port = plan_file(work, "filtered")
        plain_plan, plain_port = plan_file(work, "plain")
        for plan in (filtered_plan, plain_plan):
            provision("orthanc", "apply", str(plan), "--auto-approve", env=env, cwd=work)
        provision("orthanc", "up", str(filtered_plan), env=env, cwd=work)
        started = without_filter(work, "plain", env)
        study = synthetic_study(seed="bench", instances=40, study_description="bench")
        for name, port in (("filtered", filtered_port), ("plain", plain_port)):
            store(f"https://localhost:{port}", work / name / "tls" / "ca.pem", study)
        uid = study[0].study_uid
        paths = [f"/dicom-web/studies/{uid}/series/{i.series_uid}/instances/{i.sop_instance_uid}/frames/1"
                 for i in study]
        now = int(time.time())
        token = sharetoken.mint(KEY.encode(), [uid], share_id="bench", issued_at=now, expires_at=now + 3600)
        basic = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
        variants = {
            "filter (share token)": (f"https://localhost:{filtered_port}", {"Authorization": f"Bearer {token}"}),
            "no filter (Orthanc's Basic)": (f"https://localhost:{plain_port}", {"Authorization": f"Basic {basic}"}),
        }
        runs: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.rounds):
            for name, (url, headers) in variants.items():
                runs[name].append(wrk(url, paths, headers, args.seconds))
        print(f"frames/s through nginx over HTTPS, 64x64 16-bit frames, wrk 1 thread 4 connections, "
              f"{args.rounds} x {args.seconds} s each:")
        medians = {name: statistics.median(values) for name, values in runs.items()}
        for name, values in runs.items():
            print(f"  {name:30s} {medians[name]:8.0f}   (runs {', '.join(f'{v:.0f}' for v in values)})")
        ratio = medians["filter (share token)"] / medians["no filter (Orthanc's Basic)"]
        print(f"  filter / no filter: {ratio:.2f}")
    finally:
        if filtered_plan is not None:
            subprocess.run([sys.executable, "-m", "provision", "orthanc", "down", str(filtered_plan)], env=env,
                           cwd=work, capture_output=True, check=False, timeout=120)
        for name, pid in started:
            processes.stop(pid, name)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
