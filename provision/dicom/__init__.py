"""DICOM tools every part may use, below the targets and the sandbox: a local Orthanc with the DICOMweb plugin
(configuration, start/stop, readiness) and synthetic test data.

Used by the sandbox (the data plane behind each emulated DICOM service), by `provision azure verify`, by the
end-to-end tests, and by the self-hosted Orthanc target.
"""

from .orthanc_config import DICOMWEB_ROOT, OrthancSettings, orthanc_config
from .orthanc_process import Orthanc, OrthancError, find_orthanc, find_plugin, spawn_orthanc, start_orthanc

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
