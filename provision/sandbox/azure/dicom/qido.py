"""QIDO-RS parameters and the traffic to Orthanc: searchable attributes, parameters, query strings.

- **attributes**: the keywords and tags the service knows (`tag_of`), and those it can search on per QIDO
  target (the conformance statement's "Searchable Attributes"); searching on an attribute that is neither
  searchable nor a ready extended query tag is 400; `limit` must be 1-200;
- **query strings** for Orthanc are `provision/sandbox/dicomweb.py`'s (`orthanc_query`);
- matching itself (what Orthanc compares wrongly) is `matching.py`'s; URLs are rewritten by
  `provision/sandbox/dicomweb.py`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .errors import DicomError

QIDO_LIMIT_MAX = 200

#: keyword -> (tag, VR) for the attributes the service can search on and a few common extended query tags.
#: (The sandbox carries no full DICOM dictionary; other standard tags are accepted by hex path with a VR.)
KEYWORDS: dict[str, tuple[str, str]] = {
    "StudyInstanceUID": ("0020000D", "UI"), "PatientName": ("00100010", "PN"), "PatientID": ("00100020", "LO"),
    "PatientBirthDate": ("00100030", "DA"), "AccessionNumber": ("00080050", "SH"),
    "ReferringPhysicianName": ("00080090", "PN"), "StudyDate": ("00080020", "DA"),
    "StudyDescription": ("00081030", "LO"), "ModalitiesInStudy": ("00080061", "CS"),
    "SeriesInstanceUID": ("0020000E", "UI"), "Modality": ("00080060", "CS"),
    "PerformedProcedureStepStartDate": ("00400244", "DA"), "ManufacturerModelName": ("00081090", "LO"),
    "SOPInstanceUID": ("00080018", "UI"), "PatientSex": ("00100040", "CS"), "PatientAge": ("00101010", "AS"),
    "Manufacturer": ("00080070", "LO"), "InstitutionName": ("00080080", "LO"), "StationName": ("00081010", "SH"),
    "BodyPartExamined": ("00180015", "CS"), "ProtocolName": ("00181030", "LO"),
    "SeriesDescription": ("0008103E", "LO"), "StudyID": ("00200010", "SH"), "SeriesNumber": ("00200011", "IS"),
    "InstanceNumber": ("00200013", "IS"), "SOPClassUID": ("00080016", "UI"), "StudyTime": ("00080030", "TM"),
    "SeriesDate": ("00080021", "DA"), "Laterality": ("00200060", "CS"), "PatientWeight": ("00101030", "DS"),
}
TAG_VR = {tag: vr for tag, vr in KEYWORDS.values()}
_STUDY_ATTRS = ("StudyInstanceUID", "PatientName", "PatientID", "PatientBirthDate", "AccessionNumber",
                "ReferringPhysicianName", "StudyDate", "StudyDescription", "ModalitiesInStudy")
_SERIES_ATTRS = ("SeriesInstanceUID", "Modality", "PerformedProcedureStepStartDate", "ManufacturerModelName")
#: searchable attributes per QIDO target (conformance statement, "Searchable Attributes")
SEARCHABLE: dict[str, frozenset[str]] = {
    name: frozenset(KEYWORDS[k][0] for k in keys)
    for name, keys in {
        "studies": _STUDY_ATTRS,
        "series": (*_STUDY_ATTRS, *_SERIES_ATTRS),
        "instances": (*_STUDY_ATTRS, *_SERIES_ATTRS, "SOPInstanceUID"),
        "study-series": (*_SERIES_ATTRS, "SeriesInstanceUID"),
        "study-instances": (*_SERIES_ATTRS, "SOPInstanceUID"),
        "series-instances": ("SOPInstanceUID",),
    }.items()
}
_QIDO_CONTROL = frozenset({"includefield", "limit", "offset", "fuzzymatching"})


def tag_of(path: str) -> str | None:
    """`00100020` or `PatientID` (any case) -> `00100020`; None when neither."""
    if re.fullmatch(r"[0-9A-Fa-f]{8}", path):
        return path.upper()
    lowered = path.lower()
    return next((tag for keyword, (tag, _vr) in KEYWORDS.items() if keyword.lower() == lowered), None)


def qido_target(parts: list[str]) -> str | None:
    """Which QIDO search a GET path is (None: not a search)."""
    shapes = {
        ("studies",): "studies", ("series",): "series", ("instances",): "instances",
        ("studies", "*", "series"): "study-series", ("studies", "*", "instances"): "study-instances",
        ("studies", "*", "series", "*", "instances"): "series-instances",
    }
    key = tuple("*" if i % 2 else p.lower() for i, p in enumerate(parts))
    return shapes.get(key)


def check_qido(target: str, params: Iterable[tuple[str, str]], ready_tags: set[str]) -> None:
    """400 for a parameter the service refuses (`ready_tags`: the extended query tags one may search on)."""
    for key, value in params:
        lowered = key.lower()
        if lowered == "limit":
            if not value.isdigit() or not 1 <= int(value) <= QIDO_LIMIT_MAX:
                raise DicomError(400, f"The limit value '{value}' is invalid; it must be between 1 and "
                                      f"{QIDO_LIMIT_MAX}.")  # wording unverified
        elif lowered == "offset":
            if not value.isdigit():
                raise DicomError(400, f"The offset value '{value}' is invalid.")
        elif lowered not in _QIDO_CONTROL:
            tag = tag_of(key)
            if tag is None or (tag not in SEARCHABLE[target] and tag not in ready_tags):
                raise DicomError(400, f"The query tag '{key}' is not supported.")  # wording unverified
