"""Upload DICOM files to a DICOMweb service: only what is missing, several requests at once, in bounded memory.

1. **Scan and index.** Files, folders and `.zip` archives are walked lazily (`files.scan`); each file's header is
   read up to the pixel data for its four UIDs (`files.read_header`). The index keeps those and where the
   bytes are (about 200 bytes a file), grouped by study. Files that are not uploadable DICOM are reported with
   the reason and skipped; a second file with the same SOP Instance UID is skipped as a duplicate.
2. **Check.** Per study, the service is asked which of its instances it holds already (`Endpoint.present`,
   a paged QIDO by default). Those are counted as already present and never sent.
3. **Send.** The missing instances of a study go in STOW-RS batches of at most `batch_instances` instances and
   `batch_bytes` bytes; a batch's files are read just before it is sent and sent as they are. At most
   `concurrency` requests are in flight, and at most `in_flight_bytes` of file data is read or being sent.
4. **Classify.** Each answer is read the target's way (`Endpoint.classify`): stored, already present (a
   duplicate the service recognised), or failed with the reason.

Resuming is stateless: a run after Ctrl+C, a crash or `kill -9` checks again and sends only what is missing.
A batch that the service stored but whose answer was lost (a dropped connection, a 503 after the write) is
sent again by the retry, which stores nothing twice: Azure answers the duplicate with 45070, Google with 200
for identical bytes, Orthanc keeps the copy it has.

`run_upload` runs the pipeline from async code (its worker threads call the blocking dicomweb-client); Ctrl+C
stops sending new batches, lets the ones in flight finish, and returns what was done.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar, cast

from provision.core.events import BulkProgress
from provision.errors import ConfigurationError, ProvisionError

from .defaults import BATCH_BYTES, BATCH_INSTANCES, DEFAULT_CONCURRENCY, IN_FLIGHT_BYTES
from .dicomweb import Client, DicomwebError, Endpoint, StowOutcome
from .files import DicomFile, Source, Unreadable, read_header, scan

#: headers read ahead of the indexing loop
_READ_AHEAD = 64
#: give up after this many STOW requests in a row failed without an answer about any instance
FAILED_IN_A_ROW = 5
_PROGRESS_EVERY = 0.25
OPERATION = "upload"

T = TypeVar("T")
R = TypeVar("R")


class Outcome(StrEnum):
    STORED = "stored"
    PRESENT = "already present"
    FAILED = "failed"
    SKIPPED = "skipped"
    NOT_SENT = "not sent"


@dataclass
class FileResult:
    """What became of one input file."""

    file: str
    outcome: Outcome
    reason: str = ""
    study_uid: str = ""
    sop_instance_uid: str = ""

    def as_dict(self) -> dict[str, str]:
        data = {"file": self.file, "outcome": self.outcome.value}
        for key in ("reason", "study_uid", "sop_instance_uid"):
            if getattr(self, key):
                data[key] = getattr(self, key)
        return data


@dataclass
class UploadReport:
    """Every file's outcome and what it took; `ok` when nothing failed and everything was sent."""

    destination: str
    results: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0
    studies: int = 0
    bytes_sent: int = 0
    requests: dict[str, int] = field(default_factory=dict)
    throttled_retries: int = 0
    other_retries: int = 0
    #: why the upload stopped before the end (Ctrl+C, an error every request would meet), and what to do
    stopped: str = ""
    hint: str = ""

    def counts(self) -> dict[str, int]:
        counts = {outcome.value: 0 for outcome in Outcome}
        for result in self.results:
            counts[result.outcome.value] += 1
        return counts

    @property
    def ok(self) -> bool:
        counts = self.counts()
        return not self.stopped and not counts[Outcome.FAILED] and not counts[Outcome.NOT_SENT]

    def summary(self) -> str:
        counts = self.counts()
        stored = counts[Outcome.STORED]
        rate = f", {stored / self.seconds:.0f} instances/s" if stored and self.seconds > 0 else ""
        parts = [f"{stored} stored", f"{counts[Outcome.PRESENT]} already present", f"{counts[Outcome.FAILED]} failed"]
        if counts[Outcome.SKIPPED]:
            parts.append(f"{counts[Outcome.SKIPPED]} skipped (not DICOM or duplicates)")
        if counts[Outcome.NOT_SENT]:
            parts.append(f"{counts[Outcome.NOT_SENT]} not sent")
        return (f"{', '.join(parts)} of {len(self.results)} files in {self.studies} studies, "
                f"{self.bytes_sent / 1e6:.1f} MB sent in {self.seconds:.1f} s{rate}")

    def lines(self) -> list[str]:
        lines = [f"Upload to {self.destination}:"]
        problems = [r for r in self.results if r.outcome in (Outcome.FAILED, Outcome.NOT_SENT, Outcome.SKIPPED)]
        problems.sort(key=lambda r: r.outcome != Outcome.FAILED)
        shown = problems[:50]
        lines += [f"  {r.outcome.value}: {r.file}: {r.reason}" for r in shown]
        if len(problems) > len(shown):
            lines.append(f"  ... and {len(problems) - len(shown)} more (--output json lists every file)")
        requests = ", ".join(f"{n} {kind}" for kind, n in sorted(self.requests.items())) or "none"
        retries = f"; retried {self.throttled_retries} throttled and {self.other_retries} failed requests" \
            if self.throttled_retries or self.other_retries else ""
        lines.append(f"Requests: {requests}{retries}.")
        if self.stopped:
            lines.append(f"Stopped: {self.stopped}" + (f" (hint: {self.hint})" if self.hint else ""))
        lines.append(("Upload complete: " if self.ok else "Upload incomplete: ") + self.summary() + ".")
        if not self.ok and not self.hint:
            lines.append("Running the same command again sends only what is missing.")
        return lines

    def document(self) -> dict[str, Any]:
        return {
            "destination": self.destination,
            "ok": self.ok,
            "summary": self.counts(),
            "studies": self.studies,
            "seconds": round(self.seconds, 3),
            "bytes_sent": self.bytes_sent,
            "requests": dict(self.requests),
            "throttled_retries": self.throttled_retries,
            "other_retries": self.other_retries,
            "stopped": self.stopped or None,
            "files": [result.as_dict() for result in self.results],
        }


def _read_ahead(pool: ThreadPoolExecutor, function: Callable[[T], R], items: Iterable[T],
                window: int) -> Iterator[tuple[T, R]]:
    """`(item, function(item))` in order, at most `window` computed ahead (Executor.map would take all at once)."""
    pending: deque[tuple[T, Future[R]]] = deque()
    for item in items:
        pending.append((item, pool.submit(function, item)))
        if len(pending) >= window:
            first, future = pending.popleft()
            yield first, future.result()
    while pending:
        first, future = pending.popleft()
        yield first, future.result()


@dataclass
class Index:
    """What the inputs hold: uploadable files by study (in the order first seen), and a result for every file
    (skipped ones final, the others `not sent` until the upload settles them)."""

    studies: dict[str, list[DicomFile]] = field(default_factory=dict)
    results: list[FileResult] = field(default_factory=list)
    by_sop: dict[str, FileResult] = field(default_factory=dict)
    bytes_total: int = 0

    @property
    def instances(self) -> int:
        return len(self.by_sop)


def index_files(paths: Sequence[str | Path], *, stop: threading.Event | None = None,
                on_file: Callable[[], None] | None = None) -> Index:
    """Read every input's header (two threads, a bounded window ahead) into an `Index`."""
    index = Index()

    def header(item: Source | Unreadable) -> DicomFile | Unreadable:
        return item if isinstance(item, Unreadable) else read_header(item)

    with ThreadPoolExecutor(2, thread_name_prefix="upload-scan") as pool:
        for _item, found in _read_ahead(pool, header, scan(paths), _READ_AHEAD):
            if stop is not None and stop.is_set():
                break
            if isinstance(found, Unreadable):
                index.results.append(FileResult(str(found.source), Outcome.SKIPPED, found.reason))
            elif (first := index.by_sop.get(found.sop_instance_uid)) is not None:
                index.results.append(FileResult(str(found.source), Outcome.SKIPPED,
                                                f"same SOP Instance UID as {first.file}", found.study_uid,
                                                found.sop_instance_uid))
            else:
                result = FileResult(str(found.source), Outcome.NOT_SENT, "interrupted before it was sent",
                                    found.study_uid, found.sop_instance_uid)
                index.results.append(result)
                index.by_sop[found.sop_instance_uid] = result
                index.studies.setdefault(found.study_uid, []).append(found)
                index.bytes_total += found.size
            if on_file is not None:
                on_file()
    return index


#: what sending a batch gives: the service's answer per instance, the files that could not be read, bytes sent
_Sent = tuple[StowOutcome, list[tuple[DicomFile, str]], int]


@dataclass
class _Batch:
    files: list[DicomFile]

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


class Upload:
    """One upload of `paths` to `endpoint` (see the module docstring); `run` blocks until it is done."""

    def __init__(self, endpoint: Endpoint, *, concurrency: int = DEFAULT_CONCURRENCY,
                 batch_instances: int = BATCH_INSTANCES, batch_bytes: int = BATCH_BYTES,
                 in_flight_bytes: int = IN_FLIGHT_BYTES, on_progress: Callable[[BulkProgress], None] | None = None,
                 stop: threading.Event | None = None) -> None:
        if concurrency < 1 or batch_instances < 1 or batch_bytes < 1:
            raise ConfigurationError("concurrency and batch limits must be at least 1")
        self.endpoint = endpoint
        self.concurrency = concurrency
        self.batch_instances = batch_instances
        self.batch_bytes = batch_bytes
        self.in_flight_bytes = in_flight_bytes
        self.on_progress = on_progress
        self.stop = stop or threading.Event()
        self.report = UploadReport(destination=f"{endpoint.name} ({endpoint.base_url})")
        self._by_sop: dict[str, FileResult] = {}
        self._stage = ""
        self._files_total: int | None = None
        self._bytes_total = 0
        self._done = 0
        self._bytes_done = 0
        self._last_progress = 0.0

    # -- progress -------------------------------------------------------------------------------------------------

    def _progress(self, *, force: bool = False, finished: bool = False) -> None:
        now = time.monotonic()
        if self.on_progress is None or (not force and now - self._last_progress < _PROGRESS_EVERY):
            return
        self._last_progress = now
        counts = self.report.counts()
        shown = {k.value: counts[k.value] for k in (Outcome.STORED, Outcome.PRESENT, Outcome.FAILED, Outcome.SKIPPED)}
        self.on_progress(BulkProgress(
            OPERATION, self._stage, done=self._done, total=self._files_total, bytes_done=self._bytes_done,
            bytes_total=self._bytes_total or None, transferred=counts[Outcome.STORED], counts=shown,
            finished=finished))

    def _settle(self, dicom: DicomFile, outcome: Outcome, reason: str = "") -> None:
        result = self._by_sop[dicom.sop_instance_uid]
        result.outcome, result.reason = outcome, reason
        self._done += 1
        self._bytes_done += dicom.size

    # -- 1. scan and index ----------------------------------------------------------------------------------------

    def index(self, paths: Sequence[str | Path]) -> dict[str, list[DicomFile]]:
        """Every input's header read; uploadable files by study (in the order first seen)."""
        self._stage = "reading headers"

        def on_file() -> None:
            self._done += 1
            self._progress()

        found = index_files(paths, stop=self.stop, on_file=on_file)
        self._done = sum(1 for r in found.results if r.outcome is Outcome.SKIPPED)  # the others: not yet
        self.report.results = found.results
        self._by_sop = found.by_sop
        self._bytes_total = found.bytes_total
        self._files_total = len(found.results)
        self.report.studies = len(found.studies)
        return found.studies

    # -- 2.-4. check, send, classify -----------------------------------------------------------------------------

    def _batches(self, files: Sequence[DicomFile]) -> Iterator[_Batch]:
        batch: list[DicomFile] = []
        size = 0
        for dicom in files:
            if batch and (len(batch) >= self.batch_instances or size + dicom.size > self.batch_bytes):
                yield _Batch(batch)
                batch, size = [], 0
            batch.append(dicom)
            size += dicom.size
        if batch:
            yield _Batch(batch)

    def _send(self, client: Client, batch: _Batch) -> _Sent:
        """Read the batch's files and STOW them (in a worker thread); unreadable files are left out."""
        parts: list[bytes] = []
        sent: list[str] = []
        unreadable: list[tuple[DicomFile, str]] = []
        for dicom in batch.files:
            try:
                parts.append(dicom.source.read())
                sent.append(dicom.sop_instance_uid)
            except OSError as error:
                unreadable.append((dicom, f"cannot read: {error.strerror or error}"))
        if not parts:
            return StowOutcome(), unreadable, 0
        size = sum(len(p) for p in parts)
        answer = client.store(parts)
        del parts
        return self.endpoint.classify(answer, sent), unreadable, size

    def transfer(self, studies: dict[str, list[DicomFile]]) -> None:
        self._stage = "uploading"
        pending: deque[_Batch] = deque()
        waiting = iter(studies.items())
        more_studies = True
        running: dict[Future[Any], tuple[str, Any]] = {}
        bytes_running = 0
        failed_in_a_row = 0
        checks_limit = max(1, self.concurrency // 2)
        client = Client(self.endpoint, pool_size=self.concurrency + 2)
        try:
            with ThreadPoolExecutor(self.concurrency, thread_name_prefix="upload") as pool:
                while True:
                    while not self.report.stopped and not self.stop.is_set() and len(running) < self.concurrency:
                        checks = sum(1 for kind, _ in running.values() if kind == "check")
                        if pending and (bytes_running == 0 or bytes_running + pending[0].size <= self.in_flight_bytes):
                            batch = pending.popleft()
                            bytes_running += batch.size
                            running[pool.submit(self._send, client, batch)] = ("send", batch)
                        elif more_studies and len(pending) < self.concurrency and checks < checks_limit:
                            try:
                                study_uid, files = next(waiting)
                            except StopIteration:
                                more_studies = False
                                continue
                            future = pool.submit(self.endpoint.present, client, study_uid)
                            running[future] = ("check", files)
                        else:
                            break
                    if not running:
                        break
                    done, _ = wait(running, timeout=_PROGRESS_EVERY, return_when=FIRST_COMPLETED)
                    for future in done:
                        kind, work = running.pop(future)
                        if kind == "check":
                            pending.extend(self._checked(cast("Future[set[str]]", future), work))
                        else:
                            bytes_running -= work.size
                            answered = self._sent(cast("Future[_Sent]", future), work)
                            failed_in_a_row = 0 if answered else failed_in_a_row + 1
                            if failed_in_a_row >= FAILED_IN_A_ROW and not self.report.stopped:
                                self.report.stopped = f"{FAILED_IN_A_ROW} requests in a row failed"
                    if self.stop.is_set() and not self.report.stopped:
                        self.report.stopped = "interrupted"
                        self.report.hint = "run the same command again to send the rest"
                    self._progress()
        finally:
            self.report.requests = dict(client.requests)
            self.report.throttled_retries = client.retries.throttled
            self.report.other_retries = client.retries.other
            client.close()

    def _checked(self, future: Future[set[str]], files: list[DicomFile]) -> list[_Batch]:
        try:
            present = future.result()
        except ProvisionError as error:
            self._fatal(error)
            for dicom in files:
                self._settle(dicom, Outcome.FAILED, f"checking what the service holds failed: {error.message}")
            return []
        missing = []
        for dicom in files:
            if dicom.sop_instance_uid in present:
                self._settle(dicom, Outcome.PRESENT)
            else:
                missing.append(dicom)
        return list(self._batches(missing))

    def _sent(self, future: Future[_Sent], batch: _Batch) -> bool:
        """Record a batch's outcomes; False when the request failed without an answer about its instances."""
        try:
            outcome, unreadable, size = future.result()
        except ProvisionError as error:
            self._fatal(error)
            for dicom in batch.files:
                self._settle(dicom, Outcome.FAILED, error.message)
            return False
        self.report.bytes_sent += size
        for dicom, reason in unreadable:
            self._settle(dicom, Outcome.FAILED, reason)
        for dicom in batch.files:
            uid = dicom.sop_instance_uid
            if uid in outcome.stored:
                self._settle(dicom, Outcome.STORED)
            elif uid in outcome.present:
                self._settle(dicom, Outcome.PRESENT)
            elif uid in outcome.failed:
                self._settle(dicom, Outcome.FAILED, outcome.failed[uid])
        return bool(outcome.stored or outcome.present)

    def _fatal(self, error: ProvisionError) -> None:
        """Stop sending when every further request would meet the same answer (no access, wrong URL, TLS)."""
        status = getattr(error, "status", None)
        every_request = isinstance(error, ConfigurationError) or (
            isinstance(error, DicomwebError) and status in (401, 403, 404, 405, 415))
        if every_request and not self.report.stopped:
            self.report.stopped = error.message
            self.report.hint = error.hint or ""

    def run(self, paths: Sequence[str | Path]) -> UploadReport:
        started = time.monotonic()
        try:
            studies = self.index(paths)
            self._progress(force=True)
            if not studies and not self.stop.is_set():
                self.report.stopped = "no DICOM files found"
                self.report.hint = "pass DICOM Part 10 files, folders holding them, or .zip archives of them"
            if studies and not self.stop.is_set():
                self.transfer(studies)
            elif self.stop.is_set():
                self.report.stopped = "interrupted"
        finally:
            if self.report.stopped:
                for result in self.report.results:
                    if result.outcome is Outcome.NOT_SENT:
                        result.reason = f"not sent: the upload stopped ({self.report.stopped})"
            self.report.seconds = time.monotonic() - started
            self._progress(force=True, finished=True)
        return self.report


async def run_upload(endpoint: Endpoint, paths: Sequence[str | Path], *,
                     on_progress: Callable[[BulkProgress], None] | None = None, **settings: Any) -> UploadReport:
    """`Upload(endpoint, **settings).run(paths)` in a worker thread; progress is delivered on the event loop's
    thread. When the calling task is cancelled (Ctrl+C), no new batch is sent, the ones in flight finish, and
    the report of what was done is returned."""
    loop = asyncio.get_running_loop()

    def progress(event: BulkProgress) -> None:
        if on_progress is not None:
            loop.call_soon_threadsafe(on_progress, event)

    upload = Upload(endpoint, on_progress=progress, **settings)
    running = loop.run_in_executor(None, upload.run, list(paths))
    try:
        return await asyncio.shield(running)
    except asyncio.CancelledError:
        upload.stop.set()
        return await running


__all__ = [
    "FileResult",
    "Index",
    "Outcome",
    "Upload",
    "UploadReport",
    "index_files",
    "run_upload",
]
