"""DICOM tools every part may use, below the targets and the sandbox: a local Orthanc with the DICOMweb plugin
(configuration, start/stop, readiness), synthetic test data, and the target-agnostic data plane: DICOMweb
endpoints and their client (`dicomweb`), the resumable upload (`files`, `upload`), study search (`search`) and
the plan's test studies as a resource (`seed`).

Used by the sandbox (the data plane behind each emulated DICOM service), by the targets' `upload`, `search`,
`verify` and seeding, by the end-to-end tests, and by the self-hosted Orthanc target. The process names below
load on first use (PEP 562), so a target module may import `provision.dicom.defaults` at start-up for free.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# light, and imported here so that the name `orthanc_config` is the function, not its module
from .orthanc_config import DICOMWEB_ROOT, OrthancSettings, orthanc_config

if TYPE_CHECKING:
    from .orthanc_process import Orthanc, OrthancError, find_orthanc, find_plugin, spawn_orthanc, start_orthanc

_LAZY = {
    "Orthanc": "orthanc_process",
    "OrthancError": "orthanc_process",
    "find_orthanc": "orthanc_process",
    "find_plugin": "orthanc_process",
    "spawn_orthanc": "orthanc_process",
    "start_orthanc": "orthanc_process",
}

__all__ = [
    "DICOMWEB_ROOT",
    "Orthanc",
    "OrthancError",
    "OrthancSettings",
    "find_orthanc",
    "find_plugin",
    "orthanc_config",
    "spawn_orthanc",
    "start_orthanc",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
