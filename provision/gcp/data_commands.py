"""`provision gcp upload | search PLAN`: one of the plan's DICOM stores, as the tool's identity (ADC).

Declared in `provision.gcp.target`; the store is `--store ID` (may be omitted when the plan has one). Nothing
here prints: the results are reports and the progress `BulkProgress` events, rendered by the CLI.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from provision.core.commands import CommandCall
from provision.errors import ConfigurationError

if TYPE_CHECKING:
    from provision.dicom.dicomweb import Endpoint
    from provision.dicom.search import StudyList
    from provision.dicom.upload import UploadReport
    from provision.gcp.session import GcpSession

T = TypeVar("T")


def store_endpoint(session: GcpSession, store_id: str | None) -> Endpoint:
    """The endpoint of one of the plan's DICOM stores (`store_id`; may be omitted when the plan has one)."""
    section = session.section
    declared = [store.id for store in section.dicom_stores]
    if store_id is None:
        if len(declared) != 1:
            raise ConfigurationError(
                "the plan declares " + (f"{len(declared)} DICOM stores ({', '.join(declared)})" if declared
                                        else "no DICOM store"),
                hint="name one with --store" if declared else "add a store to gcp.dicom_stores",
            )
        store_id = declared[0]
    elif store_id not in declared:
        raise ConfigurationError(f"--store {store_id}: not a store of the plan (declared: {', '.join(declared)})")
    from provision.gcp.dataplane import endpoint_for

    return endpoint_for(session.client, session.ca_bundles, f"{section.dataset_name}/dicomStores/{store_id}")



async def _with_endpoint(call: CommandCall, store: str | None, work: Callable[[Endpoint], Awaitable[T]]) -> T:
    from provision.gcp.session import open_session

    session = await open_session(call.require_plan(), call.connection)
    try:
        return await work(store_endpoint(session, store))
    finally:
        await session.aclose()


async def upload(call: CommandCall, *, paths: list[Path], store: str | None, concurrency: int) -> UploadReport:
    from provision.dicom.files import check_paths
    from provision.dicom.upload import run_upload

    check_paths(paths)

    async def work(endpoint: Endpoint) -> UploadReport:
        return await run_upload(endpoint, paths, on_progress=call.on_event, concurrency=concurrency)

    return await _with_endpoint(call, store, work)


async def search(call: CommandCall, *, store: str | None, patient_id: str | None, study_uid: str | None,
                 modality: str | None, limit: int) -> StudyList:
    from provision.dicom.search import search_studies

    async def work(endpoint: Endpoint) -> StudyList:
        return await asyncio.to_thread(search_studies, endpoint, patient_id=patient_id, study_uid=study_uid,
                                       modality=modality, limit=limit)

    return await _with_endpoint(call, store, work)


__all__ = ["search", "store_endpoint", "upload"]
