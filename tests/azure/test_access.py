"""Role assignments made outside the plan: found under any name, refused unless adopted, and a 409
RoleAssignmentExists (a read that raced a grant) is success once a list confirms it."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from provision.azure import AzureSession
from provision.azure.resources import RoleAssignment
from provision.core import ExecutionError

OHIF = "azure-ohif.yaml"
OWNER_ROLE = "58a3b984-7adf-4c20-983a-32417c86fbc8"
ALICE = "azure.role_assignment[alice@contoso.com:DICOM Data Owner]"


def _scope(azure: Any) -> str:
    return (
        f"/subscriptions/{azure.info.subscription_id}/resourceGroups/rg-ohif-demo/providers/"
        "Microsoft.HealthcareApis/workspaces/ohifws/dicomservices/ohif-dicom"
    )


def _regrant_by_hand(azure: Any) -> Any:
    """Replace the plan's assignment for alice by the same grant under a random name, without description."""
    scope = _scope(azure)

    async def regrant(session: AzureSession) -> None:
        from azure.mgmt.authorization.v2022_04_01 import models
        from azure.mgmt.authorization.v2022_04_01.aio import AuthorizationManagementClient

        async with AuthorizationManagementClient(
            session.credential, str(session.azure.subscription_id), base_url=session.cloud.arm,
            credential_scopes=[session.cloud.arm_scope], transport=session.transport,
        ) as client:
            [ours] = [ra async for ra in client.role_assignments.list_for_scope(scope)
                      if ra.principal_type == "User"]
            await client.role_assignments.delete(scope, str(ours.name))
            await client.role_assignments.create(scope, str(uuid.uuid4()), models.RoleAssignmentCreateParameters(
                role_definition_id=str(ours.role_definition_id), principal_id=str(ours.principal_id),
                principal_type="User",
            ))

    return regrant


def test_the_same_grant_made_by_hand_is_refused_then_adopted(azure: Any) -> None:
    plan = azure.playbook(OHIF)
    azure.run(plan)

    planned = azure.run(plan, "plan", inspect=_regrant_by_hand(azure))

    assert [step.resource.address for step in planned.plan.blocked] == [ALICE]
    with pytest.raises(ExecutionError, match="--adopt"):
        azure.run(plan)

    adopted = azure.run(plan, adopt=True)

    assert adopted.changes() == {ALICE: "update"}
    users = [ra for ra in azure.control.assignments(_scope(azure)) if ra["principalType"] == "User"]
    assert len(users) == 1  # the hand-made one, now described as the plan's; no second grant
    assert users[0]["description"] == "provision-plan=ohif-demo provision-env=default"
    assert azure.run(plan, "plan").changes() == {}


def test_role_assignment_exists_is_success_once_confirmed(azure: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = azure.playbook(OHIF)
    azure.run(plan)
    azure.run(plan, "plan", inspect=_regrant_by_hand(azure))
    # a read that missed the grant (as when it is made between our read and our PUT)
    real_read = RoleAssignment.read

    async def stale_read(self: RoleAssignment, ctx: Any) -> Any:
        return None if self.address == ALICE else await real_read(self, ctx)

    monkeypatch.setattr(RoleAssignment, "read", stale_read)
    azure.control.clear_log()

    result = azure.run(plan)

    assert result.changes() == {ALICE: "create"}
    puts = [e for e in azure.control.api_log() if e["method"] == "PUT"]
    assert [e["status"] for e in puts] == [409]  # RoleAssignmentExists, then confirmed by a list
    assert len([ra for ra in azure.control.assignments(_scope(azure)) if ra["roleDefinition"] == OWNER_ROLE]) == 2
