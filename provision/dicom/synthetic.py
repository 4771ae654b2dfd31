"""Small synthetic DICOM instances (DICOM Part 10 files) for tests and for `verify --write-test`.

A few dozen lines of encoder instead of a runtime dependency on pydicom: Explicit VR Little Endian,
Secondary Capture Image Storage, 16-bit MONOCHROME2 pixels showing a ring and a gradient, so that a
screenshot of a viewer shows something recognisable. The tests check the output with pydicom.
"""

from __future__ import annotations

import math
import struct
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
SECONDARY_CAPTURE_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.7"
_UID_NAMESPACE = uuid.UUID("0b9a5c1e-8f43-4f6e-9d0a-7e2f4c3b1a55")
IMPLEMENTATION_CLASS_UID = "2.25." + str(uuid.uuid5(_UID_NAMESPACE, "implementation").int)
IMPLEMENTATION_VERSION = "PROVISION_1"

# VRs whose length field is 4 bytes (after two reserved bytes) in explicit VR encoding
_LONG_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT"})


def derived_uid(*parts: str) -> str:
    """A deterministic UID under the UUID-derived root 2.25 (at most 44 characters)."""
    return "2.25." + str(uuid.uuid5(_UID_NAMESPACE, "/".join(parts)).int)


def random_uid() -> str:
    return "2.25." + str(uuid.uuid4().int)


def _element(tag: int, vr: str, value: bytes) -> bytes:
    if len(value) % 2:
        value += b"\0" if vr in ("UI", "OB") else b" "
    group, element = tag >> 16, tag & 0xFFFF
    if vr in _LONG_VRS:
        return struct.pack("<HH2sHI", group, element, vr.encode("ascii"), 0, len(value)) + value
    if len(value) > 0xFFFF:
        raise ValueError(f"value of ({group:04X},{element:04X}) is too long for VR {vr}")
    return struct.pack("<HH2sH", group, element, vr.encode("ascii"), len(value)) + value


def _encode(elements: Iterable[tuple[int, str, str | int | bytes | tuple[int, ...]]]) -> bytes:
    out = bytearray()
    for tag, vr, value in sorted(elements, key=lambda e: e[0]):
        if isinstance(value, bytes):
            raw = value
        elif vr == "US":
            values = value if isinstance(value, tuple) else (int(value),)
            raw = struct.pack(f"<{len(values)}H", *values)
        elif vr == "UL":
            raw = struct.pack("<I", int(value))  # type: ignore[arg-type]
        else:
            raw = str(value).encode("utf-8")  # ASCII, or UTF-8 under SpecificCharacterSet ISO_IR 192
        out += _element(tag, vr, raw)
    return bytes(out)


def ring_pixels(rows: int, columns: int, phase: float = 0.0) -> bytes:
    """16-bit little-endian pixels (12 bits used): a bright ring over a diagonal gradient."""
    values = []
    cy, cx = (rows - 1) / 2, (columns - 1) / 2
    radius = min(rows, columns) * (0.28 + 0.08 * math.sin(phase))
    for y in range(rows):
        for x in range(columns):
            gradient = int(1500 * (x + y) / max(1, rows + columns - 2))
            ring = 4000 if abs(math.hypot(y - cy, x - cx) - radius) < max(1.5, rows / 24) else 0
            values.append(min(4095, gradient + ring))
    return struct.pack(f"<{len(values)}H", *values)


@dataclass(frozen=True)
class SyntheticInstance:
    study_uid: str
    series_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    data: bytes  # the Part 10 file


def synthetic_study(
    *,
    seed: str | None = None,
    instances: int = 1,
    study_description: str = "provision test study",
    patient_name: str = "Provision^Test",
    patient_id: str = "PROVISION-TEST",
    accession_number: str = "PROV0001",
    study_date: str = "20240101",
    rows: int = 64,
    columns: int = 64,
) -> list[SyntheticInstance]:
    """One study with one series of `instances` images. The same `seed` gives the same UIDs and bytes;
    `seed=None` gives fresh UIDs (a new study each call)."""
    if instances < 1:
        raise ValueError("a study needs at least one instance")
    root = seed if seed is not None else uuid.uuid4().hex
    study_uid = derived_uid(root, "study")
    series_uid = derived_uid(root, "series")
    result = []
    texts = (study_description, patient_name, patient_id, accession_number)
    # names with accents (Müller) are written in UTF-8, which the data set must then declare
    charset = [] if all(t.isascii() for t in texts) else [(0x00080005, "CS", "ISO_IR 192")]
    for number in range(1, instances + 1):
        sop_uid = derived_uid(root, "instance", str(number))
        dataset = _encode(
            [
                *charset,
                (0x00080016, "UI", SECONDARY_CAPTURE_IMAGE_STORAGE),
                (0x00080018, "UI", sop_uid),
                (0x00080020, "DA", study_date),
                (0x00080030, "TM", "120000"),
                (0x00080050, "SH", accession_number),
                (0x00080060, "CS", "OT"),
                (0x00080064, "CS", "WSD"),
                (0x00080090, "PN", ""),
                (0x00081030, "LO", study_description),
                (0x0008103E, "LO", "synthetic series"),
                (0x00100010, "PN", patient_name),
                (0x00100020, "LO", patient_id),
                (0x00100030, "DA", "19700101"),
                (0x00100040, "CS", "O"),
                (0x0020000D, "UI", study_uid),
                (0x0020000E, "UI", series_uid),
                (0x00200010, "SH", "1"),
                (0x00200011, "IS", "1"),
                (0x00200013, "IS", str(number)),
                (0x00200020, "CS", "L\\P"),
                (0x00280002, "US", 1),
                (0x00280004, "CS", "MONOCHROME2"),
                (0x00280010, "US", rows),
                (0x00280011, "US", columns),
                (0x00280030, "DS", "1\\1"),
                (0x00280100, "US", 16),
                (0x00280101, "US", 12),
                (0x00280102, "US", 11),
                (0x00280103, "US", 0),
                (0x00281050, "DS", "2048"),
                (0x00281051, "DS", "4096"),
                (0x7FE00010, "OW", ring_pixels(rows, columns, phase=number)),
            ]
        )
        meta_body = _encode(
            [
                (0x00020001, "OB", b"\0\1"),
                (0x00020002, "UI", SECONDARY_CAPTURE_IMAGE_STORAGE),
                (0x00020003, "UI", sop_uid),
                (0x00020010, "UI", EXPLICIT_VR_LITTLE_ENDIAN),
                (0x00020012, "UI", IMPLEMENTATION_CLASS_UID),
                (0x00020013, "SH", IMPLEMENTATION_VERSION),
            ]
        )
        meta = _encode([(0x00020000, "UL", len(meta_body))]) + meta_body
        data = b"\0" * 128 + b"DICM" + meta + dataset
        result.append(SyntheticInstance(study_uid, series_uid, sop_uid, SECONDARY_CAPTURE_IMAGE_STORAGE, data))
    return result


def multipart_related(parts: Iterable[bytes], content_type: str = "application/dicom") -> tuple[bytes, str]:
    """A STOW-RS request body and its Content-Type header value."""
    boundary = "provision-" + uuid.uuid4().hex
    body = bytearray()
    for part in parts:
        body += f"--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode("ascii") + part + b"\r\n"
    body += f"--{boundary}--\r\n".encode("ascii")
    return bytes(body), f'multipart/related; type="{content_type}"; boundary={boundary}'
