"""What an upload reads: files, folders (recursively) and `.zip` archives, found lazily, and each DICOM file's
identifiers read from its header alone.

Nothing is held in memory but names: `scan` yields one `Source` (a path, or a member of a zip) at a time, and a
source's bytes are read again only when its batch is sent (`Source.read`). `read_header` parses the header
with pydicom up to the pixel data and keeps only the four UIDs an upload needs, about 0.3 ms per file.

A file is usable when it is DICOM Part 10 (the 128-byte preamble and `DICM`, as STOW-RS requires) and carries
Study, Series and SOP Instance UID and the SOP Class UID. Everything else is reported with its reason and
skipped: text files, images, a DICOMDIR (the index of a DICOM medium, not an instance), truncated files.
"""

from __future__ import annotations

import os
import threading
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

#: the header fields an upload needs (pydicom keywords)
UID_KEYWORDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID")
MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"
#: archives are recognised by name (a `.zip` that is not a zip archive is reported, not guessed at)
ZIP_SUFFIX = ".zip"
#: zip archives each worker keeps open (reading a member of an open archive skips its central directory)
_OPEN_ARCHIVES = 4


@dataclass(frozen=True)
class Source:
    """Where one file's bytes are: a path, or a member of the zip archive at `path`."""

    path: Path
    member: str | None = None
    size: int = 0

    def __str__(self) -> str:
        return f"{self.path}!{self.member}" if self.member is not None else str(self.path)

    def open(self) -> IO[bytes]:
        if self.member is None:
            return open(self.path, "rb")
        return _archive(self.path).open(self.member)

    def read(self) -> bytes:
        with self.open() as handle:
            return handle.read()


_local = threading.local()


def _archive(path: Path) -> zipfile.ZipFile:
    """This thread's open ZipFile for `path` (a few stay open per thread; ZipFile objects are not shared)."""
    archives: dict[Path, zipfile.ZipFile] = _local.__dict__.setdefault("archives", {})
    archive = archives.get(path)
    if archive is None:
        while len(archives) >= _OPEN_ARCHIVES:
            archives.pop(next(iter(archives))).close()
        archive = archives[path] = zipfile.ZipFile(path)
    return archive


@dataclass(frozen=True)
class Unreadable:
    """An input that is not an uploadable DICOM file, and why."""

    source: Source
    reason: str


def scan(paths: Iterable[str | Path]) -> Iterator[Source | Unreadable]:
    """Every file under `paths` (folders recursively, in name order; `.zip` archives member by member), one at a
    time. A path that does not exist, or an archive that cannot be opened, is yielded as `Unreadable`."""
    for given in paths:
        path = Path(given)
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    yield from _file(Path(root) / name)
        elif path.exists():
            yield from _file(path)
        else:
            yield Unreadable(Source(path), "no such file or folder")


def _file(path: Path) -> Iterator[Source | Unreadable]:
    if path.suffix.lower() != ZIP_SUFFIX:
        try:
            yield Source(path, size=path.stat().st_size)
        except OSError as error:
            yield Unreadable(Source(path), f"cannot read: {error.strerror or error}")
        return
    try:
        with zipfile.ZipFile(path) as archive:
            members = [info for info in archive.infolist() if not info.is_dir()]
    except (zipfile.BadZipFile, OSError) as error:
        yield Unreadable(Source(path), f"not a readable zip archive ({error})")
        return
    for info in members:
        yield Source(path, info.filename, info.file_size)


def check_paths(paths: Iterable[Path]) -> None:
    """Refuse, before anything is sent, a path given on the command line that does not exist."""
    from provision.errors import ConfigurationError

    missing = [str(path) for path in paths if not path.exists()]
    if missing:
        raise ConfigurationError(f"no such file or folder: {', '.join(missing)}",
                                 hint="pass DICOM files, folders holding them, or .zip archives")


@dataclass(frozen=True)
class DicomFile:
    """A DICOM file's identifiers, and where to read it again."""

    source: Source
    study_uid: str
    series_uid: str
    sop_instance_uid: str
    sop_class_uid: str

    @property
    def size(self) -> int:
        return self.source.size


def read_header(source: Source) -> DicomFile | Unreadable:
    """The file's UIDs, read from its header (never its pixel data); `Unreadable` with the reason otherwise."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        with source.open() as handle:
            dataset = pydicom.dcmread(handle, stop_before_pixels=True, specific_tags=list(UID_KEYWORDS))
    except InvalidDicomError:
        return Unreadable(source, "not a DICOM file (no DICM preamble)")
    except (OSError, zipfile.BadZipFile) as error:
        return Unreadable(source, f"cannot read: {getattr(error, 'strerror', None) or error}")
    except Exception as error:  # pydicom raises many kinds for damaged files (struct.error, ValueError, ...)
        return Unreadable(source, f"damaged DICOM file ({type(error).__name__}: {error})")
    media_class = str(getattr(getattr(dataset, "file_meta", None), "MediaStorageSOPClassUID", "") or "")
    if media_class == MEDIA_STORAGE_DIRECTORY:
        return Unreadable(source, "a DICOMDIR (the index of a DICOM medium), not an instance")
    values = {keyword: str(dataset.get(keyword, "") or "").strip() for keyword in UID_KEYWORDS}
    missing = [keyword for keyword, value in values.items() if not value]
    if missing:
        return Unreadable(source, "DICOM without " + ", ".join(missing))
    return DicomFile(source, values["StudyInstanceUID"], values["SeriesInstanceUID"], values["SOPInstanceUID"],
                     values["SOPClassUID"])


__all__ = ["DicomFile", "Source", "Unreadable", "check_paths", "read_header", "scan"]
