"""`provision orthanc upload | search PLAN`: the running deployment's DICOMweb root, through nginx, as the admin.

Declared in `provision.orthanc.target`. Orthanc stores an instance sent twice again (no duplicate warning as
Azure and Google give), so the upload's presence check (a QIDO per study) is what makes a re-run send only what
is missing. Nothing here prints: the results are reports and progress events, rendered by the CLI.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from provision.core.commands import CommandCall
from provision.orthanc.session import Deployment, deployment

if TYPE_CHECKING:
    from provision.core.target import Connection
    from provision.dicom.dicomweb import Endpoint
    from provision.dicom.search import StudyList
    from provision.dicom.upload import UploadReport


def admin_endpoint(current: Deployment, connection: Connection) -> Endpoint:
    """The public DICOMweb root (what viewers reach), with the admin's HTTP Basic credentials and the local CA."""
    from requests.auth import HTTPBasicAuth

    from provision.dicom.dicomweb import Endpoint

    site = current.site
    local_ca = (site.local_ca,) if site.local_ca is not None and site.local_ca.is_file() else ()
    return Endpoint(
        name=f"Orthanc at {site.public_url}",
        base_url=site.dicomweb_url,
        auth=HTTPBasicAuth(site.admin_user, current.admin_password),
        ca_bundles=(*local_ca, *connection.trusted()),
        access_hint="the admin password in the environment must be the one the running Orthanc was set up with: "
                    "run `provision orthanc apply` and `provision orthanc up` again",
    )


async def upload(call: CommandCall, *, paths: list[Path], concurrency: int) -> UploadReport:
    from provision.dicom.files import check_paths
    from provision.dicom.upload import run_upload

    check_paths(paths)
    endpoint = admin_endpoint(deployment(call.require_plan()), call.connection)
    return await run_upload(endpoint, paths, on_progress=call.on_event, concurrency=concurrency)


async def search(call: CommandCall, *, patient_id: str | None, study_uid: str | None, modality: str | None,
                 limit: int) -> StudyList:
    from provision.dicom.search import search_studies

    endpoint = admin_endpoint(deployment(call.require_plan()), call.connection)
    return await asyncio.to_thread(search_studies, endpoint, patient_id=patient_id, study_uid=study_uid,
                                   modality=modality, limit=limit)


__all__ = ["admin_endpoint", "search", "upload"]
