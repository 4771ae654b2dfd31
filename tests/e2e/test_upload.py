"""`provision azure upload` against the sandbox's DICOM service (a real Orthanc behind Azure's STOW rules):
every instance stored once, a re-run sends only searches, an interrupted or killed upload resumes without
storing anything twice, throttling and an expired token are survived, and a missing role stops it with the fix.

"Stored once" is read from the service's change feed, which records every instance the service stores."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import PLAYBOOK, DataStore
from e2e_http import DICOM_AUDIENCE, app_token, client

from provision.dicom.dicomweb import BearerToken, Endpoint
from provision.dicom.synthetic import synthetic_study
from provision.dicom.upload import Outcome, Upload
from provision.sandbox import SandboxControl


def corpus(folder: Path, *, studies: int = 3, instances: int = 5, seed: str = "upload") -> int:
    """Synthetic studies as files, the last one inside a .zip, and a text file; returns the instance count."""
    folder.mkdir(parents=True, exist_ok=True)
    for number in range(studies):
        study = synthetic_study(seed=f"{seed}-{number}", instances=instances,
                                patient_id=f"PAT-{seed}-{number}")
        if number == studies - 1:
            with zipfile.ZipFile(folder / "last-study.zip", "w") as archive:
                for instance in study:
                    archive.writestr(f"{instance.sop_instance_uid}.dcm", instance.data)
        else:
            for instance in study:
                (folder / f"{number}-{instance.sop_instance_uid}.dcm").write_bytes(instance.data)
    (folder / "README.txt").write_text("these are test studies\n")
    return studies * instances


def upload(store: DataStore, *args: str) -> tuple[int, dict[str, Any], str]:
    result = store.provision("azure", "upload", str(store.plan), *args, "-o", "json")
    assert result.stdout.strip(), result.output + repr(result.exception)
    return result.exit_code, json.loads(result.stdout), result.stderr


def creates(store: DataStore) -> Counter[str]:
    """How often the service stored each SOP Instance UID (its change feed's create entries)."""
    found: Counter[str] = Counter()
    with client(store.deployment.info) as http:
        offset = 0
        while True:
            page = http.get(f"{store.root}/changefeed", params={"offset": str(offset), "limit": "200",
                                                                "includemetadata": "false"},
                            headers=store.headers()).json()
            found.update(e["SopInstanceUid"] for e in page if e["Action"] == "create")
            if len(page) < 200:
                return found
            offset += len(page)


def requests_since(control: SandboxControl, mark: int, store: DataStore) -> Counter[str]:
    path = store.root.split("/dicom/", 1)[1]
    return Counter(f"{e['method']} {e['path'].rsplit('/v2/', 1)[-1].split('/')[0]}"
                   for e in control.log(since=mark) if f"/dicom/{path}" in e["path"])


@pytest.fixture
def store(data_store: DataStore) -> DataStore:
    data_store.clear()
    return data_store


@pytest.fixture
def control(store: DataStore) -> Any:
    with SandboxControl(store.deployment.info) as sandbox_control:
        yield sandbox_control
        sandbox_control.clear_faults()


def last_seq(control: SandboxControl) -> int:
    """The newest request's number once the log is settled: the sandbox logs a request after sending its answer,
    so the last answer of a run that just ended may be logged a moment after the run saw it."""
    seen = -1
    while True:
        entries = control.log()
        newest = max((int(e["seq"]) for e in entries), default=0)
        if newest == seen:
            return newest
        seen = newest
        time.sleep(0.2)


def test_every_instance_is_stored_once_and_every_file_accounted_for(store: DataStore, control: SandboxControl,
                                                                     tmp_path: Path) -> None:
    total = corpus(tmp_path / "in")
    before = creates(store)
    mark = last_seq(control)
    code, report, progress = upload(store, str(tmp_path / "in"), "--concurrency", "4")
    assert code == 0, report
    assert report["summary"] == {"stored": total, "already present": 0, "failed": 0, "skipped": 1, "not sent": 0}
    # one search per study, one STOW per batch of at most 10 instances of a study
    assert requests_since(control, mark, store) == Counter({"GET studies": 3, "POST studies": 3})
    assert [f["outcome"] for f in report["files"] if "last-study.zip!" in f["file"]] == ["stored"] * 5
    (readme,) = [f for f in report["files"] if f["file"].endswith("README.txt")]
    assert readme == {"file": str(tmp_path / "in" / "README.txt"), "outcome": "skipped",
                      "reason": "not a DICOM file (no DICM preamble)"}
    stored = creates(store) - before
    assert len(stored) == total and set(stored.values()) == {1}
    assert progress == ""  # --output json: nothing but the document


def test_a_second_run_only_asks_what_is_there(store: DataStore, control: SandboxControl, tmp_path: Path) -> None:
    total = corpus(tmp_path / "in")
    assert upload(store, str(tmp_path / "in"))[0] == 0
    mark = last_seq(control)
    code, report, _ = upload(store, str(tmp_path / "in"))
    assert code == 0 and report["summary"]["already present"] == total and report["summary"]["stored"] == 0
    assert requests_since(control, mark, store) == Counter({"GET studies": 3})
    assert report["bytes_sent"] == 0
    text = store.provision("azure", "upload", str(store.plan), str(tmp_path / "in"))
    assert text.exit_code == 0
    assert "upload: uploading 16/16 files" in text.stderr  # the plain progress lines of a run without a terminal
    assert text.stdout.splitlines()[-1].startswith(f"Upload complete: 0 stored, {total} already present, 0 failed")


def test_what_went_missing_is_sent_again_and_nothing_else(store: DataStore, tmp_path: Path) -> None:
    corpus(tmp_path / "in", studies=2, instances=4)
    assert upload(store, str(tmp_path / "in"))[0] == 0
    first = store.study_uids()[0]
    with client(store.deployment.info) as http:
        assert http.delete(f"{store.root}/studies/{first}", headers=store.headers()).status_code == 204
    code, report, _ = upload(store, str(tmp_path / "in"))
    assert code == 0 and (report["summary"]["stored"], report["summary"]["already present"]) == (4, 4)
    assert {f["study_uid"] for f in report["files"] if f["outcome"] == "stored"} == {first}


def data_endpoint(store: DataStore, fetched: list[str] | None = None) -> Endpoint:
    """The data store's endpoint as the Azure target builds it, with a token source that counts fetches."""
    from provision.azure.dataplane import classify

    def source() -> tuple[str, float]:
        token = app_token(store.deployment.info, DICOM_AUDIENCE)
        if fetched is not None:
            fetched.append(token)
        return token, time.time() + 3599

    return Endpoint("data-dicom", store.root, auth=BearerToken(source),
                    ca_bundles=(Path(store.deployment.info.ca_bundle),), qido_page_size=200, classify=classify)


def test_an_interrupted_upload_resumes_without_duplicates(store: DataStore, tmp_path: Path) -> None:
    total = corpus(tmp_path / "in", studies=4, instances=10)
    before = creates(store)
    stop = threading.Event()
    endpoint = data_endpoint(store)

    def classify_then_stop(answer: Any, sent: Any) -> Any:
        stop.set()  # what Ctrl+C does after the first answer: no new batch, the ones in flight finish
        return endpoint.classify(answer, sent)

    interrupted = dataclasses.replace(endpoint, classify=classify_then_stop)
    first = Upload(interrupted, concurrency=2, stop=stop).run([tmp_path / "in"])
    counts = first.counts()
    assert first.stopped == "interrupted" and not first.ok
    assert 10 <= counts[Outcome.STORED] < total and counts[Outcome.NOT_SENT] > 0
    assert all(r.reason.startswith("not sent: the upload stopped") for r in first.results
               if r.outcome is Outcome.NOT_SENT)
    second = Upload(data_endpoint(store)).run([tmp_path / "in"])
    assert second.ok and second.counts()[Outcome.STORED] == total - counts[Outcome.STORED]
    stored = creates(store) - before
    assert len(stored) == total and set(stored.values()) == {1}


def test_kill_minus_nine_then_rerun_stores_everything_once(store: DataStore, tmp_path: Path) -> None:
    total = corpus(tmp_path / "in", studies=6, instances=20)
    before = creates(store)
    command = [sys.executable, "-m", "provision", "azure", "upload", str(store.plan), str(tmp_path / "in"),
               "--concurrency", "2", "-o", "json"]
    env = {**os.environ, **store.deployment.env}
    killed = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while sum((creates(store) - before).values()) < 20:
            assert killed.poll() is None, "the upload ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        killed.send_signal(signal.SIGKILL)
    finally:
        killed.wait(10)
    partial = sum((creates(store) - before).values())
    assert partial < total
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads(rerun.stdout)
    assert report["summary"]["stored"] + report["summary"]["already present"] == total
    stored = creates(store) - before
    assert len(stored) == total and set(stored.values()) == {1}  # none twice


def test_throttling_is_waited_out_as_the_service_says(store: DataStore, control: SandboxControl,
                                                      tmp_path: Path) -> None:
    total = corpus(tmp_path / "in", studies=2, instances=3)
    path = store.root.split("://", 1)[1].split("/", 1)[1]
    control.add_fault(429, method="POST", path_regex=f"/{path}/studies$", retry_after=1, count=2)
    control.add_fault(503, method="GET", path_regex=f"/{path}/studies/.*/instances$", count=1)
    started = time.monotonic()
    code, report, _ = upload(store, str(tmp_path / "in"), "--concurrency", "1")
    assert code == 0 and report["summary"]["stored"] == total
    assert report["throttled_retries"] == 3  # 429 twice, 503 once
    assert time.monotonic() - started >= 2  # Retry-After: 1, twice, in a row (concurrency 1)
    assert control.faults() == []  # every fault was met


def test_a_refused_token_is_fetched_again_once(store: DataStore, control: SandboxControl, tmp_path: Path) -> None:
    total = corpus(tmp_path / "in", studies=1, instances=3)
    path = store.root.split("://", 1)[1].split("/", 1)[1]
    control.add_fault(401, method="POST", path_regex=f"/{path}/studies$", count=1)
    fetched: list[str] = []
    report = Upload(data_endpoint(store, fetched)).run([tmp_path / "in"])
    assert report.ok and report.counts()[Outcome.STORED] == total
    assert len(fetched) == 2  # the first token, and one more after the 401


def test_without_a_data_role_nothing_is_sent_and_the_fix_is_named(store: DataStore, tmp_path: Path) -> None:
    corpus(tmp_path / "in", studies=2, instances=2)
    # the viewer's service, where the tool's identity holds no DICOM role
    result = store.provision("azure", "upload", str(PLAYBOOK), str(tmp_path / "in"))
    assert result.exit_code == 1
    assert "Stopped: Azure DICOM service ohif-dicom: search answered 403 Forbidden" in result.stdout
    assert "DICOM Data Owner" in result.stdout and "0 stored" in result.stdout


def test_inputs_without_dicom_and_missing_paths_are_refused(store: DataStore, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("no images here")
    result = store.provision("azure", "upload", str(store.plan), str(tmp_path / "notes.txt"))
    assert result.exit_code == 1 and "Stopped: no DICOM files found" in result.stdout
    missing = store.provision("azure", "upload", str(store.plan), str(tmp_path / "absent"))
    assert missing.exit_code == 1 and f"no such file or folder: {tmp_path / 'absent'}" in missing.stderr


def test_batches_are_bounded_by_count_and_bytes(store: DataStore, control: SandboxControl, tmp_path: Path) -> None:
    corpus(tmp_path / "in", studies=2, instances=7)
    mark = last_seq(control)
    by_count = Upload(data_endpoint(store), batch_instances=3).run([tmp_path / "in"])
    assert by_count.ok and requests_since(control, mark, store)["POST studies"] == 2 * 3  # 3 + 3 + 1 a study
    store.clear()
    instance_size = next((tmp_path / "in").glob("0-*.dcm")).stat().st_size
    mark = last_seq(control)
    by_bytes = Upload(data_endpoint(store), batch_instances=3, batch_bytes=2 * instance_size,
                      in_flight_bytes=instance_size).run([tmp_path / "in"])
    assert by_bytes.ok and by_bytes.counts()[Outcome.STORED] == 14
    assert requests_since(control, mark, store)["POST studies"] == 2 * 4  # at most 2 instances a request
