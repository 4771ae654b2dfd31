"""Orthanc's configuration file as a pure function of a few settings (see shared facts/gcp-orthanc.md).

Orthanc 1.10 (Debian bookworm) reads one JSON file. What matters for a DICOMweb back end:
HTTP only on the loopback, HTTP Basic authentication with a generated password (so another local user
cannot bypass whatever sits in front), no DICOM (DIMSE) listener, the DICOMweb plugin under `/dicom-web/`,
and one storage and index directory per Orthanc.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DICOMWEB_ROOT = "/dicom-web/"
DEFAULT_PLUGIN_DIRS = (Path("/usr/share/orthanc/plugins"), Path("/usr/lib/orthanc/plugins"))
DICOMWEB_PLUGIN = "libOrthancDicomWeb.so"


@dataclass(frozen=True)
class OrthancSettings:
    """What differs between two Orthanc instances."""

    storage_dir: Path
    http_port: int
    plugins: tuple[Path, ...]
    username: str = "provision"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    name: str = "provision"
    #: `false` keeps Orthanc on 127.0.0.1; a self-hosted deployment behind a proxy may need more
    remote_access: bool = False
    #: seconds without a new instance before a series/study counts as stable (Orthanc default 60)
    stable_age: int = 2
    dicomweb_root: str = DICOMWEB_ROOT


def orthanc_config(settings: OrthancSettings) -> dict[str, Any]:
    """The `orthanc.json` document for `settings` (pure)."""
    storage = str(settings.storage_dir)
    return {
        "Name": settings.name,
        "StorageDirectory": storage,
        "IndexDirectory": storage,
        "HttpServerEnabled": True,
        "HttpPort": settings.http_port,
        "RemoteAccessAllowed": settings.remote_access,
        "AuthenticationEnabled": True,
        "RegisteredUsers": {settings.username: settings.password},
        "DicomServerEnabled": False,
        "WebDavEnabled": False,
        "LuaScripts": [],
        "StableAge": settings.stable_age,
        "StorageCompression": False,
        "Plugins": [str(p) for p in settings.plugins],
        "DicomWeb": {
            "Enable": True,
            "Root": settings.dicomweb_root,
            "EnableWado": True,
            "Ssl": False,
            # A viewer needs every tag of each instance (pixel module, geometry), not only the main tags.
            "StudiesMetadata": "Full",
            "SeriesMetadata": "Full",
        },
    }
