"""An `azure.access` entry deleted from the plan takes its access away: the plan's assignments carry its mark
(their description), `plan` lists the marked ones at the DICOM service and shows each one no longer declared as
a delete, `apply` deletes it, and `destroy` deletes it even after its entry is gone. Assignments without this
plan's mark (made in the portal, or by another environment) are never touched."""

from __future__ import annotations

import uuid
from typing import Any

from provision.azure import AzureSession
from provision.plan import parse_plan
from provision.sandbox.azure.directory import BOB_ID, DICOM_READERS_GROUP_ID

from .conftest import PLAYBOOKS

OHIF = PLAYBOOKS / "azure-ohif.yaml"
BOB = "azure.role_assignment[bob@contoso.onmicrosoft.com:DICOM Data Owner]"
READER_ROLE = "e89c7a3c-2f64-4fa1-a847-3e4c9ba4283a"  # DICOM Data Reader
OURS = "provision-plan=ohif-demo provision-env=default"


def with_bob() -> Any:
    """The OHIF playbook with one more entry: bob as DICOM Data Owner."""
    text = OHIF.read_text().replace(
        "  access:\n", "  access:\n    - user: bob@contoso.com\n      role: DICOM Data Owner\n", 1
    )
    return parse_plan(text, OHIF, env={})


def without_bob() -> Any:
    return parse_plan(OHIF.read_text(), OHIF, env={})


def _scope(azure: Any) -> str:
    return (
        f"/subscriptions/{azure.info.subscription_id}/resourceGroups/rg-ohif-demo/providers/"
        "Microsoft.HealthcareApis/workspaces/ohifws/dicomservices/ohif-dicom"
    )


def _grant_by_hand(azure: Any, principal: str, role: str, principal_type: str, description: str | None) -> Any:
    """An assignment made outside this plan (the portal, or another environment's run), at the plan's scope."""
    scope = _scope(azure)

    async def grant(session: AzureSession) -> None:
        from azure.mgmt.authorization.v2022_04_01 import models
        from azure.mgmt.authorization.v2022_04_01.aio import AuthorizationManagementClient

        async with AuthorizationManagementClient(
            session.credential, str(session.azure.subscription_id), base_url=session.cloud.arm,
            credential_scopes=[session.cloud.arm_scope], transport=session.transport,
        ) as client:
            await client.role_assignments.create(scope, str(uuid.uuid4()), models.RoleAssignmentCreateParameters(
                role_definition_id=f"/subscriptions/{azure.info.subscription_id}/providers/"
                                   f"Microsoft.Authorization/roleDefinitions/{role}",
                principal_id=principal, principal_type=principal_type, description=description,
            ))

    return grant


def _principals(azure: Any) -> set[tuple[str, str | None]]:
    return {(ra["principalId"], ra.get("description")) for ra in azure.control.assignments(_scope(azure))}


def test_a_user_removed_from_access_loses_the_role_and_nothing_else(azure: Any) -> None:
    azure.run(with_bob())
    assert (BOB_ID, OURS) in _principals(azure)
    # someone grants the readers group in the portal, and another environment grants bob a role of its own
    azure.run(with_bob(), "plan", inspect=_grant_by_hand(azure, DICOM_READERS_GROUP_ID, READER_ROLE, "Group", None))
    azure.run(with_bob(), "plan", inspect=_grant_by_hand(
        azure, BOB_ID, READER_ROLE, "User", "provision-plan=ohif-demo provision-env=other"))
    before = _principals(azure)

    planned = azure.run(without_bob(), "plan")

    assert planned.changes() == {BOB: "delete"}  # exactly one: neither hand-made assignment is listed
    assert planned.plan.has_changes
    assert planned.step(BOB).as_dict() == {"address": BOB, "action": "delete", "changes": [],
                                        "reason": "no longer in the plan"}

    applied = azure.run(without_bob())

    assert [step.resource.address for step in applied.outcome.done] == [BOB]
    assert _principals(azure) == before - {(BOB_ID, OURS)}
    assert (DICOM_READERS_GROUP_ID, None) in _principals(azure)
    assert (BOB_ID, "provision-plan=ohif-demo provision-env=other") in _principals(azure)
    azure.control.clear_log()
    assert azure.run(without_bob(), "plan").changes() == {}
    assert azure.run(without_bob()).outcome.done == []
    assert azure.control.writes() == []


def test_a_role_changed_in_the_plan_is_granted_anew_and_the_old_one_revoked(azure: Any) -> None:
    azure.run(with_bob())
    text = OHIF.read_text().replace(
        "  access:\n", "  access:\n    - user: bob@contoso.com\n      role: DICOM Data Reader\n", 1)
    reader = parse_plan(text, OHIF, env={})

    planned = azure.run(reader, "plan")

    assert planned.changes() == {BOB: "delete", "azure.role_assignment[bob@contoso.com:DICOM Data Reader]": "create"}
    azure.run(reader)
    bobs = [ra for ra in azure.control.assignments(_scope(azure)) if ra["principalId"] == BOB_ID]
    assert [ra["roleDefinition"] for ra in bobs] == [READER_ROLE]


def test_destroy_deletes_a_marked_assignment_whose_entry_was_removed(azure: Any) -> None:
    azure.run(with_bob())
    [bobs] = [ra for ra in azure.control.assignments(_scope(azure)) if ra["principalId"] == BOB_ID]
    azure.control.clear_log()

    planned = azure.run(without_bob(), "destroy")

    assert planned.step(BOB).action.kind == "delete"
    deletes = [e["path"].lower() for e in azure.control.writes() if e["method"] == "DELETE"]
    # the first delete sent, before its scope goes (the sandbox, like Azure, drops a deleted scope's assignments)
    assert deletes[0] == f"{_scope(azure)}/providers/microsoft.authorization/roleassignments/{bobs['name']}".lower()
    assert azure.control.assignments(_scope(azure)) == []


def test_a_redirect_uri_removed_from_the_plan_is_removed_from_the_app(azure: Any) -> None:
    text = OHIF.read_text().replace(
        "    # redirect_uris default", "    redirect_uris: [http://localhost:3000/callback, http://localhost:3000/old]\n"
        "    # redirect_uris default", 1)
    azure.run(parse_plan(text, OHIF, env={}))
    [app] = azure.control.apps("ohif-viewer")
    assert sorted(app["spa"]["redirectUris"]) == ["http://localhost:3000/callback", "http://localhost:3000/old"]

    planned = azure.run(without_bob(), "plan")

    assert planned.changes() == {"azure.app[ohif-viewer]": "update"}
    azure.run(without_bob())
    [app] = azure.control.apps("ohif-viewer")
    assert app["spa"]["redirectUris"] == ["http://localhost:3000/callback"]


def test_a_consent_scope_the_plan_does_not_declare_is_removed_from_its_grant(azure: Any) -> None:
    azure.run(without_bob())
    [principal] = [p for app in azure.control.apps("ohif-viewer")
                   for p in azure.control.service_principals(app["appId"])]
    [grant] = azure.control.grants(principal["id"])

    async def widen(session: AzureSession) -> None:
        await session.azure.graph.update_grant(grant["id"], "Dicom.ReadWrite user_impersonation")

    planned = azure.run(without_bob(), "plan", inspect=widen)

    assert planned.changes() == {"azure.admin_consent[ohif-viewer]": "update"}
    azure.run(without_bob())
    [grant] = azure.control.grants(principal["id"])
    assert grant["scope"].split() == ["Dicom.ReadWrite"]
