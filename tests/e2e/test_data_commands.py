"""`provision azure search` and `provision azure changefeed` (with --since and --follow) against the sandbox, as
a user runs them: tables and lines for people, JSON for machines, bad flags refused before any call."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import DataStore
from e2e_http import client

from provision.azure.changefeed import Entry, parse_since
from provision.dicom.synthetic import multipart_related, synthetic_study
from provision.errors import ConfigurationError

CT = synthetic_study(seed="cmd-ct", instances=2, patient_id="CMD-1", study_description="head CT")
OT = synthetic_study(seed="cmd-ot", patient_id="CMD-2")


@pytest.fixture
def store(data_store: DataStore) -> DataStore:
    data_store.clear()
    with client(data_store.deployment.info, headers=data_store.headers()) as http:
        body, content_type = multipart_related([i.data for i in [*CT, *OT]])
        assert http.post(f"{data_store.root}/studies", content=body,
                         headers={"Content-Type": content_type}).status_code == 200
    return data_store


def run_json(store: DataStore, *args: str) -> tuple[int, Any]:
    result = store.provision("azure", *args, str(store.plan), "-o", "json") if len(args) == 1 else \
        store.provision("azure", args[0], str(store.plan), *args[1:], "-o", "json")
    return result.exit_code, json.loads(result.stdout)


def test_search_shows_a_table_of_studies(store: DataStore) -> None:
    result = store.provision("azure", "search", str(store.plan))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["study", "date", "patient", "id", "patient", "name", "modalities", "instances",
                                "description", "study", "instance", "uid"]
    assert any("CMD-1" in line and "head CT" in line and "  2  " in line for line in lines)
    assert lines[-1] == "2 studies in Azure DICOM service data-dicom (no filter)."


def test_search_filters_and_json(store: DataStore) -> None:
    code, found = run_json(store, "search", "--patient-id", "CMD-1")
    assert code == 0 and found["count"] == 1 and found["filters"] == {"PatientID": "CMD-1"}
    (study,) = found["studies"]
    assert study["StudyInstanceUID"] == CT[0].study_uid and study["NumberOfStudyRelatedInstances"] == "2"
    assert run_json(store, "search", "--study-uid", OT[0].study_uid)[1]["count"] == 1
    assert run_json(store, "search", "--modality", "OT")[1]["count"] == 2
    assert run_json(store, "search", "--modality", "CT")[1]["count"] == 0
    assert run_json(store, "search", "--limit", "1")[1]["count"] == 1
    nothing = store.provision("azure", "search", str(store.plan), "--patient-id", "nobody")
    assert nothing.exit_code == 0
    assert nothing.stdout.strip() == "No studies in Azure DICOM service data-dicom match (PatientID=nobody)."


def test_the_change_feed_lists_what_happened(store: DataStore) -> None:
    code, feed = run_json(store, "changefeed", "--since", "2m")
    assert code == 0
    mine = [e for e in feed["entries"] if e["study_instance_uid"] in (CT[0].study_uid, OT[0].study_uid)]
    assert [(e["action"], e["state"]) for e in mine][-3:] == [("create", "current")] * 3
    assert feed["latest"]["sequence"] == feed["entries"][-1]["sequence"]
    text = store.provision("azure", "changefeed", str(store.plan), "--since", "2m")
    assert text.exit_code == 0
    assert text.stdout.splitlines()[0].split()[:4] == ["sequence", "timestamp", "action", "state"]
    assert f"create  current   {OT[0].study_uid} / {OT[0].series_uid} / {OT[0].sop_instance_uid}" in text.stdout
    future = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert run_json(store, "changefeed", "--since", future)[1]["count"] == 0


def test_a_bad_since_is_refused_before_anything_is_called(store: DataStore) -> None:
    result = store.provision("azure", "changefeed", str(store.plan), "--since", "yesterday")
    assert result.exit_code == 1 and "--since 'yesterday': not a time or a duration" in result.stderr


def test_since_takes_times_and_durations() -> None:
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert parse_since("2024-05-01T10:00:00Z", now) == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    assert parse_since("2024-05-01T10:00:00", now) == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    assert parse_since("90m", now) == datetime(2024, 5, 1, 10, 30, tzinfo=UTC)
    with pytest.raises(ConfigurationError):
        parse_since("soon", now)


def test_entries_are_read_whatever_their_casing() -> None:
    entry = Entry.of({"sequence": 7, "timestamp": "2024-05-01T10:00:00.1234567Z", "action": "Create",
                      "state": "Current", "studyInstanceUid": "1", "seriesInstanceUid": "2", "sopInstanceUid": "3"})
    assert (entry.sequence, entry.action, entry.state, entry.sop_instance_uid) == (7, "create", "current", "3")
    assert entry.when() == datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)


def test_follow_shows_new_changes_until_ctrl_c(store: DataStore, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "provision", "azure", "changefeed", str(store.plan), "--follow",
               "--interval", "0.2", "-o", "json"]
    follower = subprocess.Popen(command, env={**os.environ, **store.deployment.env}, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    try:
        assert follower.stdout is not None
        latest = json.loads(follower.stdout.readline())  # following from now shows the newest entry first
        assert latest["sop_instance_uid"] in {i.sop_instance_uid for i in [*CT, *OT]}
        new = synthetic_study(seed=f"follow-{time.time()}")[0]
        with client(store.deployment.info, headers=store.headers()) as http:
            body, content_type = multipart_related([new.data])
            assert http.post(f"{store.root}/studies", content=body,
                             headers={"Content-Type": content_type}).status_code == 200
        seen = json.loads(follower.stdout.readline())
        assert (seen["action"], seen["sop_instance_uid"]) == ("create", new.sop_instance_uid)
        follower.send_signal(signal.SIGINT)
        out, err = follower.communicate(timeout=30)
    finally:
        if follower.poll() is None:
            follower.kill()
    assert follower.returncode == 0, (out, err)
    assert json.loads(out.strip().splitlines()[-1]) == {"source": "Azure DICOM service data-dicom",
                                                         "followed": True, "entries": 2}
    assert "Traceback" not in err
