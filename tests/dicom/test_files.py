"""What an upload reads: files, folders and zip archives found one at a time, each file's UIDs from its header,
and a reason for every input that is not an uploadable DICOM file."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from provision.dicom.files import DicomFile, Source, Unreadable, read_header, scan
from provision.dicom.synthetic import synthetic_study
from provision.dicom.upload import Outcome, index_files


def write_study(folder: Path, seed: str, instances: int = 2) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number, instance in enumerate(synthetic_study(seed=seed, instances=instances), start=1):
        path = folder / f"{seed}-{number}.dcm"
        path.write_bytes(instance.data)
        paths.append(path)
    return paths


def test_folders_are_walked_in_name_order_and_zips_member_by_member(tmp_path: Path) -> None:
    write_study(tmp_path / "b", "b")
    write_study(tmp_path / "a" / "deeper", "a")
    archive = tmp_path / "a" / "more.ZIP"
    with zipfile.ZipFile(archive, "w") as z:
        for number, instance in enumerate(synthetic_study(seed="z", instances=2)):
            z.writestr(f"dir/{number}.dcm", instance.data)
        z.writestr("notes.txt", "not an image")
    found = [str(s) for s in scan([tmp_path])]
    assert found == [f"{tmp_path}/a/more.ZIP!dir/0.dcm", f"{tmp_path}/a/more.ZIP!dir/1.dcm",
                     f"{tmp_path}/a/more.ZIP!notes.txt", f"{tmp_path}/a/deeper/a-1.dcm", f"{tmp_path}/a/deeper/a-2.dcm",
                     f"{tmp_path}/b/b-1.dcm", f"{tmp_path}/b/b-2.dcm"]
    member = next(s for s in scan([archive]) if isinstance(s, Source) and s.member == "dir/1.dcm")
    assert member.read() == synthetic_study(seed="z", instances=2)[1].data


def test_scanning_is_lazy(tmp_path: Path) -> None:
    write_study(tmp_path, "lazy", 3)
    files = scan([tmp_path])
    first = next(files)
    assert isinstance(first, Source) and first.path.name == "lazy-1.dcm"


@pytest.mark.parametrize(("content", "reason"), [
    (b"plain text", "not a DICOM file (no DICM preamble)"),
    (synthetic_study(seed="cut")[0].data[:300], "DICOM without StudyInstanceUID"),  # truncated in the header
])
def test_files_that_are_not_dicom_get_a_reason(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "x.dcm"
    path.write_bytes(content)
    found = read_header(Source(path, size=len(content)))
    assert isinstance(found, Unreadable) and found.reason.startswith(reason)


def test_a_dicom_file_without_uids_is_named_as_such(tmp_path: Path) -> None:
    import pydicom

    instance = synthetic_study(seed="nouid")[0]
    dataset = pydicom.dcmread(__import__("io").BytesIO(instance.data))
    del dataset.SeriesInstanceUID
    path = tmp_path / "nouid.dcm"
    dataset.save_as(path)
    found = read_header(Source(path))
    assert isinstance(found, Unreadable) and found.reason == "DICOM without SeriesInstanceUID"


def test_the_header_gives_the_four_uids(tmp_path: Path) -> None:
    (path,) = write_study(tmp_path, "uids", 1)
    instance = synthetic_study(seed="uids")[0]
    found = read_header(Source(path, size=path.stat().st_size))
    assert found == DicomFile(Source(path, size=len(instance.data)), instance.study_uid, instance.series_uid,
                              instance.sop_instance_uid, instance.sop_class_uid)


def test_missing_paths_and_broken_archives_are_reported(tmp_path: Path) -> None:
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK not really")
    found = list(scan([tmp_path / "absent", broken]))
    assert [(type(f).__name__, f.reason) for f in found if isinstance(f, Unreadable)] == [
        ("Unreadable", "no such file or folder"), ("Unreadable", "not a readable zip archive (File is not a zip file)")]


def test_the_index_groups_by_study_and_skips_duplicates_and_junk(tmp_path: Path) -> None:
    write_study(tmp_path / "one", "one", 3)
    write_study(tmp_path / "two", "two", 2)
    write_study(tmp_path / "copy", "one", 1)  # the same first instance again
    (tmp_path / "README.md").write_text("# studies")
    index = index_files([tmp_path])
    assert [len(files) for files in index.studies.values()] == [3, 2]
    assert index.instances == 5
    skipped = {Path(r.file).name: r.reason for r in index.results if r.outcome is Outcome.SKIPPED}
    assert skipped == {"README.md": "not a DICOM file (no DICM preamble)",
                       "one-1.dcm": f"same SOP Instance UID as {tmp_path}/copy/one-1.dcm"}
