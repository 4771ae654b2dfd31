"""STOW-RS as Azure's DICOM service answers it, in front of an Orthanc that answers otherwise.

Orthanc 1.10 with DICOMweb 1.7 stores a part it already holds again without a word (200, listed as stored),
answers a request with one unreadable part 400 for all of it (although it stored the others), and never 202.
Azure (conformance statement v2, "Store (STOW-RS)" and its response tables) checks every part and answers per
instance, so the sandbox does that before Orthanc sees anything:

- a part that cannot be read as DICOM: FailedSOPSequence item with FailureReason **43264** and no UIDs;
- a part without StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID, SOPClassUID or PatientID, or with a UID
  that is not 1-64 characters of letters, digits, `.` and `-`: **43264** with the UIDs it has;
- `POST studies/{study}` with a part of another study: **43265**;
- Study, Series and SOP Instance UID already stored (or earlier in the same request): **45070**;
- the same instance being stored by a concurrent request: **45071**;
- everything else is forwarded to Orthanc in one request; what Orthanc stores is listed in
  ReferencedSOPSequence (with RetrieveURLs of the service), what it fails is 272.

Status: **200** all stored, **202** some stored and some failed, **409** none stored, **204** an empty body,
**415** a Content-Type other than `multipart/related; type="application/dicom"` or `application/dicom`.
Validation warnings (WarningReason 1/45063 on searchable attributes) are not emulated.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ... import dicomweb
from ...dicomweb import multipart_boundary, read_uids
from .errors import DicomError

VALIDATION_FAILURE = 43264
STUDY_MISMATCH = 43265
ALREADY_STORED = 45070
BEING_STORED = 45071
PROCESSING_FAILURE = 272
REQUIRED = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID", "PatientID")
_AZURE_UID = re.compile(r"^[A-Za-z0-9.\-]{1,64}$")


def split_parts(content_type: str, body: bytes) -> list[bytes]:
    """The parts of a STOW request body (415 for a media type Azure does not take)."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/dicom":
        return [body] if body else []
    if media != "multipart/related":
        raise DicomError(415, f"The content type '{content_type}' is not supported.")  # wording unverified
    boundary = multipart_boundary(content_type)
    if boundary is None:
        raise DicomError(400, "The multipart request has no boundary.")  # wording unverified
    return dicomweb.split_parts(boundary, body)


@dataclass(frozen=True)
class Part:
    """One part of a STOW request, as far as it could be read."""

    data: bytes
    uids: Mapping[str, str]
    problem: int | None = None

    @property
    def key(self) -> str:
        """Azure's identity of an instance: Study/Series/SOP Instance UID."""
        return f"{self.uids.get('StudyInstanceUID', '')}/{self.uids.get('SeriesInstanceUID', '')}/" \
               f"{self.uids.get('SOPInstanceUID', '')}"


def inspect(data: bytes) -> Part:
    """Read a part's header (never its pixels) and say whether Azure would refuse it outright."""
    uids = read_uids(data, REQUIRED)
    if uids is None:
        return Part(data, {}, VALIDATION_FAILURE)
    present = {k: v for k, v in uids.items() if v}
    bad_uid = any(not _AZURE_UID.match(present.get(k, "")) for k in REQUIRED[:3])
    if uids["PatientID"] is None or not all(present.get(k) for k in REQUIRED[:4]) or bad_uid:
        return Part(data, present, VALIDATION_FAILURE)
    return Part(data, present)


def failed_item(part: Part, reason: int) -> dict[str, Any]:
    item: dict[str, Any] = {}
    if part.uids.get("SOPClassUID"):
        item["00081150"] = {"vr": "UI", "Value": [part.uids["SOPClassUID"]]}
    if part.uids.get("SOPInstanceUID"):
        item["00081155"] = {"vr": "UI", "Value": [part.uids["SOPInstanceUID"]]}
    item["00081197"] = {"vr": "US", "Value": [reason]}
    return item


@dataclass
class Triage:
    """A request's parts sorted: what goes to Orthanc, and the failures Azure reports itself."""

    forward: list[Part] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)


def triage(parts: Iterable[Part], *, stored: Mapping[str, Any], storing: set[str],
           study_in_path: str | None) -> Triage:
    """Sort `parts` against what the service holds (`stored`, by `Part.key`) and what concurrent requests are
    storing (`storing`, by key) the way the module docstring says (pure)."""
    result = Triage()
    seen: set[str] = set()
    for part in parts:
        if part.problem is not None:
            result.failed.append(failed_item(part, part.problem))
        elif study_in_path is not None and part.uids["StudyInstanceUID"] != study_in_path:
            result.failed.append(failed_item(part, STUDY_MISMATCH))
        elif part.key in stored or part.key in seen:
            result.failed.append(failed_item(part, ALREADY_STORED))
        elif part.key in storing:
            result.failed.append(failed_item(part, BEING_STORED))
        else:
            seen.add(part.key)
            result.forward.append(part)
    return result


def answer(referenced: list[dict[str, Any]], failed: list[dict[str, Any]], study_url: str | None) -> tuple[int, bytes]:
    """Azure's status and response dataset (DICOM JSON) for what was stored and what failed."""
    if failed and not referenced:
        status = 409
    elif failed:
        status = 202
    else:
        status = 200
    body: dict[str, Any] = {}
    if study_url is not None and referenced:
        body["00081190"] = {"vr": "UR", "Value": [study_url]}
    if failed:
        body["00081198"] = {"vr": "SQ", "Value": failed}
    if referenced:
        body["00081199"] = {"vr": "SQ", "Value": referenced}
    return status, json.dumps(body).encode()


def orthanc_outcome(status: int, content: bytes, forwarded: list[Part]) -> tuple[list[dict[str, Any]],
                                                                               list[dict[str, Any]]]:
    """What Orthanc stored (its ReferencedSOPSequence items) and failed (272) of the forwarded parts."""
    try:
        doc = json.loads(content) if content else {}
    except ValueError:
        doc = {}
    doc = doc if isinstance(doc, dict) else {}
    referenced = list((doc.get("00081199") or {}).get("Value") or [])
    stored = {str(((item.get("00081155") or {}).get("Value") or [""])[0]) for item in referenced}
    failed = [failed_item(p, PROCESSING_FAILURE) for p in forwarded if p.uids["SOPInstanceUID"] not in stored]
    return referenced, failed


__all__ = ["Part", "Triage", "answer", "inspect", "orthanc_outcome", "split_parts", "triage"]
