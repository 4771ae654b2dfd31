"""Test studies a plan uploads into its DICOM store at the end of apply (`seed:` in the plan), as one resource.

`<target>.dicom_seed[<store>]` reads by checking which of the seed files' instances the store holds (their
headers are read, one QIDO per study; nothing is sent): `None` when it holds none of them, else how many. The
desired state is all of them, so `plan` shows a create (a fresh store), an update (`instances: 3 -> 5`: some
are missing) or nothing at all, and `--detailed-exitcode` stays meaningful. Create and update upload the
missing instances (provision.dicom.upload); a second apply finds them all present and sends no STOW.

The studies live in the store, which the plan owns and deletes: destroy sends nothing for them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provision.core import Context, Resource, Timeouts, Update
from provision.core.events import BulkProgress
from provision.errors import CloudError, PlanError

from .dicomweb import Client, Endpoint
from .upload import Outcome, index_files, run_upload

#: the seed's endpoint from its dependencies' outputs; None while the store does not exist yet
EndpointOf = Callable[[Context], Endpoint | None]


@dataclass(frozen=True)
class SeedFiles:
    """A plan's seed paths and what they hold (read when the session opens, before anything is called)."""

    paths: tuple[Path, ...]
    instances: int
    studies: int

    @classmethod
    def read(cls, paths: Sequence[Path], where: str) -> SeedFiles:
        """Index `paths`; a PlanError naming `where` (e.g. `plan.yaml: azure.dicom.seed`) when they hold no
        uploadable DICOM file."""
        found = index_files(paths)
        if not found.instances:
            reasons = "; ".join(f"{r.file}: {r.reason}" for r in found.results[:3]) or "no files"
            raise PlanError(f"{where}: no DICOM files in {', '.join(map(str, paths))} ({reasons})",
                            hint="seed paths name DICOM Part 10 files, folders holding them, or .zip archives")
        return cls(tuple(paths), found.instances, len(found.studies))


def inventory(endpoint: Endpoint, paths: Sequence[Path]) -> dict[str, Any]:
    """How many of the seed's instances (and studies) the store holds, and how many there are (blocking)."""
    found = index_files(paths)
    studies = found.studies
    client = Client(endpoint, pool_size=2)
    try:
        present = 0
        held = 0
        for study_uid, files in studies.items():
            held_uids = endpoint.present(client, study_uid)
            count = sum(1 for f in files if f.sop_instance_uid in held_uids)
            present += count
            held += 1 if count else 0
    finally:
        client.close()
    declared = sum(len(files) for files in studies.values())
    return {"instances": present, "studies": held, "declared": declared, "declared_studies": len(studies)}


class DicomSeed(Resource):
    """The plan's test studies in one store (see the module docstring)."""

    timeouts = Timeouts(read=300.0, create=60 * 60.0, update=60 * 60.0)

    def __init__(self, address: str, seed: SeedFiles, endpoint_of: EndpointOf, *,
                 depends_on: tuple[str, ...], store_address: str) -> None:
        super().__init__(address, depends_on, deleted_with=store_address)
        self.seed = seed
        self.paths = list(seed.paths)
        self.endpoint_of = endpoint_of
        self.store_address = store_address

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {"instances": self.seed.instances, "studies": self.seed.studies}

    async def read(self, ctx: Context) -> dict[str, Any] | None:
        endpoint = self.endpoint_of(ctx)
        if endpoint is None:
            return None
        state = await asyncio.to_thread(inventory, endpoint, self.paths)
        return {"instances": state["instances"], "studies": state["studies"]} if state["instances"] else None

    async def create(self, ctx: Context, desired: dict[str, Any]) -> dict[str, Any] | None:
        return await self._upload(ctx)

    async def update(self, ctx: Context, desired: dict[str, Any], actual: dict[str, Any],
                     action: Update) -> dict[str, Any] | None:
        return await self._upload(ctx)

    async def _upload(self, ctx: Context) -> dict[str, Any]:
        endpoint = self.endpoint_of(ctx)
        if endpoint is None:
            raise CloudError(f"{self.label}: the store has no DICOMweb address yet")

        def progress(event: BulkProgress) -> None:
            if event.total:
                ctx.progress(f"{event.stage}: {event.done}/{event.total} files")

        report = await run_upload(endpoint, self.paths, on_progress=progress)
        counts = report.counts()
        if not report.ok:
            failed = [r for r in report.results if r.outcome in (Outcome.FAILED, Outcome.NOT_SENT)]
            shown = "; ".join(f"{r.file}: {r.reason}" for r in failed[:5])
            more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
            raise CloudError(f"{self.label}: {len(failed)} of the seed's instances were not stored: {shown}{more}",
                             hint=report.hint or "run apply again: it sends only what is missing")
        held = counts[Outcome.STORED] + counts[Outcome.PRESENT]
        return {"instances": held, "studies": report.studies}

    def kept_on_destroy(self, actual: dict[str, Any]) -> str | None:
        return f"goes with {self.store_address}"

    def outputs(self, actual: dict[str, Any]) -> dict[str, Any]:
        return {"instances": actual.get("instances")}


__all__ = ["DicomSeed", "EndpointOf", "SeedFiles", "inventory"]
