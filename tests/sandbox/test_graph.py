"""Microsoft Graph v1.0 through the real msgraph-sdk (and raw HTTP where the wire shape matters)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.models.application import Application
from msgraph.generated.models.o_auth2_permission_grant import OAuth2PermissionGrant
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.required_resource_access import RequiredResourceAccess
from msgraph.generated.models.resource_access import ResourceAccess
from msgraph.generated.models.service_principal import ServicePrincipal
from msgraph.generated.models.spa_application import SpaApplication
from msgraph.generated.models.web_application import WebApplication

from provision.sandbox import SandboxInfo
from provision.sandbox.azure.directory import ALICE_ID, BOB_ID, DICOM_APP_ID, DICOM_READERS_GROUP_ID, DICOM_SCOPE_ID

REDIRECTS = ["https://viewer.example.com/callback", "http://localhost:3000/callback", "https://b.example.com/cb"]


def create_if_missing() -> RequestConfiguration[Any]:
    config: RequestConfiguration[Any] = RequestConfiguration()
    config.headers.add("Prefer", "create-if-missing")
    return config


def viewer_app(name: str = "OHIF viewer") -> Application:
    return Application(
        display_name=name,
        sign_in_audience="AzureADMyOrg",
        spa=SpaApplication(redirect_uris=list(REDIRECTS)),
        required_resource_access=[RequiredResourceAccess(
            resource_app_id=DICOM_APP_ID,
            resource_access=[ResourceAccess(id=uuid.UUID(DICOM_SCOPE_ID), type="Scope")],
        )],
    )


def test_unique_name_upsert_201_then_204(graph: Any, sandbox_control: Any) -> None:
    async def scenario(client: Any) -> tuple[Any, Any, Any]:
        builder = client.applications_with_unique_name("ohif-viewer")
        created = await builder.patch(viewer_app(), create_if_missing())
        updated = await builder.patch(Application(display_name="OHIF viewer (renamed)"), create_if_missing())
        return created, updated, await builder.get()

    created, updated, current = graph(scenario)
    assert created is not None and created.unique_name == "ohif-viewer"
    assert updated is None  # 204: msgraph-sdk returns None, GET afterwards
    assert current.display_name == "OHIF viewer (renamed)"
    assert sorted(current.spa.redirect_uris) == sorted(REDIRECTS)  # the PATCH did not touch them
    statuses = [(e["method"], e["status"]) for e in sandbox_control.log() if "uniqueName" in e["path"]]
    assert statuses == [("PATCH", 201), ("PATCH", 204), ("GET", 200)]


def test_unique_name_patch_without_prefer_is_404(graph: Any) -> None:
    async def scenario(client: Any) -> None:
        await client.applications_with_unique_name("not-there").patch(Application(display_name="x"))

    with pytest.raises(ODataError) as err:
        graph(scenario)
    assert err.value.response_status_code == 404
    assert err.value.error.code == "Request_ResourceNotFound"


def test_post_application_defaults_and_lookup_by_app_id(graph: Any, http: Any, graph_token: str,
                                                        info: SandboxInfo) -> None:
    response = http.post("/v1.0/applications", json={"displayName": "plain"},
                         headers={"Authorization": f"Bearer {graph_token}"})
    assert response.status_code == 201
    assert response.headers["location"].startswith(f"{info.url}/v2/{info.tenant_id}/directoryObjects/")
    app = response.json()
    assert app["@odata.context"] == f"{info.url}/v1.0/$metadata#applications/$entity"
    assert app["signInAudience"] == "AzureADandPersonalMicrosoftAccount"
    assert app["api"]["requestedAccessTokenVersion"] == 2
    assert app["web"]["redirectUris"] == [] and app["spa"]["redirectUris"] == []
    assert app["publicClient"]["redirectUris"] == []
    assert app["web"]["implicitGrantSettings"] == {"enableAccessTokenIssuance": False, "enableIdTokenIssuance": False}

    async def scenario(client: Any) -> Any:
        from msgraph.generated.applications.applications_request_builder import ApplicationsRequestBuilder

        query = ApplicationsRequestBuilder.ApplicationsRequestBuilderGetQueryParameters(
            filter=f"appId eq '{app['appId']}'")
        return await client.applications.get(RequestConfiguration(query_parameters=query))

    found = graph(scenario)
    assert [a.id for a in found.value] == [app["id"]]


def test_post_applications_is_not_idempotent(graph: Any) -> None:
    async def scenario(client: Any) -> int:
        await client.applications.post(Application(display_name="dup"))
        await client.applications.post(Application(display_name="dup"))
        listed = await client.applications.get()
        return sum(1 for a in listed.value if a.display_name == "dup")

    assert graph(scenario) == 2


def test_arrays_come_back_in_another_order(http: Any, graph_token: str) -> None:
    auth = {"Authorization": f"Bearer {graph_token}"}
    body = {"displayName": "order", "spa": {"redirectUris": REDIRECTS},
            "requiredResourceAccess": [
                {"resourceAppId": DICOM_APP_ID, "resourceAccess": [
                    {"id": DICOM_SCOPE_ID, "type": "Scope"}, {"id": "e1fe6dd8-ba31-4d61-89e7-88639da4683d",
                                                              "type": "Scope"}]},
                {"resourceAppId": "00000003-0000-0000-c000-000000000000", "resourceAccess": [
                    {"id": "e1fe6dd8-ba31-4d61-89e7-88639da4683d", "type": "Scope"}]}]}
    app = http.post("/v1.0/applications", json=body, headers=auth).json()
    assert app["spa"]["redirectUris"] != REDIRECTS
    assert sorted(app["spa"]["redirectUris"]) == sorted(REDIRECTS)
    assert [r["resourceAppId"] for r in app["requiredResourceAccess"]] != [
        r["resourceAppId"] for r in body["requiredResourceAccess"]]
    again = http.get(f"/v1.0/applications/{app['id']}", headers=auth).json()
    assert again["spa"]["redirectUris"] == app["spa"]["redirectUris"]  # stable between reads


def test_patch_merges_complex_values_and_validates(http: Any, graph_token: str) -> None:
    auth = {"Authorization": f"Bearer {graph_token}"}
    app = http.post("/v1.0/applications", json={"displayName": "implicit", "web": {
        "redirectUris": ["https://v.example.com/"], "implicitGrantSettings": {"enableIdTokenIssuance": True}}},
        headers=auth).json()
    url = f"/v1.0/applications/{app['id']}"
    assert http.patch(url, json={"web": {"redirectUris": ["https://w.example.com/"]}}, headers=auth).status_code == 204
    web = http.get(url, headers=auth).json()["web"]
    assert web["redirectUris"] == ["https://w.example.com/"]
    assert web["implicitGrantSettings"]["enableIdTokenIssuance"] is True  # untouched by the PATCH
    bad = http.patch(url, json={"spa": {"redirectUris": ["http://viewer.example.com/cb"]}}, headers=auth)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "Request_BadRequest"
    unknown = http.patch(url, json={"colour": "blue"}, headers=auth)
    assert "does not exist as a declared property" in unknown.json()["error"]["message"]
    assert http.delete(url, headers=auth).status_code == 204
    gone = http.get(url, headers=auth)
    assert gone.status_code == 404
    assert set(gone.json()["error"]) == {"code", "message", "innerError"}


def test_dicom_service_principal_is_there_by_default(graph: Any) -> None:
    async def scenario(client: Any) -> Any:
        return await client.service_principals_with_app_id(DICOM_APP_ID).get()

    sp = graph(scenario)
    assert sp.display_name == "Azure API for DICOM"
    assert [(str(s.id), s.value) for s in sp.oauth2_permission_scopes] == [(DICOM_SCOPE_ID, "Dicom.ReadWrite")]


def test_dicom_service_principal_can_be_absent_then_created(graph: Any, sandbox_control: Any) -> None:
    sandbox_control.configure(dicom_sp=False)

    async def scenario(client: Any) -> tuple[int, Any, int]:
        try:
            await client.service_principals_with_app_id(DICOM_APP_ID).get()
            missing = 200
        except ODataError as err:
            missing = int(err.response_status_code or 0)
        created = await client.service_principals.post(ServicePrincipal(app_id=DICOM_APP_ID))
        try:
            await client.service_principals.post(ServicePrincipal(app_id=DICOM_APP_ID))
            duplicate = 201
        except ODataError as err:
            duplicate = int(err.response_status_code or 0)
            assert err.error.code == "Request_MultipleObjectsWithSameKeyValue"
        return missing, created, duplicate

    missing, created, duplicate = graph(scenario)
    assert missing == 404
    assert [s.value for s in created.oauth2_permission_scopes] == ["Dicom.ReadWrite"]
    assert duplicate == 409


def test_service_principal_for_own_app_and_grants(graph: Any) -> None:
    async def scenario(client: Any) -> dict[str, Any]:
        app = await client.applications_with_unique_name("granted").patch(viewer_app("granted"),
                                                                           create_if_missing())
        sp = await client.service_principals.post(ServicePrincipal(app_id=app.app_id))
        dicom = await client.service_principals_with_app_id(DICOM_APP_ID).get()
        grant = await client.oauth2_permission_grants.post(OAuth2PermissionGrant(
            client_id=sp.id, consent_type="AllPrincipals", resource_id=dicom.id, scope="Dicom.ReadWrite"))
        from msgraph.generated.oauth2_permission_grants.oauth2_permission_grants_request_builder import (
            Oauth2PermissionGrantsRequestBuilder,
        )

        query = Oauth2PermissionGrantsRequestBuilder.Oauth2PermissionGrantsRequestBuilderGetQueryParameters(
            filter=f"clientId eq '{sp.id}'")
        listed = await client.oauth2_permission_grants.get(RequestConfiguration(query_parameters=query))
        await client.oauth2_permission_grants.by_o_auth2_permission_grant_id(grant.id).patch(
            OAuth2PermissionGrant(scope="Dicom.ReadWrite user_impersonation"))
        patched = await client.oauth2_permission_grants.by_o_auth2_permission_grant_id(grant.id).get()
        try:
            await client.oauth2_permission_grants.post(OAuth2PermissionGrant(
                client_id=sp.id, consent_type="AllPrincipals", resource_id=dicom.id, scope="Dicom.ReadWrite"))
            dup = None
        except ODataError as err:
            dup = (err.response_status_code, err.error.code, err.error.message)
        await client.oauth2_permission_grants.by_o_auth2_permission_grant_id(grant.id).delete()
        after = await client.oauth2_permission_grants.get(RequestConfiguration(query_parameters=query))
        return {"sp": sp, "app": app, "grant": grant, "listed": listed, "patched": patched, "dup": dup,
                "after": after}

    r = graph(scenario)
    assert r["sp"].app_display_name == "granted" and r["sp"].app_id == r["app"].app_id
    assert [g.id for g in r["listed"].value] == [r["grant"].id]
    assert r["patched"].scope == "Dicom.ReadWrite user_impersonation"
    assert r["dup"] == (409, "Request_MultipleObjectsWithSameKeyValue", "Permission entry already exists.")
    assert r["after"].value == []


def test_service_principal_for_unknown_app_is_refused(graph: Any) -> None:
    async def scenario(client: Any) -> None:
        await client.service_principals.post(ServicePrincipal(app_id="0a0a0a0a-0000-4000-8000-000000000000"))

    with pytest.raises(ODataError) as err:
        graph(scenario)
    assert err.value.response_status_code == 400


def test_users_by_id_upn_and_mail(graph: Any) -> None:
    async def scenario(client: Any) -> tuple[Any, Any, Any]:
        from msgraph.generated.users.users_request_builder import UsersRequestBuilder

        by_upn = await client.users.by_user_id("alice@contoso.onmicrosoft.com").get()
        by_id = await client.users.by_user_id(BOB_ID).get()
        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(filter="mail eq 'BOB@contoso.com'")
        by_mail = await client.users.get(RequestConfiguration(query_parameters=query))
        return by_upn, by_id, by_mail

    by_upn, by_id, by_mail = graph(scenario)
    assert (by_upn.id, by_upn.mail) == (ALICE_ID, "alice@contoso.com")
    assert by_id.user_principal_name == "bob@contoso.onmicrosoft.com"
    assert [u.id for u in by_mail.value] == [BOB_ID]


def test_seeded_group(graph: Any) -> None:
    async def scenario(client: Any) -> Any:
        return await client.groups.by_group_id(DICOM_READERS_GROUP_ID).get()

    assert graph(scenario).display_name == "DICOM Readers"


def test_unsupported_filter_and_select(http: Any, graph_token: str) -> None:
    auth = {"Authorization": f"Bearer {graph_token}"}
    bad = http.get("/v1.0/users", params={"$filter": "jobTitle eq 'x'"}, headers=auth)
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "Request_UnsupportedQuery")
    picked = http.get(f"/v1.0/users/{ALICE_ID}", params={"$select": "mail"}, headers=auth).json()
    assert set(picked) == {"@odata.context", "id", "mail"}
    paged = http.get("/v1.0/users", params={"$top": "1"}, headers=auth).json()
    assert len(paged["value"]) == 1 and "$skiptoken" in paged["@odata.nextLink"]


def test_graph_throttling_is_retried_by_msgraph(graph: Any, sandbox_control: Any) -> None:
    sandbox_control.add_fault(429, method="GET", path_regex=r"^/v1\.0/users/", retry_after=1, count=1)

    async def scenario(client: Any) -> Any:
        return await client.users.by_user_id(ALICE_ID).get()

    assert graph(scenario).id == ALICE_ID
    statuses = [e["status"] for e in sandbox_control.log() if e["path"].startswith("/v1.0/users/")]
    assert statuses == [429, 200]


def test_graph_application_create_redirect_validation(graph: Any) -> None:
    async def scenario(client: Any) -> None:
        await client.applications.post(Application(
            display_name="bad", web=WebApplication(redirect_uris=["http://insecure.example.com/"])))

    with pytest.raises(ODataError) as err:
        graph(scenario)
    assert err.value.error.code == "Request_BadRequest"
