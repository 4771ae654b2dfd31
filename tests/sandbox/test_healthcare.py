"""Microsoft.HealthcareApis 2024-03-31 workspaces and DICOM services, as the facts file describes them."""

from __future__ import annotations

import time
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.mgmt.healthcareapis.models import CorsConfiguration, DicomService, Workspace

from provision.sandbox import SandboxInfo
from provision.sandbox.azure.arm import ArmError
from provision.sandbox.azure.health_data_services import (
    validate_cors,
    validate_dicom_name,
    validate_identity,
    validate_workspace_name,
)

API = "api-version=2024-03-31"
EMPTY_CORS = {"origins": [], "headers": [], "methods": [], "maxAge": None, "allowCredentials": False}


def ws_path(info: SandboxInfo, rg: str = "rg-hc", ws: str = "wshc") -> str:
    sub = info.subscription_id
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.HealthcareApis/workspaces/{ws}"


@pytest.fixture
def workspace(azure: Any) -> str:
    azure.resources.resource_groups.create_or_update("rg-hc", {"location": "westus2"})
    azure.healthcare.workspaces.begin_create_or_update("rg-hc", "wshc", Workspace(location="westus2")).result()
    return "wshc"


@pytest.fixture
def auth(arm_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {arm_token}"}


def test_workspace_put_is_synchronous_201(azure: Any, http: Any, info: SandboxInfo, auth: dict[str, str]) -> None:
    azure.resources.resource_groups.create_or_update("rg-hc", {"location": "westus2"})
    response = http.put(f"{ws_path(info)}?{API}", json={"location": "westus2", "properties": {}}, headers=auth)
    assert response.status_code == 201
    assert "azure-asyncoperation" not in response.headers and "location" not in response.headers
    body = response.json()
    assert {"id", "name", "type", "etag", "location", "tags", "properties"} <= set(body)
    assert body["properties"] == {"privateEndpointConnections": [], "publicNetworkAccess": "Enabled",
                                  "provisioningState": "Succeeded"}
    assert response.headers["etag"] == body["etag"]
    again = http.put(f"{ws_path(info)}?{API}", json={"location": "westus2", "tags": {"a": "1"}}, headers=auth)
    assert again.status_code == 200 and again.json()["tags"] == {"a": "1"}
    assert again.json()["etag"] != body["etag"]
    assert azure.healthcare.workspaces.get("rg-hc", "wshc").properties.provisioning_state == "Succeeded"


def test_dicom_create_goes_creating_to_succeeded(azure: Any, workspace: str, info: SandboxInfo,
                                                 sandbox_control: Any) -> None:
    poller = azure.healthcare.dicom_services.begin_create_or_update(
        "rg-hc", workspace, "dicom1", DicomService(location="westus2"))
    # the poller polls in a background thread: it may already have seen the operation's "Running"
    assert poller.status() in ("InProgress", "Running")
    early = azure.healthcare.dicom_services.get("rg-hc", workspace, "dicom1")
    assert (early.provisioning_state, early.service_url) == ("Creating", "")
    dicom = poller.result()
    assert dicom.provisioning_state == "Succeeded"
    assert dicom.service_url == f"{info.url}/dicom/{workspace}-dicom1"
    assert dicom.name == f"{workspace}/dicom1"
    assert dicom.type == "Microsoft.HealthcareApis/workspaces/dicomservices"
    assert dicom.authentication_configuration.authority == f"{info.url}/{info.tenant_id}/"
    assert dicom.authentication_configuration.audiences == [
        "https://dicom.healthcareapis.azure.com", "https://dicom.healthcareapis.azure.com/"]
    polls = [e for e in sandbox_control.log() if "/operationresults/" in e["path"]]
    assert polls and all(e["status"] == 200 for e in polls)


def test_dicom_put_wire_shape_and_operation_status(azure: Any, workspace: str, http: Any, info: SandboxInfo,
                                                   auth: dict[str, str]) -> None:
    url = f"{ws_path(info)}/dicomservices/dicom2?{API}"
    response = http.put(url, json={"location": "westus2", "properties": {}}, headers=auth)
    assert response.status_code == 201
    assert "location" not in response.headers and "retry-after" not in response.headers
    operation = response.headers["azure-asyncoperation"]
    assert operation.startswith(f"{info.url}/subscriptions/{info.subscription_id}/providers/"
                                "Microsoft.HealthcareApis/locations/westus2/operationresults/")
    assert operation.endswith("?api-version=2024-03-31")
    props = response.json()["properties"]
    assert (props["provisioningState"], props["serviceUrl"]) == ("Creating", "")
    assert props["corsConfiguration"] == EMPTY_CORS
    running = http.get(operation, headers=auth).json()
    assert running["status"] == "Running" and set(running) == {"id", "name", "status", "startTime"}
    time.sleep(0.35)
    done = http.get(operation, headers=auth).json()
    assert done["status"] == "Succeeded"
    final = http.get(url, headers=auth).json()
    assert final["properties"]["serviceUrl"] == f"{info.url}/dicom/{workspace}-dicom2"


def test_full_put_update_is_a_long_running_operation(azure: Any, workspace: str) -> None:
    ds = azure.healthcare.dicom_services
    created = ds.begin_create_or_update("rg-hc", workspace, "dicom3", DicomService(
        location="westus2", tags={"owner": "provision"},
        enable_data_partitions=True,
        cors_configuration=CorsConfiguration(origins=["https://viewer.example.com"], headers=["*"],
                                             methods=["GET", "OPTIONS"], max_age=600))).result()
    assert created.cors_configuration.origins == ["https://viewer.example.com"]
    created.cors_configuration.origins = ["https://viewer.example.com", "http://localhost:3000"]
    poller = ds.begin_create_or_update("rg-hc", workspace, "dicom3", created)  # GET, modify, full PUT
    during = ds.get("rg-hc", workspace, "dicom3")
    assert during.provisioning_state == "Updating"
    assert during.service_url  # stays while updating
    with pytest.raises(ResourceExistsError) as err:  # another write while the update runs
        ds.begin_create_or_update("rg-hc", workspace, "dicom3", created)
    assert err.value.status_code == 409
    updated = poller.result()
    assert updated.cors_configuration.origins == ["https://viewer.example.com", "http://localhost:3000"]
    assert updated.tags == {"owner": "provision"} and updated.enable_data_partitions is True


def test_full_put_must_carry_immutable_properties(azure: Any, workspace: str) -> None:
    ds = azure.healthcare.dicom_services
    ds.begin_create_or_update("rg-hc", workspace, "dicom4",
                              DicomService(location="westus2", enable_data_partitions=True)).result()
    with pytest.raises(HttpResponseError) as err:  # a PUT with only the CORS would turn partitions off
        ds.begin_create_or_update("rg-hc", workspace, "dicom4", DicomService(
            location="westus2", cors_configuration=CorsConfiguration(origins=["*"])))
    assert (err.value.status_code, err.value.error.code) == (400, "BadRequest")
    assert "enableDataPartitions" in err.value.error.message


def test_put_without_cors_resets_it(azure: Any, workspace: str) -> None:
    ds = azure.healthcare.dicom_services
    ds.begin_create_or_update("rg-hc", workspace, "dicom5", DicomService(
        location="westus2", cors_configuration=CorsConfiguration(origins=["*"]))).result()
    after = ds.begin_create_or_update("rg-hc", workspace, "dicom5", DicomService(location="westus2")).result()
    assert after.cors_configuration.origins == []
    assert after.cors_configuration.max_age is None


def test_patch_changes_tags_only_and_is_synchronous(azure: Any, workspace: str, http: Any, info: SandboxInfo,
                                                    auth: dict[str, str]) -> None:
    ds = azure.healthcare.dicom_services
    before = ds.begin_create_or_update("rg-hc", workspace, "dicom6", DicomService(location="westus2")).result()
    url = f"{ws_path(info)}/dicomservices/dicom6?{API}"
    response = http.patch(url, json={"tags": {"env": "test"},
                                     "properties": {"corsConfiguration": {"origins": ["*"]}}}, headers=auth)
    assert response.status_code == 200
    assert "azure-asyncoperation" not in response.headers
    body = response.json()
    assert body["tags"] == {"env": "test"}
    assert body["properties"]["corsConfiguration"]["origins"] == []  # PATCH cannot change CORS
    assert body["etag"] != before.etag
    assert body["properties"]["provisioningState"] == "Succeeded"


def test_delete_has_both_headers_then_the_resource_is_gone(azure: Any, workspace: str, http: Any,
                                                           info: SandboxInfo, auth: dict[str, str]) -> None:
    azure.healthcare.dicom_services.begin_create_or_update("rg-hc", workspace, "dicom7",
                                                           DicomService(location="westus2")).result()
    url = f"{ws_path(info)}/dicomservices/dicom7?{API}"
    response = http.delete(url, headers=auth)
    assert response.status_code == 202 and response.content == b""
    operation = response.headers["azure-asyncoperation"]
    assert response.headers["location"] == operation + "&operationResultResponseType=Location"
    assert http.get(url, headers=auth).json()["properties"]["provisioningState"] == "Deleting"
    assert http.get(response.headers["location"], headers=auth).status_code == 202
    time.sleep(0.35)
    assert http.get(operation, headers=auth).json()["status"] == "Succeeded"
    gone = http.get(url, headers=auth)
    assert gone.status_code == 404
    assert gone.json()["error"]["message"] == (
        f"The resource with identifier '{ws_path(info)}/dicomservices/dicom7' is not found.")
    assert http.delete(url, headers=auth).status_code == 204


def test_delete_through_the_sdk(azure: Any, workspace: str) -> None:
    ds = azure.healthcare.dicom_services
    ds.begin_create_or_update("rg-hc", workspace, "dicom8", DicomService(location="westus2")).result()
    ds.begin_delete(resource_group_name="rg-hc", workspace_name=workspace, dicom_service_name="dicom8").result()
    with pytest.raises(ResourceNotFoundError):
        ds.get("rg-hc", workspace, "dicom8")
    azure.healthcare.workspaces.begin_delete("rg-hc", workspace).result()
    with pytest.raises(ResourceNotFoundError) as err:
        azure.healthcare.workspaces.get("rg-hc", workspace)
    assert err.value.error.message.startswith(f"The Resource 'Microsoft.HealthcareApis/workspaces/{workspace}' "
                                              "under resource group 'rg-hc' was not found.")


def test_missing_workspace_gives_the_gateway_404(azure: Any, workspace: str) -> None:
    with pytest.raises(ResourceNotFoundError) as err:
        azure.healthcare.dicom_services.get("rg-hc", "nowhere", "dicom")
    assert err.value.error.code == "ResourceNotFound"
    assert "under resource group 'rg-hc' was not found" in err.value.error.message


def test_workspace_with_dicom_services_cannot_be_deleted(azure: Any, workspace: str) -> None:
    azure.healthcare.dicom_services.begin_create_or_update("rg-hc", workspace, "dicom9",
                                                           DicomService(location="westus2")).result()
    with pytest.raises(ResourceExistsError) as err:
        azure.healthcare.workspaces.begin_delete("rg-hc", workspace)
    assert err.value.status_code == 409 and "dicom9" in err.value.error.message


def test_system_assigned_identity_becomes_a_principal(azure: Any, workspace: str, info: SandboxInfo) -> None:
    from azure.mgmt.healthcareapis.models import ServiceManagedIdentityIdentity

    dicom = azure.healthcare.dicom_services.begin_create_or_update("rg-hc", workspace, "dicom10", DicomService(
        location="westus2", identity=ServiceManagedIdentityIdentity(type="SystemAssigned"))).result()
    assert dicom.identity.tenant_id == info.tenant_id
    assignment = azure.authorization.role_assignments.create(dicom.id, "5e1f3c4a-1d7e-4a8e-9f60-0a1b2c3d4e5f", {
        "role_definition_id": "/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7",
        "principal_id": dicom.identity.principal_id})
    assert assignment.principal_type == "ServicePrincipal"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"properties": {}}, "LocationRequired"),
        ({"location": "mars", "properties": {}}, "LocationNotAvailableForResourceType"),
        ({"location": "westus2", "properties": {"corsConfiguration": {"origins": ["https://a.example.com/"]}}},
         "BadRequest"),
        ({"location": "westus2", "properties": {"corsConfiguration": {"maxAge": 100000}}}, "BadRequest"),
        ({"location": "westus2", "properties": {"corsConfiguration": {"maxAge": "600"}}}, "InvalidRequestContent"),
        ({"location": "westus2", "identity": {"type": "Bogus"}}, "BadRequest"),
        ({"location": "westus2", "identity": {}}, "BadRequest"),
        ({"location": "westus2", "tags": {"a": 1}}, "InvalidRequestContent"),
        ([1, 2], "InvalidRequestContent"),
    ],
)
def test_dicom_put_validation(workspace: str, http: Any, info: SandboxInfo, auth: dict[str, str], body: Any,
                              code: str) -> None:
    response = http.put(f"{ws_path(info)}/dicomservices/badone?{API}", json=body, headers=auth)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == code


def test_names_are_validated(workspace: str, http: Any, info: SandboxInfo, auth: dict[str, str]) -> None:
    bad_ws = http.put(f"{ws_path(info, ws='has-hyphen')}?{API}", json={"location": "westus2"}, headers=auth)
    assert bad_ws.json()["error"]["code"] == "InvalidResourceName"
    bad_dicom = http.put(f"{ws_path(info)}/dicomservices/-x?{API}", json={"location": "westus2"}, headers=auth)
    assert bad_dicom.json()["error"]["code"] == "InvalidResourceName"


# --- the pure validators -------------------------------------------------------------------------------------

@pytest.mark.parametrize("origin", ["*", "https://viewer.example.com", "http://localhost:3000", "HTTPS://A.B"])
def test_cors_origin_accepted(origin: str) -> None:
    assert validate_cors({"origins": [origin]})["origins"] == [origin]


@pytest.mark.parametrize("origin", ["https://viewer.example.com/", "https://a.com/path", "ftp://a.com", "a.com",
                                    "https://*.example.com", "https://a.com:123456"])
def test_cors_origin_refused(origin: str) -> None:
    with pytest.raises(ArmError):
        validate_cors({"origins": [origin]})


@pytest.mark.parametrize(("max_age", "ok"), [(0, True), (99999, True), (-1, False), (100000, False),
                                             (True, False), (1.5, False), (None, True)])
def test_cors_max_age_range(max_age: Any, ok: bool) -> None:
    if ok:
        assert validate_cors({"maxAge": max_age})["maxAge"] == max_age
    else:
        with pytest.raises(ArmError):
            validate_cors({"maxAge": max_age})


def test_cors_defaults_match_the_service_echo() -> None:
    assert validate_cors(None) == EMPTY_CORS
    assert validate_cors({}) == EMPTY_CORS


@pytest.mark.parametrize(("value", "expected"), [
    (None, None),
    ({"type": "None"}, {"type": "None"}),
    ({"type": "systemassigned"}, {"type": "SystemAssigned"}),
    ({"type": "SystemAssigned, UserAssigned", "userAssignedIdentities": {"/x": {}}},
     {"type": "SystemAssigned,UserAssigned", "userAssignedIdentities": {"/x": {}}}),
])
def test_identity_normalised(value: Any, expected: Any) -> None:
    assert validate_identity(value) == expected


@pytest.mark.parametrize("value", [{}, {"type": "Magic"}, {"type": "UserAssigned"}, "SystemAssigned",
                                   {"type": "SystemAssigned", "userAssignedIdentities": {"/x": {}}}])
def test_identity_refused(value: Any) -> None:
    with pytest.raises(ArmError):
        validate_identity(value)


@pytest.mark.parametrize(("name", "ok"), [("abc", True), ("a" * 24, True), ("ab", False), ("a" * 25, False),
                                          ("ws-1", False), ("Upper", False)])
def test_workspace_names(name: str, ok: bool) -> None:
    if ok:
        validate_workspace_name(name)
    else:
        with pytest.raises(ArmError):
            validate_workspace_name(name)


@pytest.mark.parametrize(("name", "ok"), [("abc", True), ("a-b", True), ("a" * 24, True), ("a" * 25, False),
                                          ("-ab", False), ("ab-", False), ("ab", False), ("a_b", False)])
def test_dicom_names(name: str, ok: bool) -> None:
    if ok:
        validate_dicom_name(name)
    else:
        with pytest.raises(ArmError):
            validate_dicom_name(name)
