"""The Azure target as the registry sees it: its plan section, its sessions, and its command-line surface
(`verify` and what `provision gc` takes) declared as data. Nothing heavy is imported here: the SDKs and the
implementations load when a command runs, so `provision --help` stays fast."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

from provision.core.commands import Checks, Command, CommandCall, GcCall, Option
from provision.core.target import Connection, GcPlaces, PlanView, Target, TargetSession

if TYPE_CHECKING:
    from provision.core.gc import Inventory


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
        return (Command("verify", verify),)

    def gc_places(self) -> GcPlaces:
        return gc_places


TARGET = AzureTarget()
