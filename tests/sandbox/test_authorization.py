"""Microsoft.Authorization 2022-04-01: built-in role definitions and role assignments, through the real SDK."""

from __future__ import annotations

import time
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from provision.sandbox import SandboxInfo
from provision.sandbox.azure.authorization import DICOM_DATA_OWNER, DICOM_DATA_READER, OWNER, assignment_name
from provision.sandbox.azure.directory import ALICE_ID, BOB_ID, DICOM_READERS_GROUP_ID

ROLE_IDS = {
    "Owner": OWNER,
    "Contributor": "b24988ac-6180-42a0-ab88-20f7382dd24c",
    "Reader": "acdd72a7-3385-48ef-bd42-f606fba81ae7",
    "DICOM Data Owner": "58a3b984-7adf-4c20-983a-32417c86fbc8",
    "DICOM Data Reader": "e89c7a3c-2f64-4fa1-a847-3e4c9ba4283a",
}


def role_id(azure: Any, guid: str) -> str:
    return f"/subscriptions/{azure.sub}/providers/Microsoft.Authorization/roleDefinitions/{guid}"


@pytest.fixture
def scope(azure: Any) -> str:
    azure.resources.resource_groups.create_or_update("rg-rbac", {"location": "westus2"})
    return f"/subscriptions/{azure.sub}/resourceGroups/rg-rbac"


@pytest.mark.parametrize(("name", "guid"), list(ROLE_IDS.items()))
def test_builtin_roles_by_name_and_id(azure: Any, name: str, guid: str) -> None:
    sub_scope = f"/subscriptions/{azure.sub}"
    found = list(azure.authorization.role_definitions.list(sub_scope, filter=f"roleName eq '{name.upper()}'"))
    assert [r.name for r in found] == [guid]
    assert found[0].id == role_id(azure, guid)
    assert found[0].role_type == "BuiltInRole"
    assert azure.authorization.role_definitions.get(sub_scope, guid).role_name == name


def test_unknown_role_definition(azure: Any) -> None:
    with pytest.raises(ResourceNotFoundError) as err:
        azure.authorization.role_definitions.get(f"/subscriptions/{azure.sub}", "00000000-0000-0000-0000-000000000000")
    assert err.value.error.code == "RoleDefinitionDoesNotExist"


def test_assignment_create_fills_in_azure_fields(azure: Any, scope: str, info: SandboxInfo, http: Any,
                                                 arm_token: str) -> None:
    name = assignment_name(scope, ALICE_ID, DICOM_DATA_READER)
    url = f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}?api-version=2022-04-01"
    response = http.put(url, headers={"Authorization": f"Bearer {arm_token}"}, json={
        "properties": {"roleDefinitionId": role_id(azure, DICOM_DATA_READER), "principalId": ALICE_ID}})
    assert response.status_code == 201
    props = response.json()["properties"]
    assert props["principalType"] == "User"  # filled in
    assert props["scope"] == scope
    assert props["roleDefinitionId"] == role_id(azure, DICOM_DATA_READER)
    assert (props["createdBy"], props["condition"], props["conditionVersion"]) == (None, None, None)
    assert props["updatedBy"] and props["createdOn"] and props["updatedOn"]
    again = azure.authorization.role_assignments.get(scope, name)
    assert again.created_by == props["updatedBy"]
    assert again.id == f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"


def test_same_assignment_under_another_name_is_a_conflict(azure: Any, scope: str) -> None:
    ras = azure.authorization.role_assignments
    params = {"role_definition_id": role_id(azure, DICOM_DATA_OWNER), "principal_id": BOB_ID, "principal_type": "User"}
    first = ras.create(scope, assignment_name(scope, BOB_ID, DICOM_DATA_OWNER), params)
    assert ras.create(scope, first.name, params).name == first.name  # identical re-PUT is fine
    with pytest.raises(ResourceExistsError) as err:
        ras.create(scope, "c8d1e2f3-0000-4000-8000-000000000001", params)
    assert err.value.error.code == "RoleAssignmentExists"
    assert first.name.replace("-", "") in err.value.error.message
    with pytest.raises(HttpResponseError) as err:  # an assignment cannot be re-pointed
        ras.create(scope, first.name, {**params, "principal_id": ALICE_ID})
    assert err.value.error.code == "RoleAssignmentUpdateNotPermitted"


def test_unknown_principal_is_not_found(azure: Any, scope: str) -> None:
    with pytest.raises(HttpResponseError) as err:
        azure.authorization.role_assignments.create(scope, "c8d1e2f3-0000-4000-8000-000000000002", {
            "role_definition_id": role_id(azure, DICOM_DATA_READER),
            "principal_id": "0f0f0f0f-0000-4000-8000-000000000000"})
    assert (err.value.status_code, err.value.error.code) == (400, "PrincipalNotFound")
    assert "replication delay" in err.value.error.message


def test_young_principal_is_not_found_until_replicated(azure: Any, scope: str, graph: Any,
                                                       sandbox_control: Any) -> None:
    from msgraph.generated.models.application import Application
    from msgraph.generated.models.service_principal import ServicePrincipal

    sandbox_control.configure(principal_delay_seconds=0.6)

    async def new_principal(client: Any) -> str:
        app = await client.applications.post(Application(display_name="fresh-app"))
        sp = await client.service_principals.post(ServicePrincipal(app_id=app.app_id))
        return str(sp.id)

    principal = graph(new_principal)
    params = {"role_definition_id": role_id(azure, DICOM_DATA_READER), "principal_id": principal}
    name = assignment_name(scope, principal, DICOM_DATA_READER)
    with pytest.raises(HttpResponseError) as err:
        azure.authorization.role_assignments.create(scope, name, params)
    assert err.value.error.code == "PrincipalNotFound"
    # Naming the principal type skips the directory look-up, as Azure documents...
    typed = azure.authorization.role_assignments.create(
        scope, assignment_name(scope, principal, ROLE_IDS["Reader"]),
        {**params, "role_definition_id": role_id(azure, ROLE_IDS["Reader"]), "principal_type": "ServicePrincipal"})
    assert typed.principal_type == "ServicePrincipal"
    # ...unless the sandbox is told to be strict.
    sandbox_control.configure(principal_delay_strict=True)
    with pytest.raises(HttpResponseError):
        azure.authorization.role_assignments.create(scope, name, {**params, "principal_type": "ServicePrincipal"})
    time.sleep(0.6)
    assert azure.authorization.role_assignments.create(scope, name, params).principal_type == "ServicePrincipal"


def test_wrong_principal_type(azure: Any, scope: str) -> None:
    with pytest.raises(HttpResponseError) as err:
        azure.authorization.role_assignments.create(scope, "c8d1e2f3-0000-4000-8000-000000000003", {
            "role_definition_id": role_id(azure, DICOM_DATA_READER), "principal_id": DICOM_READERS_GROUP_ID,
            "principal_type": "User"})
    assert err.value.error.code == "UnmatchedPrincipalType"


@pytest.mark.parametrize(("suffix", "code"), [
    ("/resourceGroups/nope", "ResourceGroupNotFound"),
    ("/resourceGroups/rg-rbac/providers/Microsoft.HealthcareApis/workspaces/nows", "ResourceNotFound"),
])
def test_scope_must_exist(azure: Any, scope: str, suffix: str, code: str) -> None:
    with pytest.raises(ResourceNotFoundError) as err:
        azure.authorization.role_assignments.create(f"/subscriptions/{azure.sub}{suffix}",
                                                    "c8d1e2f3-0000-4000-8000-000000000004", {
            "role_definition_id": role_id(azure, DICOM_DATA_READER), "principal_id": ALICE_ID})
    assert err.value.error.code == code


def test_invalid_assignment_requests(azure: Any, scope: str) -> None:
    ras = azure.authorization.role_assignments
    good = {"role_definition_id": role_id(azure, DICOM_DATA_READER), "principal_id": ALICE_ID}
    with pytest.raises(HttpResponseError) as err:
        ras.create(scope, "not-a-guid", good)
    assert err.value.error.code == "InvalidRoleAssignmentId"
    with pytest.raises(HttpResponseError) as err:
        ras.create(scope, "c8d1e2f3-0000-4000-8000-000000000005",
                   {**good, "role_definition_id": role_id(azure, "00000000-0000-0000-0000-0000000000aa")})
    assert err.value.error.code == "RoleDefinitionDoesNotExist"


def test_list_for_scope_filters(azure: Any, scope: str) -> None:
    from azure.mgmt.healthcareapis.models import Workspace

    ras = azure.authorization.role_assignments
    ws = azure.healthcare.workspaces.begin_create_or_update("rg-rbac", "wsrbac", Workspace(location="westus2")).result()
    sub_scope = f"/subscriptions/{azure.sub}"
    for where, who in ((sub_scope, ALICE_ID), (scope, BOB_ID), (ws.id, ALICE_ID)):
        ras.create(where, assignment_name(where, who, DICOM_DATA_READER),
                   {"role_definition_id": role_id(azure, DICOM_DATA_READER), "principal_id": who})
    everything = {a.scope for a in ras.list_for_scope(scope)}
    assert everything == {sub_scope, scope, ws.id}  # above, at and below
    assert {a.scope for a in ras.list_for_scope(scope, filter="atScope()")} == {sub_scope, scope}
    alice = {a.scope for a in ras.list_for_scope(scope, filter=f"principalId eq '{ALICE_ID}'")}
    assert alice == {sub_scope, ws.id}


def test_delete_answers_200_then_204(azure: Any, scope: str, sandbox_control: Any) -> None:
    ras = azure.authorization.role_assignments
    name = assignment_name(scope, ALICE_ID, OWNER)
    ras.create(scope, name, {"role_definition_id": role_id(azure, OWNER), "principal_id": ALICE_ID})
    deleted = ras.delete(scope, name)
    assert deleted is not None and deleted.name == name
    assert ras.delete(scope, name) is None
    assert [e["status"] for e in sandbox_control.log() if e["method"] == "DELETE"] == [200, 204]
    with pytest.raises(ResourceNotFoundError) as err:
        ras.get(scope, name)
    assert err.value.error.code == "RoleAssignmentNotFound"


def test_deleting_a_resource_removes_its_assignments(azure: Any, scope: str) -> None:
    ras = azure.authorization.role_assignments
    name = assignment_name(scope, ALICE_ID, DICOM_DATA_OWNER)
    ras.create(scope, name, {"role_definition_id": role_id(azure, DICOM_DATA_OWNER), "principal_id": ALICE_ID})
    azure.resources.resource_groups.begin_delete("rg-rbac").result()
    assert list(ras.list_for_scope(f"/subscriptions/{azure.sub}")) == []
