"""The self-hosted Orthanc target as the registry sees it: its plan section, its sessions, and its commands
(`up`, `down`, `verify`, `share`, `shares list`, `shares revoke`) declared as data. Nothing heavy is imported
here: the implementations load when a command runs, so `provision --help` stays fast."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

from provision.core.commands import Checks, Command, CommandCall, Option
from provision.core.target import Connection, PlanView, Target, TargetSession
from provision.dicom.defaults import DEFAULT_CONCURRENCY
from provision.dicom.options import Concurrency, Limit, Modality, PatientId, StudyUid, UploadPaths

if TYPE_CHECKING:
    from provision.dicom.search import StudyList
    from provision.dicom.upload import UploadReport
    from provision.orthanc.shares import Revoked, SharedLink, ShareList
    from provision.orthanc.stack import StackReport


async def up(
    call: CommandCall,
    *,
    foreground: Annotated[bool, Option("Stay attached; Ctrl+C or SIGTERM stops Orthanc and nginx.")] = False,
) -> StackReport:
    """Start Orthanc and nginx on the applied files (Debian's packages), wait until both answer.

    Restarts Orthanc or reloads nginx when its files changed since it started; a second run changes nothing.
    Needs the admin password and the share signing key in the environment (the variables the plan names)."""
    from provision.orthanc import commands

    return await commands.up(call, foreground=foreground)


async def upload(call: CommandCall, *, paths: UploadPaths, concurrency: Concurrency = DEFAULT_CONCURRENCY,
                 ) -> UploadReport:
    """Upload DICOM files to the running Orthanc (STOW-RS through nginx, as the admin): only the instances it does
    not hold yet (Orthanc would store a second copy, so each study is asked first).

    Files that are not DICOM are reported and skipped. Exits 1 if any instance failed; running it again
    sends only what is still missing."""
    from provision.orthanc import data_commands

    return await data_commands.upload(call, paths=paths, concurrency=concurrency)


async def search(call: CommandCall, *, patient_id: PatientId = None, study_uid: StudyUid = None,
                 modality: Modality = None, limit: Limit = 100) -> StudyList:
    """Search the running Orthanc for studies (QIDO-RS, as the admin): a table, or JSON with --output json."""
    from provision.orthanc import data_commands

    return await data_commands.search(call, patient_id=patient_id, study_uid=study_uid, modality=modality,
                                      limit=limit)


async def down(call: CommandCall) -> StackReport:
    """Stop nginx and Orthanc of this plan (gracefully; the data and the share list stay)."""
    from provision.orthanc import commands

    return await commands.down(call)


async def verify(
    call: CommandCall,
    *,
    write_test: Annotated[bool, Option("Store a generated test study first (and delete it again).")] = False,
) -> Checks:
    """Check the running deployment as a viewer uses it: files as planned, cross-origin isolation, CORS
    preflights, and a share token that opens its study but nothing else (expired and tampered ones refused).

    Exits 0 only if every check passes."""
    from provision.orthanc import verify as checks

    return await checks.verify(call, write_test=write_test)


async def share(
    call: CommandCall,
    *,
    study: Annotated[list[str] | None, Option("StudyInstanceUID to share (repeatable).", metavar="UID")] = None,
    expires: Annotated[str | None, Option("Lifetime, e.g. 7d, 12h (default: orthanc.shares.lifetime).")] = None,
    note: Annotated[str, Option("Who or what the link is for (shown by `shares list`).")] = "",
    allow_upload: Annotated[bool, Option("Let the link also store new instances into its studies.")] = False,
) -> SharedLink:
    """Print a viewer link that opens exactly these studies, for a limited time.

    The studies must exist in the running Orthanc (checked as the admin before anything is signed). The link
    carries a signed token; only its id is recorded (for `shares list` and `shares revoke`)."""
    from provision.orthanc import commands

    return await commands.share(call, study=study or [], expires=expires, note=note, allow_upload=allow_upload)


async def shares_list(call: CommandCall) -> ShareList:
    """List the share links issued for this plan: id, status (active, expired, revoked), expiry, studies."""
    from provision.orthanc import commands

    return await commands.shares_list(call)


async def shares_revoke(
    call: CommandCall,
    *,
    id: Annotated[list[str] | None, Option("Share id to revoke (repeatable).", metavar="ID")] = None,
    study: Annotated[list[str] | None, Option("Revoke every share of this study (repeatable).",
                                              metavar="UID")] = None,
) -> Revoked:
    """Revoke share links: Orthanc refuses them from the next request on (no restart), and after restarts."""
    from provision.orthanc import commands

    return await commands.shares_revoke(call, ids=id or [], studies=study or [])


class OrthancTarget(Target):
    name = "orthanc"
    summary = "Self-hosted Orthanc (Debian) and OHIF behind nginx with HTTPS, CORS, COOP/COEP and share links."

    def section_model(self) -> type[object]:
        from provision.orthanc.plan import OrthancSection

        return OrthancSection

    async def open_session(self, plan: PlanView, connection: Connection) -> TargetSession:
        from provision.orthanc.session import open_session

        return await open_session(plan, connection)

    def commands(self) -> Sequence[Command]:
        return (
            Command("up", up),
            Command("down", down),
            Command("verify", verify),
            Command("share", share),
            Command("upload", upload),
            Command("search", search),
            Command("shares list", shares_list),
            Command("shares revoke", shares_revoke),
        )


TARGET = OrthancTarget()
