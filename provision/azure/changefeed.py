"""`provision azure changefeed PLAN [--since T] [--follow]`: the DICOM service's change feed (API v2).

`GET {serviceUrl}/v2/changefeed?startTime=&offset=&limit=&includemetadata=false` pages through the entries in
time order (limit 1-200, startTime inclusive), `GET .../changefeed/latest` gives the newest one (204 while the
feed is empty). An entry: `Sequence`, `StudyInstanceUid`, `SeriesInstanceUid`, `SopInstanceUid`, `Action`
(create, delete, update), `Timestamp` (UTC), `State` (current, replaced, deleted: computed when it is read, so
an old entry of an instance stored again reads `replaced`). Keys and values are read case-insensitively (the
published documents write `Sequence` and `create`; JSON serialisers may write `sequence` and `Create`).

Reading moves the window instead of the offset: each page starts at the last timestamp seen and drops the
sequences seen already, so following for a day costs what following for a minute does (the service reads
every skipped row of an offset, its own controller says). `--follow` polls every `--interval` seconds after the
newest entry (the latest one is shown first, as `tail -f` does) until Ctrl+C, which ends it cleanly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from provision.core.events import Record
from provision.dicom.dicomweb import Client, Endpoint
from provision.errors import ConfigurationError

PAGE = 200


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`2024-05-01T10:00:00Z` (any ISO 8601 date or time; without a zone: UTC) or a duration ago (`90m`, `2d`)."""
    from provision.core.durations import parse_duration

    value = text.strip()
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        try:
            return (now or datetime.now(UTC)) - timedelta(seconds=parse_duration(value))
        except ValueError:
            raise ConfigurationError(
                f"--since {text!r}: not a time or a duration",
                hint="use an ISO 8601 time such as 2024-05-01T10:00:00Z, or how long ago, such as 90m or 2d",
            ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Entry:
    """One change feed entry."""

    sequence: int
    timestamp: str
    action: str
    state: str
    study_uid: str
    series_uid: str
    sop_instance_uid: str

    @classmethod
    def of(cls, item: Mapping[str, Any]) -> Entry:
        keys = {str(k).lower(): v for k, v in item.items()}
        return cls(int(keys.get("sequence") or 0), str(keys.get("timestamp") or ""),
                   str(keys.get("action") or "").lower(), str(keys.get("state") or "").lower(),
                   str(keys.get("studyinstanceuid") or ""), str(keys.get("seriesinstanceuid") or ""),
                   str(keys.get("sopinstanceuid") or ""))

    def when(self) -> datetime:
        text = self.timestamp.replace("Z", "+00:00")
        if "." in text:  # .NET writes up to 7 fractional digits; Python reads 6
            head, _, rest = text.partition(".")
            digits = "".join(c for c in rest if c.isdigit())
            zone = rest[len(digits):]
            text = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
        when = datetime.fromisoformat(text)
        return when if when.tzinfo else when.replace(tzinfo=UTC)

    def as_dict(self) -> dict[str, Any]:
        return {"sequence": self.sequence, "timestamp": self.timestamp, "action": self.action, "state": self.state,
                "study_instance_uid": self.study_uid, "series_instance_uid": self.series_uid,
                "sop_instance_uid": self.sop_instance_uid}

    def line(self) -> str:
        return (f"{self.sequence:>8}  {self.timestamp:<28}  {self.action:<6}  {self.state:<8}  "
                f"{self.study_uid} / {self.series_uid} / {self.sop_instance_uid}")


HEADING = f"{'sequence':>8}  {'timestamp':<28}  {'action':<6}  {'state':<8}  study / series / SOP instance"


@dataclass
class ChangeFeed:
    """What was read (or, with --follow, how many entries were shown as they came)."""

    source: str
    since: str | None
    entries: list[Entry] = field(default_factory=list)
    latest: Entry | None = None
    followed: int | None = None

    @property
    def ok(self) -> bool:
        return True

    def lines(self) -> list[str]:
        if self.followed is not None:
            return [f"Stopped following the change feed of {self.source}: {self.followed} entries shown."]
        window = f" since {self.since}" if self.since else ""
        if not self.entries:
            return [f"No changes in the feed of {self.source}{window}."]
        latest = f"; the latest is sequence {self.latest.sequence}" if self.latest is not None else ""
        return [HEADING, *(entry.line() for entry in self.entries),
                f"{len(self.entries)} changes in the feed of {self.source}{window}{latest}."]

    def document(self) -> dict[str, Any]:
        if self.followed is not None:
            return {"source": self.source, "followed": True, "entries": self.followed}
        return {"source": self.source, "since": self.since, "count": len(self.entries),
                "latest": self.latest.as_dict() if self.latest else None,
                "entries": [entry.as_dict() for entry in self.entries]}


class FeedReader:
    """Pages of the feed after what was seen already (blocking calls: run them in a thread)."""

    def __init__(self, endpoint: Endpoint, since: datetime | None) -> None:
        self.client = Client(endpoint, pool_size=2)
        self.root = endpoint.base_url.rstrip("/")
        self.start = since
        self.seen: set[int] = set()
        self.last_sequence = 0
        #: entries up to this sequence are not new (following from the latest entry on)
        self.after_sequence = 0

    def _get(self, path: str, params: dict[str, str]) -> Any:
        def request() -> Any:
            response = self.client.session.get(f"{self.root}/{path}", params=params, timeout=self.client.timeout,
                                               headers={"Accept": "application/json"})
            response.raise_for_status()
            return response.json() if response.status_code != 204 and response.content else None

        return self.client.call(request, "changefeed")

    def latest(self) -> Entry | None:
        found = self._get("changefeed/latest", {"includemetadata": "false"})
        return Entry.of(found) if isinstance(found, dict) and found else None

    def new_entries(self) -> list[Entry]:
        """Every entry not seen yet, oldest first."""
        new: list[Entry] = []
        offset = 0
        while True:
            params = {"limit": str(PAGE), "includemetadata": "false"}
            if self.start is not None:
                params["startTime"] = _iso(self.start)
            if offset:
                params["offset"] = str(offset)
            page = [Entry.of(item) for item in self._get("changefeed", params) or []]
            fresh = [e for e in page if e.sequence not in self.seen and e.sequence > self.after_sequence]
            for entry in fresh:
                self.seen.add(entry.sequence)
                self.last_sequence = max(self.last_sequence, entry.sequence)
            new += fresh
            if fresh:  # move the window to the newest timestamp seen (see the module docstring)
                self.start, offset = max(e.when() for e in fresh), 0
            elif len(page) == PAGE:  # a full page of one instant, nothing new in it: step over it
                offset += len(page)
            if len(page) < PAGE:
                return new

    def skip_to(self, entry: Entry) -> None:
        """Start after `entry` (the newest when following from now)."""
        self.start = entry.when()
        self.after_sequence = self.last_sequence = entry.sequence

    def close(self) -> None:
        self.client.close()


async def changefeed(endpoint: Endpoint, *, since: str | None, follow: bool, interval: float,
                     on_record: Callable[[Record], None]) -> ChangeFeed:
    """Read the feed (or follow it until cancelled: Ctrl+C returns the summary instead of raising)."""
    start = parse_since(since) if since else None
    reader = FeedReader(endpoint, start)
    report = ChangeFeed(endpoint.name, _iso(start) if start else None)
    try:
        if not follow:
            report.entries = await asyncio.to_thread(reader.new_entries)
            report.latest = await asyncio.to_thread(reader.latest)
            return report
        report.followed = 0

        def show(entries: list[Entry]) -> None:
            for entry in entries:
                on_record(Record("changefeed", entry.line(), entry.as_dict()))
            assert report.followed is not None
            report.followed += len(entries)

        try:
            if start is None:
                latest = await asyncio.to_thread(reader.latest)
                if latest is not None:
                    reader.skip_to(latest)
                    show([latest])
            while True:
                show(await asyncio.to_thread(reader.new_entries))
                await asyncio.sleep(interval)
        except asyncio.CancelledError:  # Ctrl+C: the summary, not a traceback
            return report
    finally:
        reader.close()


__all__ = ["ChangeFeed", "Entry", "FeedReader", "changefeed", "parse_since"]
