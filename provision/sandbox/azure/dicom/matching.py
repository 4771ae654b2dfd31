"""QIDO-RS matching as Azure's DICOM service does it, on top of an Orthanc that matches otherwise.

Orthanc's DICOMweb plugin 1.7 compares query values without percent-decoding them (`PatientName=Doe%5EJane`
never matches), treats `*` and `?` as wildcards, and ignores `fuzzymatching`. Azure (conformance statement v2,
"Search Matching", "Supported Search Parameters" and "Additional Notes"):

- **exact match** on every attribute; **no wildcards**: `*` and `?` are ordinary characters;
- PN attributes (PatientName, ReferringPhysicianName) match **case- and accent-insensitively**, other strings
  case-insensitively but accent-sensitively; a value with spaces (`StudyDescription=CT chest with contrast`)
  matches the whole value;
- **fuzzymatching=true**: a PN matches when the query's words are prefixes of consecutive words of the name
  ("John^Doe" is found by `joh`, `do`, `jo do`, `Doe`, `John Doe`; not by `ohn`);
- date ranges (`20240101-20240131`, `-20240131`, `20240101-`) on StudyDate and PatientBirthDate;
- an empty value is refused (400), `limit` is 1-200 and 100 when not given, an offset past the end is 204.

So a search is split (`plan_search`): what Orthanc compares correctly (UIDs, dates and numbers written with
digits, `.` and `-` only) goes to Orthanc as it is; every other filter is applied here (`matches`) to what
Orthanc returns for the rest, with the filtered attributes added to `includefield`, and `limit`/`offset` are
applied after filtering.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import DicomError

QIDO_LIMIT_DEFAULT = 100
FUZZY_ATTRIBUTES = frozenset({"00100010", "00080090"})  # PatientName, ReferringPhysicianName
_NUMERIC_VRS = frozenset({"UI", "DA", "TM", "DT", "IS", "DS", "US", "UL", "SS", "SL", "FL", "FD"})
_ORTHANC_SAFE = re.compile(r"^[0-9.\-]+$")
_DATE = re.compile(r"^(\d{8})?(-(\d{8})?)?$")
_NAME_WORDS = re.compile(r"[\s^=]+")


@dataclass(frozen=True)
class Filter:
    tag: str
    value: str
    vr: str


@dataclass
class Search:
    """One QIDO request, split between Orthanc and the sandbox."""

    #: query parameters for Orthanc, each value only of characters Orthanc reads as they are
    orthanc: list[tuple[str, str]] = field(default_factory=list)
    #: filters applied here, to what Orthanc returns
    local: list[Filter] = field(default_factory=list)
    fuzzy: bool = False
    offset: int = 0
    limit: int = QIDO_LIMIT_DEFAULT

    @property
    def filtered_here(self) -> bool:
        return bool(self.local)

    def orthanc_query(self) -> str:
        """The query string for Orthanc (values are never percent-encoded: Orthanc would not decode them)."""
        items = list(self.orthanc)
        if not self.local:
            items += [("limit", str(self.limit))] + ([("offset", str(self.offset))] if self.offset else [])
        return "&".join(f"{k}={v}" for k, v in items)


def plan_search(params: Iterable[tuple[str, str]], tag_of: Any, vr_of: Mapping[str, str]) -> Search:
    """Split validated QIDO parameters (`tag_of(name)` -> 8-hex tag; `vr_of[tag]` -> its VR)."""
    search = Search()
    include: list[str] = []
    for key, value in params:
        lowered = key.lower()
        if lowered == "includefield":
            include += [v.strip() for v in value.split(",") if v.strip()]
        elif lowered == "limit":
            search.limit = int(value)
        elif lowered == "offset":
            search.offset = int(value)
        elif lowered == "fuzzymatching":
            if value.lower() not in ("true", "false"):
                raise DicomError(400, f"The fuzzymatching value '{value}' is invalid.")  # wording unverified
            search.fuzzy = value.lower() == "true"
        else:
            tag = tag_of(key)
            vr = vr_of.get(tag, "LO")
            if not value:
                raise DicomError(400, f"The query parameter '{key}' has no value; empty values are not supported.")
            if vr == "DA" and (not _DATE.match(value) or value == "-"):
                raise DicomError(400, f"The value '{value}' of '{key}' is not a date or date range.")
            if vr in _NUMERIC_VRS and _ORTHANC_SAFE.match(value):
                search.orthanc.append((tag, value))
            else:
                search.local.append(Filter(tag, value, vr))
    if search.fuzzy and any('"' in f.value for f in search.local if f.tag in FUZZY_ATTRIBUTES):
        raise DicomError(400, "A fuzzy matching value must not contain '\"'.")  # wording unverified
    for name in include:
        search.orthanc.append(("includefield", name))
    for item in search.local:
        search.orthanc.append(("includefield", item.tag))
    return search


def _fold(text: str, *, accents: bool) -> str:
    text = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in text if not unicodedata.combining(c)) if accents else unicodedata.normalize("NFC", text)


def _values(item: Mapping[str, Any], tag: str) -> list[str]:
    values = []
    for value in (item.get(tag) or {}).get("Value") or []:
        if isinstance(value, Mapping):  # PN: {"Alphabetic": "Doe^Jane"}
            value = value.get("Alphabetic", "")
        values.append(str(value))
    return values


def _name(text: str) -> str:
    return _fold(text, accents=True).rstrip("^ ")


def _words(text: str) -> list[str]:
    return [w for w in _NAME_WORDS.split(_fold(text, accents=True)) if w]


def fuzzy_match(name: str, query: str) -> bool:
    """Azure's word-prefix match: the query's words start consecutive words of the name, in order."""
    words, wanted = _words(name), _words(query)
    if not wanted:
        return False
    return any(all(words[i + j].startswith(w) for j, w in enumerate(wanted))
               for i in range(len(words) - len(wanted) + 1))


def matches(item: Mapping[str, Any], wanted: Filter, fuzzy: bool) -> bool:
    """Whether one QIDO result (DICOM JSON) matches one filter the Azure way."""
    values = _values(item, wanted.tag)
    if wanted.vr == "PN":
        if fuzzy and wanted.tag in FUZZY_ATTRIBUTES:
            return any(fuzzy_match(value, wanted.value) for value in values)
        return any(_name(value) == _name(wanted.value) for value in values)
    folded = _fold(wanted.value, accents=False)
    return any(_fold(value, accents=False) == folded for value in values)


def finish(search: Search, items: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Orthanc's results filtered here, then paged (only when some filter was applied here)."""
    if not search.local:
        return list(items)
    kept = [item for item in items if all(matches(item, f, search.fuzzy) for f in search.local)]
    return kept[search.offset:search.offset + search.limit]


__all__ = ["Filter", "Search", "finish", "fuzzy_match", "matches", "plan_search"]
