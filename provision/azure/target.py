"""The Azure target as the registry sees it: its plan section, its sessions, and its command-line surface
(`verify` and what `provision gc` takes) declared as data. Nothing heavy is imported here: the SDKs and the
implementations load when a command runs, so `provision --help` stays fast."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

from provision.core.commands import Checks, Command, CommandCall, GcCall, Option
from provision.core.target import Connection, GcPlaces, PlanView, Target, TargetSession
from provision.dicom.defaults import DEFAULT_CONCURRENCY
from provision.dicom.options import Concurrency, Limit, Modality, PatientId, StudyUid, UploadPaths

if TYPE_CHECKING:
    from provision.azure.changefeed import ChangeFeed
    from provision.core.gc import Inventory
    from provision.dicom.search import StudyList
    from provision.dicom.upload import UploadReport


async def verify(
    call: CommandCall,
    *,
    write_test: Annotated[bool, Option("Also store, read back and delete a generated test instance.")] = False,
) -> Checks:
    """Check that the live setup works for the viewer: app registration, token, CORS, QIDO, roles.

    Exits 0 only if every check passes; each failure names its fix. Changes nothing (except the
    test instance of --write-test, which it deletes again).
    """
    from provision.azure import verify as checks

    return await checks.verify(call, write_test=write_test)


async def upload(call: CommandCall, *, paths: UploadPaths, concurrency: Concurrency = DEFAULT_CONCURRENCY,
                 ) -> UploadReport:
    """Upload DICOM files to the plan's DICOM service (STOW-RS): only the instances it does not hold yet.

    Files that are not DICOM are reported and skipped. Exits 1 if any instance failed; running it again
    sends only what is still missing.
    """
    from provision.azure import data_commands

    return await data_commands.upload(call, paths=paths, concurrency=concurrency)


async def search(call: CommandCall, *, patient_id: PatientId = None, study_uid: StudyUid = None,
                 modality: Modality = None, limit: Limit = 100) -> StudyList:
    """Search the plan's DICOM service for studies (QIDO-RS): a table, or JSON with --output json."""
    from provision.azure import data_commands

    return await data_commands.search(call, patient_id=patient_id, study_uid=study_uid, modality=modality,
                                      limit=limit)


async def changefeed(
    call: CommandCall,
    *,
    since: Annotated[str | None, Option("Only changes from this time on: ISO 8601 (2024-05-01T10:00:00Z) or how "
                                        "long ago (90m, 2d).", metavar="T")] = None,
    follow: Annotated[bool, Option("Keep polling and show new changes as they come (Ctrl+C ends).")] = False,
    interval: Annotated[float, Option("Seconds between polls with --follow.")] = 5.0,
) -> ChangeFeed:
    """Read the DICOM service's change feed (/v2/changefeed): sequence, time, action, state and UIDs."""
    from provision.azure import data_commands

    return await data_commands.changefeed(call, since=since, follow=follow, interval=interval)


async def gc_places(
    call: GcCall,
    *,
    azure_subscription: Annotated[
        str | None, Option("Azure subscription to search (and its tenant, for apps).", envvar="AZURE_SUBSCRIPTION_ID")
    ] = None,
    azure_cloud: Annotated[str, Option("Azure cloud: public, usgov or china.")] = "public",
) -> Sequence[Inventory]:
    from provision.azure import gc

    return gc.gc_places(call, azure_subscription=azure_subscription, azure_cloud=azure_cloud)


class AzureTarget(Target):
    name = "azure"
    summary = "Entra ID app, Health Data Services workspace, DICOM service with CORS, role assignments, OHIF config."

    def section_model(self) -> type[object]:
        from provision.azure.plan import AzureSection

        return AzureSection

    async def open_session(self, plan: PlanView, connection: Connection) -> TargetSession:
        from provision.azure.session import open_session

        return await open_session(plan, connection)

    def commands(self) -> Sequence[Command]:
        return (Command("verify", verify), Command("upload", upload), Command("search", search),
                Command("changefeed", changefeed))

    def gc_places(self) -> GcPlaces:
        return gc_places


TARGET = AzureTarget()
