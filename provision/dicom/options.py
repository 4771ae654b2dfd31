"""The data-plane commands' arguments and options (`upload`, `search`), declared once for every target.

Light on purpose: a target's `target.py` imports this at start-up to declare its commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from provision.core.commands import Argument, Option
from provision.dicom.defaults import MAX_CONCURRENCY

UploadPaths = Annotated[list[Path], Argument("DICOM files, folders (searched recursively) and .zip archives.",
                                             metavar="PATH")]
Concurrency = Annotated[int, Option("STOW requests in flight at once.", minimum=1, maximum=MAX_CONCURRENCY)]
PatientId = Annotated[str | None, Option("Only studies of this PatientID (exact match).")]
StudyUid = Annotated[str | None, Option("Only the study with this StudyInstanceUID.")]
Modality = Annotated[str | None, Option("Only studies with a series of this modality (e.g. CT).")]
Limit = Annotated[int, Option("At most this many studies.", minimum=1, maximum=10_000)]

__all__ = ["Concurrency", "Limit", "Modality", "PatientId", "StudyUid", "UploadPaths"]
