"""The Google Cloud target as the registry sees it: its plan section, its sessions, and its command-line surface
(`roles` and what `provision gc` takes) declared as data. Nothing heavy is imported here: the SDKs and the
implementations load when a command runs, so `provision --help` stays fast."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

from provision.core.commands import Applied, Command, CommandCall, GcCall, Option, PlanUse
from provision.core.target import Connection, GcPlaces, PlanView, Target, TargetSession
from provision.dicom.defaults import DEFAULT_CONCURRENCY
from provision.dicom.options import Concurrency, Limit, Modality, PatientId, StudyUid, UploadPaths

if TYPE_CHECKING:
    from provision.core.gc import Inventory
    from provision.dicom.search import StudyList
    from provision.dicom.upload import UploadReport


async def roles(
    call: CommandCall,
    *,
    store: Annotated[str | None, Option("DICOM store: projects/P/locations/L/datasets/D/dicomStores/S.")] = None,
    dataset: Annotated[str | None, Option("Dataset: projects/P/locations/L/datasets/D.")] = None,
    viewer: Annotated[list[str] | None, Option(
        "Grant roles/healthcare.dicomViewer (user:, group:, serviceAccount:, domain:). Repeatable.",
        metavar="MEMBER")] = None,
    editor: Annotated[list[str] | None, Option(
        "Grant roles/healthcare.dicomEditor. Repeatable.", metavar="MEMBER")] = None,
    revoke_viewer: Annotated[list[str] | None, Option(
        "Revoke roles/healthcare.dicomViewer.", metavar="MEMBER")] = None,
    revoke_editor: Annotated[list[str] | None, Option(
        "Revoke roles/healthcare.dicomEditor.", metavar="MEMBER")] = None,
    authoritative: Annotated[list[str] | None, Option(
        "viewer or editor: that role's members become exactly the ones given "
        "(default: additive, everyone else keeps access).", metavar="ROLE")] = None,
) -> Applied:
    """Grant or revoke DICOM roles on a dataset or DICOM store (additive by default; foreign bindings,
    members and IAM Conditions are kept)."""
    from provision.gcp import roles as implementation

    return await implementation.roles(
        call, store=store, dataset=dataset, viewer=viewer, editor=editor, revoke_viewer=revoke_viewer,
        revoke_editor=revoke_editor, authoritative=authoritative,
    )


Store = Annotated[str | None, Option("The plan's DICOM store (its id in gcp.dicom_stores); may be omitted when "
                                    "the plan declares one.", metavar="ID")]


async def upload(call: CommandCall, *, paths: UploadPaths, store: Store = None,
                 concurrency: Concurrency = DEFAULT_CONCURRENCY) -> UploadReport:
    """Upload DICOM files to one of the plan's DICOM stores (STOW-RS): only the instances it does not hold yet.

    Files that are not DICOM are reported and skipped. Exits 1 if any instance failed; running it again
    sends only what is still missing.
    """
    from provision.gcp import data_commands

    return await data_commands.upload(call, paths=paths, store=store, concurrency=concurrency)


async def search(call: CommandCall, *, store: Store = None, patient_id: PatientId = None, study_uid: StudyUid = None,
                 modality: Modality = None, limit: Limit = 100) -> StudyList:
    """Search one of the plan's DICOM stores for studies (QIDO-RS): a table, or JSON with --output json."""
    from provision.gcp import data_commands

    return await data_commands.search(call, store=store, patient_id=patient_id, study_uid=study_uid,
                                      modality=modality, limit=limit)


async def gc_places(
    call: GcCall,
    *,
    gcp_project: Annotated[
        str | None, Option("Google Cloud project to search.", envvar="GOOGLE_CLOUD_PROJECT")
    ] = None,
    gcp_location: Annotated[
        list[str] | None,
        Option("Google Cloud location to search (repeatable); Google Cloud is searched only when one is given."),
    ] = None,
) -> Sequence[Inventory]:
    from provision.gcp import gc

    return gc.gc_places(call, gcp_project=gcp_project, gcp_location=gcp_location)


class GcpTarget(Target):
    name = "gcp"
    summary = "Google Cloud Healthcare dataset, DICOM stores, IAM bindings, OHIF config."

    def section_model(self) -> type[object]:
        from provision.gcp.plan import GcpSection

        return GcpSection

    async def open_session(self, plan: PlanView, connection: Connection) -> TargetSession:
        from provision.gcp.session import open_session

        return await open_session(plan, connection)

    def commands(self) -> Sequence[Command]:
        return (Command("roles", roles, plan=PlanUse.OPTIONAL, confirms=True), Command("upload", upload),
                Command("search", search))

    def gc_places(self) -> GcPlaces:
        return gc_places


TARGET = GcpTarget()
