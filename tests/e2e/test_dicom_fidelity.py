"""The sandbox's DICOM service answers as Azure's does where Orthanc, behind it, answers otherwise. Each test
names the part of the Azure DICOM conformance statement (v2) or the change feed overview it follows; the list
is in docs/sandbox.md ("The DICOM data plane: where Azure and Orthanc differ")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import DataStore
from e2e_http import DICOM_AUDIENCE, app_token, client

from provision.dicom.synthetic import multipart_related, synthetic_study
from provision.sandbox.azure.dicom import changefeed
from provision.sandbox.azure.dicom.matching import fuzzy_match, plan_search
from provision.sandbox.azure.dicom.qido import TAG_VR, tag_of
from provision.sandbox.azure.dicom.stow import Part, triage

JANE = synthetic_study(seed="fidelity-jane", instances=2, patient_name="Doe^Jane Q",
                       study_description="CT chest with contrast", patient_id="FID-1")
JURGEN = synthetic_study(seed="fidelity-jurgen", patient_name="Müller^Jürgen", patient_id="FID-2")


# --- pure rules ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("query", "found"), [
    ("joh", True), ("do", True), ("jo do", True), ("Doe", True), ("John Doe", True), ("ohn", False),
    ("doe john", False), ("john^doe", True), ("JÖHN", True),
])
def test_fuzzy_matching_is_a_word_prefix_match(query: str, found: bool) -> None:
    """Conformance v2, "Supported Search Parameters": fuzzymatching - "John^Doe" is found by "joh", "do",
    "jo do", "Doe" and "John Doe", not by "ohn"."""
    assert fuzzy_match("John^Doe", query) is found


def test_only_what_orthanc_compares_right_is_left_to_it() -> None:
    search = plan_search([("StudyInstanceUID", "1.2.3"), ("StudyDate", "20240101-20240131"),
                          ("PatientName", "Doe^Jane"), ("StudyInstanceUID", "1.2*"), ("limit", "5")], tag_of, TAG_VR)
    assert search.orthanc == [("0020000D", "1.2.3"), ("00080020", "20240101-20240131"),
                              ("includefield", "00100010"), ("includefield", "0020000D")]
    assert [(f.tag, f.value) for f in search.local] == [("00100010", "Doe^Jane"), ("0020000D", "1.2*")]
    assert search.limit == 5 and search.orthanc_query().endswith("includefield=0020000D")  # paged here


def part(uid: str, study: str = "1.1", problem: int | None = None) -> Part:
    uids = {"StudyInstanceUID": study, "SeriesInstanceUID": "1.2", "SOPInstanceUID": uid, "SOPClassUID": "1.9"}
    return Part(b"", uids, problem)


def test_parts_are_sorted_before_orthanc_sees_them() -> None:
    """Conformance v2, "Store Failure Reason Codes": 43264 validation, 43265 other study than the path, 45070
    stored already, 45071 being stored by another process."""
    sorted_parts = triage([part("a"), part("b"), part("a"), part("c"), part("d", problem=43264), part("e", "9.9")],
                          stored={"1.1/1.2/b": 1}, storing={"1.1/1.2/c"}, study_in_path="1.1")
    assert [p.uids["SOPInstanceUID"] for p in sorted_parts.forward] == ["a"]
    assert [(f.get("00081155", {}).get("Value", [None])[0], f["00081197"]["Value"][0]) for f in sorted_parts.failed] \
        == [("b", 45070), ("a", 45070), ("c", 45071), ("d", 43264), ("e", 43265)]


def test_the_state_of_an_entry_is_computed_when_it_is_read() -> None:
    """Change feed overview, "States"; the service's own test: create, delete, create of one instance reads back
    replaced, replaced, current."""
    feed = changefeed.empty_feed()
    changefeed.record_created(feed, [("s", "r", "i")], 1.0)
    assert [changefeed.state_of(feed, e) for e in feed["entries"]] == ["current"]
    changefeed.record_deleted(feed, "s", 2.0)
    assert [changefeed.state_of(feed, e) for e in feed["entries"]] == ["deleted", "deleted"]
    changefeed.record_created(feed, [("s", "r", "i")], 3.0)
    assert [(e[0], e[2], changefeed.state_of(feed, e)) for e in feed["entries"]] == [
        (1, "create", "replaced"), (2, "delete", "replaced"), (3, "create", "current")]


# --- the live service ---------------------------------------------------------------------------------------


@pytest.fixture
def store(data_store: DataStore) -> DataStore:
    data_store.clear()
    return data_store


@pytest.fixture
def http(store: DataStore) -> Any:
    with client(store.deployment.info, headers=store.headers()) as c:
        yield c


def stow(http: httpx.Client, root: str, parts: list[bytes], study: str | None = None) -> tuple[int, dict[str, Any]]:
    body, content_type = multipart_related(parts)
    url = f"{root}/studies" + (f"/{study}" if study else "")
    response = http.post(url, content=body, headers={"Content-Type": content_type})
    return response.status_code, response.json() if response.content else {}


def reasons(answer: dict[str, Any]) -> list[tuple[str | None, int]]:
    return [(item.get("00081155", {}).get("Value", [None])[0], item["00081197"]["Value"][0])
            for item in (answer.get("00081198") or {}).get("Value", [])]


def stored(answer: dict[str, Any]) -> list[str]:
    return [item["00081155"]["Value"][0] for item in (answer.get("00081199") or {}).get("Value", [])]


def test_a_duplicate_instance_is_answered_45070(store: DataStore, http: httpx.Client) -> None:
    """Conformance v2, "Store Required Attributes" (45070 for the same identifiers) and "Store Response Status
    Codes": 409 when none was stored, 202 when some were."""
    first, second = JANE
    assert stow(http, store.root, [first.data])[0] == 200
    status, answer = stow(http, store.root, [first.data])
    assert (status, reasons(answer), stored(answer)) == (409, [(first.sop_instance_uid, 45070)], [])
    status, answer = stow(http, store.root, [first.data, second.data])
    assert (status, reasons(answer), stored(answer)) == (202, [(first.sop_instance_uid, 45070)],
                                                         [second.sop_instance_uid])
    assert len(store.study_uids()) == 1


def test_a_part_that_is_not_dicom_is_answered_43264_without_uids(store: DataStore, http: httpx.Client) -> None:
    """Conformance v2, "Store Response Payload" (a FailedSOPSequence item has the UIDs only "if the DICOM file
    attempting to be stored could be read") and "Store Failure Reason Codes" (43264: failed the validation)."""
    status, answer = stow(http, store.root, [b"this is not DICOM"])
    assert (status, reasons(answer)) == (409, [(None, 43264)])
    status, answer = stow(http, store.root, [b"this is not DICOM", JURGEN[0].data])
    assert (status, reasons(answer), stored(answer)) == (202, [(None, 43264)], [JURGEN[0].sop_instance_uid])


def test_a_part_of_another_study_than_the_path_is_answered_43265(store: DataStore, http: httpx.Client) -> None:
    """Conformance v2, "Store (STOW-RS)": with `studies/{study}` "any instance that does not belong to the
    provided study will be rejected with 43265"; the study's RetrieveURL is given when one was stored."""
    status, answer = stow(http, store.root, [JANE[0].data, JURGEN[0].data], study=JANE[0].study_uid)
    assert (status, reasons(answer)) == (202, [(JURGEN[0].sop_instance_uid, 43265)])
    assert answer["00081190"]["Value"] == [f"{store.root}/studies/{JANE[0].study_uid}"]


def test_only_multipart_dicom_is_taken(store: DataStore, http: httpx.Client) -> None:
    """Conformance v2, "Store (STOW-RS)" Content-Types and "Store Response Status Codes": 415 otherwise."""
    refused = http.post(f"{store.root}/studies", content=b"{}", headers={"Content-Type": "application/json"})
    assert refused.status_code == 415
    single = http.post(f"{store.root}/studies", content=JURGEN[0].data, headers={"Content-Type": "application/dicom"})
    assert single.status_code == 200


def search(http: httpx.Client, root: str, **params: str) -> int | str:
    found = http.get(f"{root}/studies", params=params)
    return found.status_code if found.status_code != 200 else ",".join(
        s["00100020"]["Value"][0] for s in found.json())


def test_qido_matches_the_azure_way(store: DataStore, http: httpx.Client) -> None:
    """Conformance v2, "Search Matching" (exact; fuzzy for PN), "Supported Search Parameters" (fuzzymatching,
    limit) and "Additional Notes" (PN case- and accent-insensitive, other strings case-insensitive); no
    wildcards; "We do not support searching using empty string"."""
    assert stow(http, store.root, [JANE[0].data, JURGEN[0].data])[0] == 200
    root = store.root
    assert search(http, root, PatientName="Doe^Jane Q") == "FID-1"  # Orthanc alone: 204 (values not decoded)
    assert search(http, root, PatientName="DOE^jane q") == "FID-1"
    assert search(http, root, PatientName="muller^jurgen") == "FID-2"  # accents ignored for PN
    assert search(http, root, PatientName="Doe") == 204  # exact, not a prefix
    assert search(http, root, PatientName="Doe*") == 204  # `*` is a character, not a wildcard
    assert search(http, root, PatientName="jane", fuzzymatching="true") == "FID-1"
    assert search(http, root, PatientName="ane", fuzzymatching="true") == 204
    assert search(http, root, StudyDescription="ct chest WITH contrast") == "FID-1"  # spaces, any case
    assert search(http, root, StudyDescription="*chest*") == 204
    assert search(http, root, StudyDescription="") == 400
    assert search(http, root, PatientID="fid-2") == "FID-2"
    assert search(http, root, StudyDate="20231201-20240101", PatientID="FID-1") == "FID-1"
    assert search(http, root, limit="1", offset="1") in ("FID-1", "FID-2")
    assert search(http, root, limit="201") == 400


def feed(http: httpx.Client, root: str, **params: str) -> Any:
    response = http.get(f"{root}/changefeed", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_change_feed_records_creates_and_deletes(store: DataStore, http: httpx.Client) -> None:
    """Change feed overview: `/changefeed` (startTime, offset, limit, includemetadata) and `/changefeed/latest`;
    entries with Sequence, UIDs, Action create|delete, Timestamp, State, Metadata."""
    start = http.get(f"{store.root}/changefeed/latest", params={"includemetadata": "false"}).json()
    since = start["Timestamp"] if start else None
    uid = JURGEN[0].sop_instance_uid
    assert stow(http, store.root, [JURGEN[0].data])[0] == 200
    assert http.delete(f"{store.root}/studies/{JURGEN[0].study_uid}").status_code == 204
    assert stow(http, store.root, [JURGEN[0].data])[0] == 200
    params = {"startTime": since} if since else {}
    entries = [e for e in feed(http, store.root, **params) if e["SopInstanceUid"] == uid][-3:]
    assert [(e["Action"], e["State"]) for e in entries] == [("create", "replaced"), ("delete", "replaced"),
                                                             ("create", "current")]
    assert [e["Sequence"] for e in entries] == sorted(e["Sequence"] for e in entries)
    assert entries[-1]["Metadata"]["00080018"]["Value"] == [uid]  # includemetadata defaults to true
    latest = http.get(f"{store.root}/changefeed/latest", params={"includemetadata": "false"}).json()
    assert latest["Sequence"] == entries[-1]["Sequence"] and "Metadata" not in latest
    window = feed(http, store.root, startTime=entries[1]["Timestamp"], limit="1", offset="1",
                  includemetadata="false")
    assert [e["Sequence"] for e in window] == [entries[2]["Sequence"]]
    assert http.get(f"{store.root}/changefeed", params={"limit": "201"}).status_code == 400


def test_the_change_feed_survives_a_restart(data_store: DataStore, tmp_path: Path) -> None:
    """The feed is kept in the state directory (the service's journal), as the service keeps it: a restarted
    sandbox reads the same entries and numbers on from there."""
    from provision.sandbox import start_sandbox

    plan = tmp_path / "plan.yaml"
    with start_sandbox(tmp_path / "sandbox", lro_seconds=0.05) as sandbox:
        info = sandbox.info
        plan.write_text(data_store.plan.read_text().replace(
            data_store.deployment.sandbox.world.identity.sp_object_id, sandbox.world.identity.sp_object_id))
        env = {"PROVISION_SANDBOX": str(Path(info.state_dir) / "sandbox.json"), "NO_COLOR": "1"}
        from concurrent.futures import ThreadPoolExecutor

        from typer.testing import CliRunner

        from provision.cli.main import app

        with ThreadPoolExecutor(1) as pool:
            applied = pool.submit(CliRunner().invoke, app, ["azure", "apply", str(plan), "--auto-approve", "--out",
                                                            str(tmp_path / "out")], env=env).result()
        assert applied.exit_code == 0, applied.output
        root = f"{info.url}/dicom/dataws-data-dicom/v2"
        with client(info, headers={"Authorization": f"Bearer {app_token(info, DICOM_AUDIENCE)}"}) as http:
            assert stow(http, root, [JANE[0].data])[0] == 200
            before = feed(http, root, includemetadata="false")
    with start_sandbox(tmp_path / "sandbox", lro_seconds=0.05) as again:
        root = f"{again.info.url}/dicom/dataws-data-dicom/v2"
        with client(again.info, headers={"Authorization": f"Bearer {app_token(again.info, DICOM_AUDIENCE)}"}) as http:
            after = feed(http, root, includemetadata="false")
            assert [(e["Sequence"], e["SopInstanceUid"], e["State"]) for e in after] == \
                [(e["Sequence"], e["SopInstanceUid"], e["State"]) for e in before]
            assert stow(http, root, [JANE[0].data])[0] == 409  # still known as stored: 45070
            assert stow(http, root, [JANE[1].data])[0] == 200
            assert [e["Sequence"] for e in feed(http, root, includemetadata="false")] == [1, 2]
    (journal,) = (tmp_path / "sandbox" / "dicom").glob("dataws-data-dicom-*/changefeed.jsonl")
    assert [json.loads(line)[0] for line in journal.read_text().splitlines()] == [1, 2]
