"""Share links: `share` signs one (after checking that its studies exist), `shares list` shows what was issued,
`shares revoke` ends some before they expire.

What is kept, in the target directory's `shares/` (next to the deployment, not in any cloud, and never
deleted by `destroy`, since a revocation must outlive a re-apply with the same signing key):
- `issued.jsonl`: one line per share: id, studies, issue and expiry times, note; never the token itself;
- `revoked.txt`: the revoked ids, which the share filter inside Orthanc re-reads when the file changes, so a
  revocation holds from the next request on, across restarts. Written atomically under a lock.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import secrets
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from provision.core.files import write_atomically
from provision.errors import ConfigurationError
from provision.orthanc import sharetoken
from provision.orthanc.site import Layout, Site

REVOCATIONS_HEADER = "# share ids revoked by `provision orthanc shares revoke` (read by the share filter)\n"


@dataclass(frozen=True)
class ShareRecord:
    id: str
    studies: tuple[str, ...]
    issued_at: int
    expires_at: int
    note: str = ""
    upload: bool = False

    def status(self, revoked: frozenset[str], now: float) -> str:
        if self.id in revoked:
            return "revoked"
        return "expired" if self.expires_at <= now else "active"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "studies": list(self.studies)}


def iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@contextlib.contextmanager
def _locked(layout: Layout) -> Iterator[None]:
    """One writer at a time (two `revoke`s at once must not lose one of them)."""
    layout.shares_dir.mkdir(parents=True, exist_ok=True)
    with open(layout.shares_dir / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def records(layout: Layout) -> list[ShareRecord]:
    try:
        lines = layout.ledger.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    found = []
    for line in lines:
        with contextlib.suppress(ValueError, TypeError, KeyError):
            data = json.loads(line)
            found.append(ShareRecord(str(data["id"]), tuple(data["studies"]), int(data["issued_at"]),
                                     int(data["expires_at"]), str(data.get("note", "")), bool(data.get("upload"))))
    return found


def revoked_ids(layout: Layout) -> frozenset[str]:
    return sharetoken.RevocationList(str(layout.revocations)).ids()


def ensure_revocation_list(layout: Layout) -> None:
    """An empty revocation list, so that the filter reads a file (readable by Orthanc's user: no secret in it)."""
    if not layout.revocations.exists():
        with _locked(layout):
            if not layout.revocations.exists():
                write_atomically(layout.revocations, REVOCATIONS_HEADER, mode=0o644)


def record(layout: Layout, share: ShareRecord) -> None:
    """Append `share` to the ledger (mode 0600: it says which studies were shared, and for how long)."""
    with _locked(layout):
        fd = os.open(layout.ledger, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(share.as_dict()) + "\n")


def revoke(layout: Layout, ids: Sequence[str]) -> list[str]:
    """Add `ids` to the revocation list; returns those that were not revoked before."""
    with _locked(layout):
        before = revoked_ids(layout)
        new = [share_id for share_id in dict.fromkeys(ids) if share_id not in before]
        if new:
            lines = sorted(before | set(new))
            write_atomically(layout.revocations, REVOCATIONS_HEADER + "".join(f"{i}\n" for i in lines), mode=0o644)
    return new


def mint(key: bytes, studies: Sequence[str], lifetime: float, *, note: str = "",
         upload: bool = False, now: float | None = None) -> tuple[ShareRecord, str]:
    """A new share and its signed token (the token is returned, never stored)."""
    issued = int(time.time() if now is None else now)
    share = ShareRecord(secrets.token_urlsafe(12), tuple(sorted(set(studies))), issued, issued + int(lifetime), note,
                        upload)
    token = sharetoken.mint(key, share.studies, share_id=share.id, issued_at=share.issued_at,
                            expires_at=share.expires_at, upload=upload)
    return share, token


def viewer_link(site: Site, share: ShareRecord, token: str) -> str:
    """What OHIF opens: it moves `token` from the address bar into `Authorization: Bearer` headers."""
    return f"{site.public_url}/viewer?StudyInstanceUIDs={','.join(share.studies)}&token={token}"


def check_uids(values: Sequence[str], flag: str = "--study") -> list[str]:
    if not values:
        raise ConfigurationError(f"{flag} is required: the StudyInstanceUID of each study to share")
    for value in values:
        if not sharetoken.is_uid(value):
            raise ConfigurationError(f"{flag} {value!r} is not a DICOM UID (digits and dots, at most "
                                     f"{sharetoken.MAX_UID_LENGTH} characters, no leading zeros)")
    if len(set(values)) > sharetoken.MAX_STUDIES:
        raise ConfigurationError(f"{flag}: a share grants at most {sharetoken.MAX_STUDIES} studies")
    return list(dict.fromkeys(values))


@dataclass
class SharedLink:
    """`provision orthanc share`: the link, for people and for machines."""

    share: ShareRecord
    url: str

    @property
    def ok(self) -> bool:
        return True

    def lines(self) -> list[str]:
        studies = ", ".join(self.share.studies)
        return [self.url, "",
                f"Share {self.share.id}: {studies}; expires {iso(self.share.expires_at)}"
                + ("; may upload into these studies" if self.share.upload else ""),
                f"Revoke it with `provision orthanc shares revoke PLAN --id {self.share.id}`. The link is the "
                "only copy of its token: send it privately."]

    def document(self) -> dict[str, Any]:
        return {"url": self.url, **self.share.as_dict(), "issued": iso(self.share.issued_at),
                "expires": iso(self.share.expires_at)}


@dataclass
class ShareList:
    shares: list[ShareRecord]
    revoked: frozenset[str]
    now: float = field(default_factory=time.time)

    @property
    def ok(self) -> bool:
        return True

    def lines(self) -> list[str]:
        if not self.shares:
            return ["No shares issued."]
        rows = [("id", "status", "expires", "studies", "note")]
        rows += [(s.id, s.status(self.revoked, self.now), iso(s.expires_at), ",".join(s.studies), s.note)
                 for s in self.shares]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        return ["  ".join([*(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)), row[4]]).rstrip()
                for row in rows]

    def document(self) -> dict[str, Any]:
        return {"shares": [{**s.as_dict(), "status": s.status(self.revoked, self.now), "issued": iso(s.issued_at),
                            "expires": iso(s.expires_at)} for s in self.shares]}


@dataclass
class Revoked:
    new: list[str]
    already: list[str]

    @property
    def ok(self) -> bool:
        return True

    def lines(self) -> list[str]:
        lines = [f"Revoked {share_id}: refused from the next request on." for share_id in self.new]
        lines += [f"{share_id} was already revoked." for share_id in self.already]
        return lines

    def document(self) -> dict[str, Any]:
        return {"revoked": self.new, "already_revoked": self.already}


def select(layout: Layout, ids: Sequence[str], studies: Sequence[str]) -> list[str]:
    """The share ids that `--id` and `--study` name; an unknown id is an error (a typo must not look done)."""
    issued = records(layout)
    known = {share.id for share in issued}
    unknown = [share_id for share_id in ids if share_id not in known]
    if unknown:
        raise ConfigurationError(f"--id {unknown[0]}: no such share in {layout.ledger}",
                                 hint="`provision orthanc shares list PLAN` shows the ids")
    chosen = list(ids)
    for uid in studies:
        matching = [share.id for share in issued if uid in share.studies]
        if not matching:
            raise ConfigurationError(f"--study {uid}: no share grants this study")
        chosen += matching
    if not chosen:
        raise ConfigurationError("name the shares to revoke with --id (or every share of a study with --study)")
    return list(dict.fromkeys(chosen))


def revoke_selected(layout: Layout, chosen: Sequence[str]) -> Revoked:
    new = revoke(layout, chosen)
    return Revoked(new, [share_id for share_id in chosen if share_id not in new])
