"""Events the engine emits; the CLI turns them into a live display or JSON."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


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


def ignore(_event: Event) -> None:
    """An event sink that drops everything."""
