"""A local Orthanc with the DICOMweb plugin: configuration, start/stop, readiness, and synthetic test data.

Used by the sandbox (the data plane behind each emulated DICOM service), by the end-to-end tests, and later
by a self-hosted Orthanc target.
"""

from .config import DICOMWEB_ROOT, OrthancSettings, orthanc_config
from .process import Orthanc, OrthancError, find_orthanc, find_plugin, spawn_orthanc, start_orthanc

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
