"""Writing files so that a reader sees the old content or the new one, never half, with the right mode."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

#: what a web server running as another user may read: the OHIF files hold no secret
PUBLIC = 0o644
#: the default for anything that could hold one
PRIVATE = 0o600


def write_atomically(path: Path, content: str | bytes, *, mode: int = PRIVATE) -> None:
    """Write `content` to `path` through a temporary file in the same directory, then rename: a reader sees the
    old or the new content, never half. The file gets `mode` (owner-only unless told otherwise) and keeps the
    owner an administrator gave the file it replaces (e.g. orthanc.json to the orthanc user)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = content.encode("utf-8") if isinstance(content, str) else content
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            with contextlib.suppress(FileNotFoundError, PermissionError):
                status = path.stat()
                os.fchown(handle.fileno(), status.st_uid, status.st_gid)
            handle.write(data)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
