"""`provision orthanc upload | search` against a running deployment (Debian's Orthanc behind nginx): every
instance stored once although Orthanc would store a second copy, a re-run sends nothing, a text file is skipped."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import Shared

from provision.dicom.synthetic import synthetic_study


def test_upload_stores_once_a_rerun_sends_nothing_and_search_finds_it(shared: Shared, tmp_path: Path) -> None:
    site = shared.site
    study = synthetic_study(seed="orthanc-upload", instances=4, patient_id="PAT-ORTHANC-UPLOAD")
    for instance in study:
        (tmp_path / f"{instance.sop_instance_uid}.dcm").write_bytes(instance.data)
    (tmp_path / "notes.txt").write_text("not DICOM\n")

    first = site.provision("orthanc", "upload", str(site.plan), str(tmp_path), "-o", "json")
    assert first.exit_code == 0, first.output
    report = json.loads(first.output)
    assert report["summary"]["stored"] == 4 and report["summary"]["already present"] == 0, report["summary"]
    assert report["requests"].get("store", 0) >= 1, report["requests"]
    assert [f["outcome"] for f in report["files"] if f["file"].endswith("notes.txt")] == ["skipped"], report

    again = json.loads(site.ok("orthanc", "upload", str(site.plan), str(tmp_path), "-o", "json"))
    assert again["summary"]["stored"] == 0 and again["summary"]["already present"] == 4, again["summary"]
    assert "store" not in again["requests"], again["requests"]  # asked per study, nothing sent

    with site.client() as http:  # Orthanc itself: four instances, not eight
        found = http.get(f"/dicom-web/studies/{study[0].study_uid}/instances", auth=site.admin(),
                         headers={"Accept": "application/dicom+json"})
    assert found.status_code == 200 and len(found.json()) == 4

    listed = site.ok("orthanc", "search", str(site.plan), "--patient-id", "PAT-ORTHANC-UPLOAD", "-o", "json")
    assert [s["StudyInstanceUID"] for s in json.loads(listed)["studies"]] == [study[0].study_uid], listed
