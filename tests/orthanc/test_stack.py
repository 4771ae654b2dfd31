"""`provision orthanc up | down` with the real programs: start, a second up that changes nothing, a reload and
a restart when the files change, revocations that survive a restart, refusals that start nothing, and a
foreground run that stops everything when one program ends."""

from __future__ import annotations

import json
import re
import signal
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
from orthanc_stack import Deployment, new_deployment, required_programs, running, two_studies_of_one_patient

from provision.dicom import processes

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _programs() -> None:
    missing = required_programs()
    if missing:
        pytest.fail(f"missing system programs: {', '.join(missing)}; run scripts/install-system-deps.sh",
                    pytrace=False)


def pids(site: Deployment) -> dict[str, int | None]:
    return {name: processes.running_pid(site.root / "run" / f"{name.lower()}.pid", name)
            for name in ("Orthanc", "nginx")}


def metadata_status(site: Deployment, uid: str, token: str) -> int:
    with site.client() as http:
        return http.get(f"/dicom-web/studies/{uid}/metadata",
                        headers={"Authorization": f"Bearer {token}", "Accept": "application/dicom+json"}).status_code


def test_up_down_reload_restart_and_revocations_across_restarts(tmp_path: Path) -> None:
    site = new_deployment(tmp_path / "work")
    a, _ = two_studies_of_one_patient()
    with running(site):
        first = pids(site)
        assert first["Orthanc"] and first["nginx"]
        out = site.ok("orthanc", "up", str(site.plan))
        assert "Orthanc already running" in out and "nginx already running" in out and pids(site) == first
        site.store(a)
        _, revoked_token, revoked_id = site.share("--study", a[0].study_uid)
        _, kept_token, _ = site.share("--study", a[0].study_uid)
        site.ok("orthanc", "shares", "revoke", str(site.plan), "--id", revoked_id)

        # nginx's files change: a reload (same master), and the new origin is allowed at once
        site.plan.write_text(site.plan.read_text().replace("[https://viewer.example.org]",
                                                           "[https://viewer.example.org, https://new.example.org]"))
        assert "nginx started" not in site.provision("orthanc", "up", str(site.plan)).output
        assert "differ from the plan" in site.provision("orthanc", "up", str(site.plan)).output
        site.ok("orthanc", "apply", str(site.plan), "--auto-approve")
        out = site.ok("orthanc", "up", str(site.plan))
        assert f"nginx (pid {first['nginx']}) reloaded" in out and "Orthanc already running" in out
        with site.client() as http:
            preflight = http.options("/dicom-web/studies", headers={
                "Origin": "https://new.example.org", "Access-Control-Request-Method": "GET"})
        assert preflight.headers.get("access-control-allow-origin") == "https://new.example.org"

        # Orthanc's files change: a restart; the revocation list is a file, so it holds afterwards
        site.plan.write_text(site.plan.read_text().replace("  http_port:", "  name: renamed\n  http_port:"))
        site.ok("orthanc", "apply", str(site.plan), "--auto-approve")
        out = site.ok("orthanc", "up", str(site.plan))
        assert f"Orthanc (pid {first['Orthanc']}) stopped: its files changed" in out
        assert pids(site)["Orthanc"] not in (None, first["Orthanc"]) and pids(site)["nginx"] == first["nginx"]
        assert metadata_status(site, a[0].study_uid, revoked_token) == 403
        assert metadata_status(site, a[0].study_uid, kept_token) == 200

        # a running deployment's files are not deleted under it
        result = site.provision("orthanc", "destroy", str(site.plan), "--auto-approve")
        assert result.exit_code == 1 and "still run on these files" in result.output
        assert (site.root / "nginx/nginx.conf").is_file()
        live = pids(site)
    out = site.ok("orthanc", "down", str(site.plan))
    assert "Nothing was running" in out
    assert not any(processes.runs(pid, name) for name, pid in live.items() if pid)
    assert not (site.root / "run" / "orthanc.pid").exists() and not (site.root / "run" / "nginx.pid").exists()
    # the data stays: a new up serves the stored study again
    with running(site):
        assert metadata_status(site, a[0].study_uid, kept_token) == 200


def test_up_refuses_without_the_signing_key_and_starts_nothing(deployment: Deployment) -> None:
    site = deployment
    site.ok("orthanc", "apply", str(site.plan), "--auto-approve")
    site.env.pop("PROVISION_SHARE_KEY")
    result = site.provision("orthanc", "up", str(site.plan))
    assert result.exit_code == 1
    assert f"{site.plan}:5:1 orthanc.shares.signing_key_env: the environment variable PROVISION_SHARE_KEY" \
        in result.output
    assert pids(site) == {"Orthanc": None, "nginx": None}


def test_a_failed_up_leaves_nothing_running(deployment: Deployment) -> None:
    site = deployment
    site.ok("orthanc", "apply", str(site.plan), "--auto-approve")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", site.https_port))
        taken.listen()
        result = site.provision("orthanc", "up", str(site.plan))
    assert result.exit_code == 1
    assert f"orthanc.listen: 127.0.0.1:{site.https_port} is in use" in result.output
    assert pids(site) == {"Orthanc": None, "nginx": None}  # the Orthanc this up had started was stopped
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the stopped Orthanc's port is in TIME_WAIT
        taken.bind(("127.0.0.1", site.http_port))
        taken.listen()
        result = site.provision("orthanc", "up", str(site.plan))
    assert result.exit_code == 1 and f"orthanc.http_port: port {site.http_port} on 127.0.0.1 is in use" \
        in result.output


def test_up_in_the_foreground_stops_both_when_one_ends(deployment: Deployment) -> None:
    site = deployment
    site.ok("orthanc", "apply", str(site.plan), "--auto-approve")
    results: list[object] = []
    thread = threading.Thread(target=lambda: results.append(site.provision("orthanc", "up", str(site.plan),
                                                                           "--foreground", "--output", "json")))
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not (site.root / "run" / "started.json").exists():  # written once up saw both ready
            assert thread.is_alive() and time.monotonic() < deadline, results
            time.sleep(0.1)
        with site.client() as http:
            assert http.get("/viewer").status_code == 200
        nginx = pids(site)["nginx"]
        assert nginx is not None
        processes.stop(nginx, "nginx", sig=signal.SIGQUIT)  # as if someone stopped it
        thread.join(60)
        assert not thread.is_alive()
    finally:
        site.provision("orthanc", "down", str(site.plan))
    result = results[0]
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    document = json.loads(result.output)  # type: ignore[attr-defined]
    assert any(re.match(r"Orthanc \(pid \d+\) stopped", action) for action in document["actions"])
    assert pids(site) == {"Orthanc": None, "nginx": None}
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{site.loopback}/system", timeout=2)
