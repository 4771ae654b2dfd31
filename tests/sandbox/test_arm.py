"""ARM front door and Microsoft.Resources: api-version checks, resource groups, the Location-polled delete."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from provision.sandbox import SandboxInfo


def test_resource_group_lifecycle(azure: Any, sandbox_control: Any) -> None:
    rgs = azure.resources.resource_groups
    created = rgs.create_or_update("rg-life", {"location": "West US 2", "tags": {"owner": "provision"}})
    assert (created.location, created.tags, created.properties.provisioning_state) == (
        "westus2", {"owner": "provision"}, "Succeeded")
    assert rgs.check_existence("rg-life") is True
    assert rgs.check_existence("rg-other") is False
    rgs.create_or_update("rg-life", {"location": "westus2", "tags": {"owner": "me"}})
    assert rgs.get("RG-LIFE").tags == {"owner": "me"}  # names are case-insensitive
    rgs.update("rg-life", {"tags": {"a": "b"}})
    assert [g.name for g in rgs.list()] == ["rg-life"]
    statuses = [(e["method"], e["status"]) for e in sandbox_control.log() if e["path"].lower().endswith("/rg-life")]
    assert statuses[:2] == [("PUT", 201), ("HEAD", 204)]
    assert ("PUT", 200) in statuses
    rgs.begin_delete("rg-life").result()
    assert rgs.check_existence("rg-life") is False
    polls = [e for e in sandbox_control.log() if "/operationresults/" in e["path"]]
    assert {e["status"] for e in polls} <= {200, 202} and polls[-1]["status"] == 200


def test_resource_group_delete_cascades(azure: Any) -> None:
    from azure.mgmt.healthcareapis.models import DicomService, Workspace

    azure.resources.resource_groups.create_or_update("rg-cascade", {"location": "westus2"})
    azure.healthcare.workspaces.begin_create_or_update(
        "rg-cascade", "wscascade", Workspace(location="westus2")).result()
    azure.healthcare.dicom_services.begin_create_or_update(
        "rg-cascade", "wscascade", "dcm", DicomService(location="westus2")).result()
    poller = azure.resources.resource_groups.begin_delete("rg-cascade")
    assert azure.resources.resource_groups.get("rg-cascade").properties.provisioning_state == "Deleting"
    with pytest.raises(HttpResponseError) as err:  # writes into a group being deleted are refused
        azure.healthcare.workspaces.begin_create_or_update("rg-cascade", "wsother", Workspace(location="westus2"))
    assert err.value.error.code == "ResourceGroupBeingDeleted"
    poller.result()
    with pytest.raises(ResourceNotFoundError) as err:
        azure.healthcare.workspaces.get("rg-cascade", "wscascade")
    assert err.value.error.code == "ResourceGroupNotFound"


def test_resource_group_errors(azure: Any) -> None:
    rgs = azure.resources.resource_groups
    with pytest.raises(ResourceNotFoundError) as err:
        rgs.get("missing")
    assert err.value.error.code == "ResourceGroupNotFound"
    assert err.value.error.message == "Resource group 'missing' could not be found."
    with pytest.raises(HttpResponseError) as err:
        rgs.create_or_update("bad", {"location": "atlantis"})
    assert err.value.error.code == "LocationNotAvailableForResourceGroup"
    with pytest.raises(HttpResponseError) as err:
        rgs.create_or_update("bad.", {"location": "westus2"})
    assert err.value.status_code == 400
    rgs.create_or_update("rg-where", {"location": "westus2"})
    with pytest.raises(HttpResponseError) as err:
        rgs.create_or_update("rg-where", {"location": "eastus"})
    assert err.value.error.code == "InvalidResourceGroupLocation"


@pytest.mark.parametrize(
    ("query", "code"),
    [("", "MissingApiVersionParameter"), ("?api-version=1999-01-01", "InvalidApiVersionParameter")],
)
def test_api_version_is_checked(http: Any, info: SandboxInfo, arm_token: str, query: str, code: str) -> None:
    response = http.get(f"/subscriptions/{info.subscription_id}/resourcegroups/x{query}",
                        headers={"Authorization": f"Bearer {arm_token}"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert set(response.json()) == {"error"} and set(response.json()["error"]) == {"code", "message"}


def test_api_version_is_per_resource_type(http: Any, info: SandboxInfo, arm_token: str) -> None:
    auth = {"Authorization": f"Bearer {arm_token}"}
    base = f"/subscriptions/{info.subscription_id}/resourceGroups/rg/providers/Microsoft.HealthcareApis/workspaces/ws"
    response = http.get(base + "?api-version=2021-04-01", headers=auth)  # a Microsoft.Resources version
    assert response.json()["error"]["code"] == "InvalidApiVersionParameter"
    assert "'2024-03-31'" in response.json()["error"]["message"]


def test_unknown_subscription_and_types(http: Any, info: SandboxInfo, arm_token: str) -> None:
    auth = {"Authorization": f"Bearer {arm_token}"}
    other = http.get("/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups?api-version=2021-04-01",
                     headers=auth)
    assert (other.status_code, other.json()["error"]["code"]) == (404, "SubscriptionNotFound")
    unknown = http.get(f"/subscriptions/{info.subscription_id}/resourceGroups/rg/providers/Microsoft.Nope/things/x"
                       "?api-version=2020-01-01", headers=auth)
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "InvalidResourceNamespace")


def test_subscription_and_provider_registration(http: Any, info: SandboxInfo, arm_token: str) -> None:
    auth = {"Authorization": f"Bearer {arm_token}"}
    sub = http.get(f"/subscriptions/{info.subscription_id}?api-version=2022-12-01", headers=auth).json()
    assert (sub["subscriptionId"], sub["tenantId"], sub["state"]) == (info.subscription_id, info.tenant_id,
                                                                       "Enabled")
    provider = http.get(f"/subscriptions/{info.subscription_id}/providers/Microsoft.HealthcareApis"
                        "?api-version=2021-04-01", headers=auth).json()
    assert provider["registrationState"] == "Registered"
