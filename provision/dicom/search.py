"""Search for studies (QIDO-RS) and show them as a table or a JSON document.

The filters are the few a person types (`--patient-id`, `--study-uid`, `--modality`); values are sent as
given: every service compares exactly (Azure and Google support no `*` wildcards there), so a search finds
what it names. Pages follow the endpoint's QIDO page size until `limit` studies are found or none are left.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .dicomweb import Client, Endpoint

#: (column, DICOM tag, keyword) of the table
COLUMNS = (
    ("study date", "00080020", "StudyDate"),
    ("patient id", "00100020", "PatientID"),
    ("patient name", "00100010", "PatientName"),
    ("modalities", "00080061", "ModalitiesInStudy"),
    ("instances", "00201208", "NumberOfStudyRelatedInstances"),
    ("description", "00081030", "StudyDescription"),
    ("study instance uid", "0020000D", "StudyInstanceUID"),
)
INCLUDE_FIELDS = ("00080061", "00201208", "00081030")


def value_of(item: Mapping[str, Any], tag: str) -> str:
    """A DICOM JSON attribute as text (names by their alphabetic form, several values joined by `\\`)."""
    values = (item.get(tag) or {}).get("Value") or []
    shown = []
    for value in values:
        if isinstance(value, dict):  # PN: {"Alphabetic": "Doe^Jane"}
            value = value.get("Alphabetic", "")
        shown.append(str(value))
    return "\\".join(shown)


@dataclass
class StudyList:
    """The studies a search found: a table for people, a document for machines."""

    source: str
    filters: dict[str, str]
    studies: list[dict[str, str]] = field(default_factory=list)
    limit: int = 0

    @property
    def ok(self) -> bool:
        return True

    def lines(self) -> list[str]:
        where = ", ".join(f"{k}={v}" for k, v in self.filters.items()) or "no filter"
        if not self.studies:
            return [f"No studies in {self.source} match ({where})."]
        headings = [column for column, _tag, _kw in COLUMNS]
        rows = [[study.get(keyword, "") for _c, _t, keyword in COLUMNS] for study in self.studies]
        widths = [max(len(headings[i]), *(len(row[i]) for row in rows)) for i in range(len(headings))]
        lines = ["  ".join(h.ljust(w) for h, w in zip(headings, widths, strict=True)).rstrip()]
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
        more = f" (the first {self.limit}; --limit shows more)" if len(self.studies) >= self.limit else ""
        lines.append(f"{len(self.studies)} studies in {self.source} ({where}){more}.")
        return lines

    def document(self) -> dict[str, Any]:
        return {"source": self.source, "filters": self.filters, "count": len(self.studies), "studies": self.studies}


def search_studies(endpoint: Endpoint, *, patient_id: str | None = None, study_uid: str | None = None,
                   modality: str | None = None, limit: int = 100) -> StudyList:
    """QIDO `studies?...` with the given filters, up to `limit` studies (blocking: run it in a thread)."""
    filters = {key: value for key, value in (("PatientID", patient_id), ("StudyInstanceUID", study_uid),
                                             ("ModalitiesInStudy", modality)) if value}
    client = Client(endpoint, pool_size=2)
    found: list[dict[str, str]] = []
    seen: set[str] = set()
    try:
        offset = 0
        while len(found) < limit:
            page = min(endpoint.qido_page_size, limit - len(found))
            items: Sequence[Mapping[str, Any]] = client.call(functools.partial(
                client.dicomweb.search_for_studies, search_filters=dict(filters), fields=list(INCLUDE_FIELDS),
                limit=page, offset=offset or None))
            for item in items:
                uid = value_of(item, "0020000D")
                if uid in seen:  # pages are newest first on Azure: a study stored meanwhile shifts them
                    continue
                seen.add(uid)
                found.append({keyword: value_of(item, tag) for _column, tag, keyword in COLUMNS})
            if len(items) < page:
                break
            offset += len(items)
    finally:
        client.close()
    return StudyList(endpoint.name, filters, found[:limit], limit)


__all__ = ["StudyList", "search_studies", "value_of"]
