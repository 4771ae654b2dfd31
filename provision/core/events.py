"""Events the engine and commands emit; the CLI turns them into a live display or JSON.

`Event` is one resource's step (the engine's). Two more kinds are for commands that are not a graph of
resources: `BulkProgress` (how far a bulk transfer such as an upload has come) and `Record` (one item a command
streams before it returns, such as a change feed entry under `--follow`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Phase(StrEnum):
    READ = "read"
    STARTED = "started"
    PROGRESS = "progress"
    RETRY = "retry"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Event:
    address: str
    phase: Phase
    action: str = ""
    message: str = ""
    elapsed: float = 0.0
    #: a RETRY after the server said "too many requests"
    throttled: bool = False


EventSink = Callable[[Event], None]


@dataclass(frozen=True)
class BulkProgress:
    """How far a bulk operation over many files has come (sent every fraction of a second while it runs).

    `done` of `total` files are finished (None: not counted yet), `bytes_done` of `bytes_total` bytes; `counts`
    holds the outcomes so far by name (e.g. stored, already present, failed), which the display shows as they are.
    """

    operation: str
    #: what it is doing now, e.g. "reading headers", "uploading"
    stage: str
    done: int = 0
    total: int | None = None
    bytes_done: int = 0
    bytes_total: int | None = None
    #: the unit `done` counts, for display ("files")
    unit: str = "files"
    #: how many of the finished items were transferred (the display's rate, e.g. instances/s, counts these)
    transferred: int = 0
    counts: Mapping[str, int] = field(default_factory=dict)
    finished: bool = False


@dataclass(frozen=True)
class Record:
    """One item a command produces before it returns (a change feed entry under `--follow`): the CLI prints
    `text` for people, or `document` as one JSON line."""

    kind: str
    text: str
    document: Mapping[str, Any]


#: what a command's `on_event` receives
CommandEvent = Event | BulkProgress | Record
CommandEventSink = Callable[[CommandEvent], None]


def ignore(_event: CommandEvent) -> None:
    """An event sink that drops everything."""
