"""The progress display of apply/destroy: a long wait shows its elapsed time, counting, on a terminal and in CI
logs; a failure says what the resource was doing."""

from __future__ import annotations

import io
import re
import time

import pytest
from rich.console import Console

from provision.cli import render
from provision.core.events import BulkProgress, Event, Phase

DICOM = "azure.dicom_service[ohif-dicom]"


def _console(monkeypatch: pytest.MonkeyPatch, *, terminal: bool) -> io.StringIO:
    out = io.StringIO()
    console = Console(file=out, force_terminal=terminal, width=160, highlight=False, markup=False, soft_wrap=True,
                      color_system=None)
    monkeypatch.setattr(render, "err_console", console)
    return out


def test_on_a_terminal_the_elapsed_time_of_a_long_wait_keeps_counting_between_events(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = _console(monkeypatch, terminal=True)
    with render.Progress() as progress:
        assert progress.live is not None
        progress(Event(DICOM, Phase.STARTED, "create"))
        progress(Event(DICOM, Phase.PROGRESS, "create", "creating DICOM service ohif-dicom: running, 0 s elapsed"))
        time.sleep(2.4)  # no event: the engine reports a long wait only every few seconds
    shown = {int(s) for s in re.findall(r"create\s+progress\s+(\d+)s", out.getvalue())}
    assert {0, 1, 2} <= shown, out.getvalue()[-2000:]


def test_in_a_log_each_wait_and_failure_is_a_line_with_its_action(monkeypatch: pytest.MonkeyPatch) -> None:
    out = _console(monkeypatch, terminal=False)
    with render.Progress() as progress:
        assert progress.live is None
        progress(Event(DICOM, Phase.STARTED, "update"))
        progress(Event(DICOM, Phase.PROGRESS, "update", "updating DICOM service ohif-dicom: running, 5 s elapsed",
                       elapsed=5.2))
        progress(Event(DICOM, Phase.FAILED, message="updating DICOM service ohif-dicom: 409 Conflict"))
    lines = out.getvalue().splitlines()
    assert lines[1].endswith(f"{DICOM}: update progress (5.2s) updating DICOM service ohif-dicom: running, 5 s elapsed")
    assert lines[2].endswith(f"{DICOM}: update failed updating DICOM service ohif-dicom: 409 Conflict")


def bulk(stage: str, done: int, **more: object) -> BulkProgress:
    return BulkProgress("upload", stage, done=done, total=1200, bytes_done=done * 10_000, bytes_total=12_000_000,
                        transferred=done, counts={"stored": done, "failed": 0}, **more)  # type: ignore[arg-type]


def test_in_a_log_a_bulk_transfer_is_a_line_every_500_files_and_at_the_end(monkeypatch: pytest.MonkeyPatch) -> None:
    out = _console(monkeypatch, terminal=False)
    with render.Progress(lazy=True) as progress:
        progress(bulk("reading headers", 3))
        for done in (10, 400, 510, 900, 1020):
            progress(bulk("uploading", done))
        progress(bulk("uploading", 1200, finished=True))
    lines = [line.split("] ", 1)[1] for line in out.getvalue().splitlines()]
    assert [line.split(",")[0] for line in lines] == [
        "upload: reading headers 3/1200 files", "upload: uploading 10/1200 files", "upload: uploading 510/1200 files",
        "upload: uploading 1020/1200 files", "upload: uploading 1200/1200 files"]
    assert lines[-1].startswith("upload: uploading 1200/1200 files, 12.0/12.0 MB, ")
    assert lines[-1].endswith("instances/s; stored 1200")  # zero counts are left out


def test_on_a_terminal_a_bulk_transfer_is_a_progress_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    out = _console(monkeypatch, terminal=True)
    with render.Progress(lazy=True) as progress:
        progress(bulk("uploading", 600))
        assert progress.bulk is not None and progress.bulk.bar is not None
        progress(bulk("uploading", 1200, finished=True))
        assert progress.bulk.bar is None  # finished: the bar is left on the screen as it ended
    shown = out.getvalue()
    assert "upload: uploading" in shown and "1200/1200 files" in shown and "12.0/12.0 MB" in shown
    assert "1200 stored" in shown
