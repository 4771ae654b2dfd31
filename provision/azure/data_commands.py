"""`provision azure upload | search | changefeed PLAN`: the plan's DICOM service, as the tool's identity.

Declared in `provision.azure.target`; each opens the plan's session, finds the DICOM service through ARM
(`dataplane.service_endpoint`) and works on its data plane. Nothing here prints: the results are reports, the
progress `BulkProgress` events and the change feed's entries `Record`s, all rendered by the CLI.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from provision.core.commands import CommandCall
from provision.errors import ProvisionError

if TYPE_CHECKING:
    from provision.azure.changefeed import ChangeFeed
    from provision.azure.session import AzureSession
    from provision.dicom.dicomweb import Endpoint
    from provision.dicom.search import StudyList
    from provision.dicom.upload import UploadReport

T = TypeVar("T")


async def service_endpoint(session: AzureSession, plan_file: str) -> Endpoint:
    """The endpoint of the plan's DICOM service, read through ARM; a ProvisionError when it does not exist."""
    from provision.core.retry import with_retry

    section = session.section
    if section.dicom is None or section.workspace is None or section.resource_group is None:
        raise ProvisionError(f"{plan_file}: the plan declares no azure.dicom service",
                             hint="add azure.dicom (with a workspace and resource group) to the plan")
    dicom, group, workspace = section.dicom, section.resource_group.name, section.workspace.name
    body = await with_retry(lambda: session.azure.arm.get_dicom(group, workspace, dicom.name),
                            what=f"reading DICOM service {dicom.name}", limit=120.0)
    service_url = ((body or {}).get("properties") or {}).get("serviceUrl")
    if not service_url:
        raise ProvisionError(f"DICOM service {dicom.name} does not exist (or is still being created)",
                             hint=f"run `provision azure apply {plan_file}` first")
    return session.dicom_access().endpoint(str(service_url), dicom.name)



async def _with_endpoint(call: CommandCall, work: Callable[[Endpoint], Awaitable[T]]) -> T:
    from provision.azure.session import open_session

    session = await open_session(call.require_plan(), call.connection)
    try:
        return await work(await service_endpoint(session, call.source))
    finally:
        await session.aclose()


async def upload(call: CommandCall, *, paths: list[Path], concurrency: int) -> UploadReport:
    from provision.dicom.files import check_paths
    from provision.dicom.upload import run_upload

    check_paths(paths)

    async def work(endpoint: Endpoint) -> UploadReport:
        return await run_upload(endpoint, paths, on_progress=call.on_event, concurrency=concurrency)

    return await _with_endpoint(call, work)


async def search(call: CommandCall, *, patient_id: str | None, study_uid: str | None, modality: str | None,
                 limit: int) -> StudyList:
    from provision.dicom.search import search_studies

    async def work(endpoint: Endpoint) -> StudyList:
        return await asyncio.to_thread(search_studies, endpoint, patient_id=patient_id, study_uid=study_uid,
                                       modality=modality, limit=limit)

    return await _with_endpoint(call, work)


async def changefeed(call: CommandCall, *, since: str | None, follow: bool, interval: float) -> ChangeFeed:
    from provision.azure.changefeed import changefeed as read_feed
    from provision.azure.changefeed import parse_since

    if since:
        parse_since(since)  # a bad --since is refused before anything is called

    async def work(endpoint: Endpoint) -> ChangeFeed:
        return await read_feed(endpoint, since=since, follow=follow, interval=interval, on_record=call.on_event)

    return await _with_endpoint(call, work)


__all__ = ["changefeed", "search", "service_endpoint", "upload"]
