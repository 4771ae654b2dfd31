"""The system programs the end-to-end tests drive. Missing ones fail the tests (never skip them): CI installs
them with scripts/install-system-deps.sh, and a local run should too."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")


def require_system_programs() -> None:
    missing = []
    if shutil.which("Orthanc") is None and not Path("/usr/sbin/Orthanc").exists():
        missing.append("Orthanc (orthanc)")
    if not DICOMWEB_PLUGIN.exists():
        missing.append("the DICOMweb plugin (orthanc-dicomweb)")
    if not Path("/usr/lib/chromium/chromium").exists() and shutil.which("chromium") is None:
        missing.append("chromium")
    if shutil.which("certutil") is None:
        missing.append("certutil (libnss3-tools)")
    if missing:
        pytest.fail(f"missing system programs: {', '.join(missing)}; run scripts/install-system-deps.sh",
                    pytrace=False)
