"""Orthanc's configuration file as a pure function of a few settings (see shared facts/gcp-orthanc.md).

Orthanc 1.10 (Debian bookworm) reads one JSON file. What matters for a DICOMweb back end:
HTTP only on the loopback, HTTP Basic authentication with a generated password (so another local user
cannot bypass whatever sits in front), no DICOM (DIMSE) listener, the DICOMweb plugin under `/dicom-web/`,
and one storage and index directory per Orthanc.

With `python_script` an orthanc-python script authenticates every request instead (the self-hosted target's
share filter): Orthanc's own Basic check is then off, because Orthanc runs it before the script's filter and
answers 401 to any request with a Bearer token, so the filter would never see one.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
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
    #: WADO-URI (`/wado`), which the sandbox's Azure emulation answers; OHIF's WADO-RS set-up does not use it
    wado_uri: bool = True
    #: an orthanc-python script that authenticates every request itself (its plugin must be in `plugins`)
    python_script: Path | None = None
    #: more top-level keys, e.g. the script's own section
    extra: Mapping[str, Any] = field(default_factory=dict)


def orthanc_config(settings: OrthancSettings) -> dict[str, Any]:
    """The `orthanc.json` document for `settings` (pure)."""
    storage = str(settings.storage_dir)
    if settings.python_script is None:
        authentication: dict[str, Any] = {
            "AuthenticationEnabled": True, "RegisteredUsers": {settings.username: settings.password},
        }
    else:
        authentication = {
            "AuthenticationEnabled": False, "PythonScript": str(settings.python_script), "PythonVerbose": False,
        }
    return {
        "Name": settings.name,
        "StorageDirectory": storage,
        "IndexDirectory": storage,
        "HttpServerEnabled": True,
        "HttpPort": settings.http_port,
        "RemoteAccessAllowed": settings.remote_access,
        **authentication,
        "DicomServerEnabled": False,
        "WebDavEnabled": False,
        "LuaScripts": [],
        "StableAge": settings.stable_age,
        "StorageCompression": False,
        "Plugins": [str(p) for p in settings.plugins],
        "DicomWeb": {
            "Enable": True,
            "Root": settings.dicomweb_root,
            "EnableWado": settings.wado_uri,
            "Ssl": False,
            # A viewer needs every tag of each instance (pixel module, geometry), not only the main tags.
            "StudiesMetadata": "Full",
            "SeriesMetadata": "Full",
        },
        **settings.extra,
    }
