"""provision.dicom: the configuration (pure), the synthetic instances (checked with pydicom), and a real
Orthanc started, used, stopped and started again on the same storage."""

from __future__ import annotations

import io
import time
from pathlib import Path

import httpx
import pydicom
import pytest
from e2e_system import require_system_programs

from provision.dicom import OrthancSettings, orthanc_config, start_orthanc
from provision.dicom.orthanc_process import PID_FILE
from provision.dicom.synthetic import multipart_related, synthetic_study


def test_config_keeps_orthanc_private() -> None:
    settings = OrthancSettings(storage_dir=Path("/data/x"), http_port=8123, plugins=(Path("/p/web.so"),),
                               password="secret")
    config = orthanc_config(settings)
    assert config["RemoteAccessAllowed"] is False
    assert config["AuthenticationEnabled"] is True
    assert config["RegisteredUsers"] == {"provision": "secret"}
    assert config["DicomServerEnabled"] is False
    assert config["StorageDirectory"] == config["IndexDirectory"] == "/data/x"
    assert config["Plugins"] == ["/p/web.so"]
    assert config["DicomWeb"]["Root"] == "/dicom-web/"


def test_generated_passwords_differ() -> None:
    a = OrthancSettings(storage_dir=Path("/a"), http_port=1, plugins=())
    b = OrthancSettings(storage_dir=Path("/a"), http_port=1, plugins=())
    assert a.password != b.password and len(a.password) >= 24


def test_synthetic_study_is_valid_dicom() -> None:
    study = synthetic_study(seed="unit", instances=2, study_description="unit study", rows=32, columns=48)
    assert len({i.sop_instance_uid for i in study}) == 2
    assert len({i.study_uid for i in study}) == 1
    for number, instance in enumerate(study, start=1):
        ds = pydicom.dcmread(io.BytesIO(instance.data))
        assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID == instance.sop_instance_uid
        assert ds.SOPClassUID == instance.sop_class_uid
        assert ds.StudyInstanceUID == instance.study_uid and ds.SeriesInstanceUID == instance.series_uid
        assert ds.StudyDescription == "unit study"
        assert ds.InstanceNumber == number
        assert (ds.Rows, ds.Columns, ds.BitsAllocated, ds.BitsStored) == (32, 48, 16, 12)
        assert len(ds.PixelData) == 32 * 48 * 2
        assert all(len(uid) <= 64 for uid in (ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID))


def test_synthetic_study_seed_is_deterministic() -> None:
    assert synthetic_study(seed="s")[0].data == synthetic_study(seed="s")[0].data
    assert synthetic_study()[0].study_uid != synthetic_study()[0].study_uid


def test_multipart_body_has_one_part_per_instance() -> None:
    body, content_type = multipart_related([b"AAAA", b"BB"])
    boundary = content_type.split("boundary=")[1]
    assert content_type.startswith('multipart/related; type="application/dicom"')
    assert body.count(f"--{boundary}\r\n".encode()) == 2 and body.endswith(f"--{boundary}--\r\n".encode())


@pytest.mark.slow
def test_orthanc_serves_dicomweb_and_keeps_data_across_restarts(tmp_path: Path) -> None:
    require_system_programs()
    study = synthetic_study(seed="restart")
    body, content_type = multipart_related([i.data for i in study])
    started = time.monotonic()
    first = start_orthanc(tmp_path / "store")
    ready = time.monotonic() - started
    auth = {"Authorization": first.authorization}
    assert httpx.get(f"{first.url}/system").status_code == 401  # Basic auth is required
    stored = httpx.post(f"{first.dicomweb_url}/studies", content=body,
                        headers={**auth, "Content-Type": content_type, "Accept": "application/dicom+json"})
    assert stored.status_code == 200
    assert (tmp_path / "store" / PID_FILE).read_text().strip() == str(first.pid)
    assert ready < 5
    first.terminate()  # still shutting down (about 3 s) when the next one starts on the same storage
    with start_orthanc(tmp_path / "store") as second:
        assert not first.alive()
        found = httpx.get(f"{second.dicomweb_url}/studies", headers={"Authorization": second.authorization,
                                                                     "Accept": "application/dicom+json"})
        assert [s["0020000D"]["Value"][0] for s in found.json()] == [study[0].study_uid]
    assert not second.alive()
    assert not (tmp_path / "store" / PID_FILE).exists()
