"""The change feed of a DICOM service (change-feed-overview.md and the v2 conformance statement's "Change Feed").

Every instance the sandbox stores or deletes appends an entry: sequence, time, action (`create`, `delete`), the
instance's Study/Series/SOP Instance UID and the instance's version (a counter of creates). Entries are a
journal in the service's storage directory (`STATE/dicom/<service>/changefeed.jsonl`, one JSON line each,
written before the answer that caused them is sent), so the feed survives restarts and goes when the service
does; appending costs the same however long the feed is (world.json is rewritten whole on every change). Which
version of each instance is current is replayed from the journal when it is first read; it is also how STOW
knows an instance is stored already (45070).

The state of an entry is computed when it is read, as the service does: `current` when its instance exists in
that version, `deleted` when the instance does not exist now, `replaced` when another version is current. So
create, delete, create of one instance reads back `replaced`, `replaced`, `current`.

- `GET {v2}/changefeed?startTime=&endTime=&offset=&limit=&includemetadata=`: entries in time order, startTime
  inclusive, endTime exclusive, `offset` skips entries of the window, `limit` 1-200 (default 100),
  `includemetadata` default true (the instance's current DICOM JSON; `null` when it was deleted);
- `GET {v1}/changefeed?offset=&limit=`: by sequence, `offset` the last sequence already read, limit 1-100
  (default 10);
- `GET .../changefeed/latest`: the newest entry, 204 while the feed is empty (ASP.NET's answer for a null
  result; unverified against the service).

Entries are written as the published documents show them (`"Sequence"`, `"Action": "create"`, `"State":
"current"`); the live service's exact casing is unverified, which is why the tool reads them case-insensitively.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ...clock import iso
from .errors import DicomError

JOURNAL = "changefeed.jsonl"
V2_LIMIT = (1, 200, 100)
V1_LIMIT = (1, 100, 10)
#: an entry as stored: [sequence, time, action, study, series, sop, version]
Entry = list[Any]


def empty_feed() -> dict[str, Any]:
    """A feed: `entries`, `current` (instance key -> version), `versions` (the last version given)."""
    return {"entries": [], "current": {}, "versions": 0}


def replay(feed: dict[str, Any], entry: Entry) -> None:
    """Apply one entry to the feed's state (what `record_created` / `record_deleted` do, from the journal)."""
    key = instance_key(entry[3], entry[4], entry[5])
    feed["entries"].append(entry)
    feed["versions"] = max(feed["versions"], entry[6])
    if entry[2] == "create":
        feed["current"][key] = entry[6]
    else:
        feed["current"].pop(key, None)


class Journals:
    """Each service's feed, read from its journal on first use and appended to as entries come."""

    def __init__(self) -> None:
        self._feeds: dict[Path, dict[str, Any]] = {}

    def feed(self, storage: Path) -> dict[str, Any]:
        path = storage / JOURNAL
        feed = self._feeds.get(path)
        if feed is None:
            feed = self._feeds[path] = empty_feed()
            if path.is_file():
                for line in path.read_text(encoding="utf-8").splitlines():
                    if line.strip():
                        replay(feed, json.loads(line))
        return feed

    def append(self, storage: Path, entries: Iterable[Entry]) -> None:
        lines = "".join(json.dumps(entry, separators=(",", ":")) + "\n" for entry in entries)
        if lines:
            storage.mkdir(parents=True, exist_ok=True)
            with open(storage / JOURNAL, "a", encoding="utf-8") as journal:
                journal.write(lines)


def instance_key(study: str, series: str, sop: str) -> str:
    return f"{study}/{series}/{sop}"


def _micros(ts: float) -> int:
    """Times compare in whole microseconds, the precision they are shown with (7 digits, the last one 0)."""
    return round(ts * 1_000_000)


def record_created(feed: dict[str, Any], instances: Iterable[tuple[str, str, str]], now: float) -> list[Entry]:
    """Record instances stored now; the new entries (for the journal)."""
    now = _micros(now) / 1_000_000
    added = []
    for study, series, sop in instances:
        entry = [len(feed["entries"]) + 1, now, "create", study, series, sop, feed["versions"] + 1]
        replay(feed, entry)
        added.append(entry)
    return added


def record_deleted(feed: dict[str, Any], prefix: str, now: float) -> list[Entry]:
    """Record the deletion of the instances whose key is `prefix` or starts with `prefix/` (a study, a series or
    one instance); the new entries (for the journal)."""
    now = _micros(now) / 1_000_000
    gone = [key for key in feed["current"] if key == prefix or key.startswith(prefix + "/")]
    added = []
    for key in gone:
        study, series, sop = key.split("/")
        entry = [len(feed["entries"]) + 1, now, "delete", study, series, sop, feed["current"][key]]
        replay(feed, entry)
        added.append(entry)
    return added


def state_of(feed: Mapping[str, Any], entry: Entry) -> str:
    current = feed["current"].get(instance_key(entry[3], entry[4], entry[5]))
    if current is None:
        return "deleted"
    return "current" if current == entry[6] else "replaced"


def rendered(feed: Mapping[str, Any], entry: Entry, metadata: Mapping[str, Any] | None,
             with_metadata: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "Sequence": entry[0], "StudyInstanceUid": entry[3], "SeriesInstanceUid": entry[4],
        "SopInstanceUid": entry[5], "Action": entry[2], "Timestamp": iso(entry[1]), "State": state_of(feed, entry),
    }
    if with_metadata:
        body["Metadata"] = metadata
    return body


def _number(params: Mapping[str, str], name: str, low: int, high: int | None, default: int) -> int:
    raw = params.get(name.lower())
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < low or (high is not None and int(raw) > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise DicomError(400, f"The {name} value '{raw}' is invalid; it must be {bound}.")  # wording unverified
    return int(raw)


def _time(params: Mapping[str, str], name: str) -> int | None:
    """A time parameter in microseconds since the epoch (.NET writes 7 fractional digits; Python reads 6)."""
    raw = params.get(name.lower())
    if raw is None:
        return None
    text = raw.replace("Z", "+00:00").replace(" ", "+")
    head, dot, rest = text.partition(".")
    if dot:
        digits = "".join(c for c in rest if c.isdigit())
        text = f"{head}.{digits[:6].ljust(6, '0')}{rest[len(digits):]}"
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise DicomError(400, f"The {name} value '{raw}' is not a valid date and time.") from None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return (when - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def _flag(params: Mapping[str, str], name: str) -> bool:
    raw = params.get(name.lower(), "true").lower()
    if raw not in ("true", "false"):
        raise DicomError(400, f"The {name} value '{raw}' is not a boolean.")
    return raw == "true"


def select(feed: Mapping[str, Any], version: str, params: Mapping[str, str]) -> tuple[list[Entry], bool]:
    """The entries a `GET changefeed` asks for (`params` with lower-cased names), and whether to add metadata."""
    entries: list[Entry] = feed["entries"]
    with_metadata = _flag(params, "includeMetadata")
    if version == "v1":
        offset = _number(params, "offset", 0, None, 0)
        low, high, default = V1_LIMIT
        limit = _number(params, "limit", low, high, default)
        return [e for e in entries if e[0] > offset][:limit], with_metadata
    offset = _number(params, "offset", 0, None, 0)
    low, high, default = V2_LIMIT
    limit = _number(params, "limit", low, high, default)
    start, end = _time(params, "startTime"), _time(params, "endTime")
    window = [e for e in entries
              if (start is None or _micros(e[1]) >= start) and (end is None or _micros(e[1]) < end)]
    window.sort(key=lambda e: (e[1], e[0]))
    return window[offset:offset + limit], with_metadata


def latest(feed: Mapping[str, Any]) -> Entry | None:
    entries: list[Entry] = feed["entries"]
    return max(entries, key=lambda e: (e[1], e[0])) if entries else None


__all__ = ["Journals", "empty_feed", "latest", "record_created", "record_deleted", "rendered", "replay", "select",
           "state_of"]
