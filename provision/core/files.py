"""Writing files so that a reader sees the old content or the new one, never half, with the right mode."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

#: what a web server running as another user may read: the OHIF files hold no secret
PUBLIC = 0o644
#: the default for anything that could hold one
PRIVATE = 0o600


def write_atomically(path: Path, text: str, *, mode: int = PRIVATE) -> None:
    """Write `text` to `path` through a temporary file in the same directory, then rename: a reader sees the
    old or the new content, never half. The file gets `mode` (owner-only unless told otherwise)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
