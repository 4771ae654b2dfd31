"""Entra ID: azure-identity gets tokens from the sandbox unmodified; ARM and Graph check them like Azure does."""

from __future__ import annotations

import re
from typing import Any

import jwt
import pytest
from azure.core.exceptions import ClientAuthenticationError

from provision.sandbox import SandboxInfo
from provision.sandbox.azure.entra import TenantConvertor

from .conftest import ARM_SCOPE, GRAPH_SCOPE, make_credential, token


def claims(raw: str) -> dict[str, Any]:
    return dict(jwt.decode(raw, options={"verify_signature": False}))


def test_azure_identity_token_is_accepted_by_arm_and_graph(azure: Any, graph: Any, info: SandboxInfo) -> None:
    arm = azure.credential.get_token(ARM_SCOPE)
    assert claims(arm.token)["aud"] == "https://management.azure.com"
    assert azure.resources.resource_groups.check_existence("nothing-here") is False  # ARM accepted the token

    async def me(client: Any) -> Any:
        return await client.organization.get()

    org = graph(me)
    assert org.value[0].id == info.tenant_id


def test_token_claims_reflect_the_request(azure: Any, info: SandboxInfo) -> None:
    graph_claims = claims(azure.credential.get_token(GRAPH_SCOPE).token)
    assert graph_claims["aud"] == "https://graph.microsoft.com"
    assert graph_claims["tid"] == info.tenant_id
    assert graph_claims["appid"] == info.client_id
    assert "Application.ReadWrite.All" in graph_claims["roles"]
    arm_claims = claims(azure.credential.get_token(ARM_SCOPE).token)
    assert arm_claims["oid"] == graph_claims["oid"]
    assert "roles" not in arm_claims
    assert arm_claims["exp"] - arm_claims["iat"] == 3599


def test_tokens_verify_against_the_published_jwks(http: Any, info: SandboxInfo) -> None:
    config = http.get(f"/{info.tenant_id}/v2.0/.well-known/openid-configuration").json()
    assert config["token_endpoint"] == f"{info.url}/{info.tenant_id}/oauth2/v2.0/token"
    assert config["issuer"] == f"{info.url}/{info.tenant_id}/v2.0"
    jwks = jwt.PyJWKClient(config["jwks_uri"], ssl_context=__import__("ssl").create_default_context(
        cafile=info.ca_bundle))
    raw = token(http, info)
    key = jwks.get_signing_key_from_jwt(raw)
    decoded = jwt.decode(raw, key.key, algorithms=["RS256"], audience="https://management.azure.com",
                         issuer=config["issuer"])
    assert decoded["tid"] == info.tenant_id


def test_token_response_shape(http: Any, info: SandboxInfo) -> None:
    response = http.post(f"/{info.tenant_id}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": info.client_id, "client_secret": info.client_secret,
        "scope": "https://management.azure.com//.default"})
    assert response.status_code == 200
    assert response.headers["cache-control"].startswith("no-store")
    body = response.json()
    assert set(body) == {"token_type", "expires_in", "ext_expires_in", "access_token"}
    assert (body["token_type"], body["expires_in"], body["ext_expires_in"]) == ("Bearer", 3599, 3599)
    assert claims(body["access_token"])["aud"] == "https://management.azure.com/"  # scope X/.default -> aud X


def test_wrong_secret_is_refused(info: SandboxInfo) -> None:
    with pytest.raises(ClientAuthenticationError) as err:
        make_credential(info, secret="not-the-secret").get_token(ARM_SCOPE)
    assert "AADSTS7000215" in str(err.value)


def test_wrong_secret_body_on_the_wire(http: Any, info: SandboxInfo) -> None:
    response = http.post(f"/{info.tenant_id}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": info.client_id, "client_secret": "nope",
        "scope": ARM_SCOPE})
    assert response.status_code == 401
    body = response.json()
    assert body["error"] == "invalid_client"
    assert body["error_codes"] == [7000215]
    assert body["error_description"].startswith("AADSTS7000215: Invalid client secret provided.")
    assert {"timestamp", "trace_id", "correlation_id", "error_uri"} <= set(body)


@pytest.mark.parametrize(
    ("form", "status", "error", "code"),
    [
        ({"scope": "openid"}, 400, "invalid_scope", 1002012),
        ({"scope": "https://nowhere.example.com/.default"}, 400, "invalid_resource", 500011),
        ({"grant_type": "password"}, 400, "unsupported_grant_type", 70003),
        ({"client_id": "00000000-0000-0000-0000-000000000001"}, 400, "unauthorized_client", 700016),
    ],
)
def test_token_request_errors(http: Any, info: SandboxInfo, form: dict[str, str], status: int, error: str,
                              code: int) -> None:
    data = {"grant_type": "client_credentials", "client_id": info.client_id, "client_secret": info.client_secret,
            "scope": ARM_SCOPE, **form}
    response = http.post(f"/{info.tenant_id}/oauth2/v2.0/token", data=data)
    assert response.status_code == status
    assert (response.json()["error"], response.json()["error_codes"]) == (error, [code])


def test_unknown_tenant(http: Any) -> None:
    response = http.get("/11111111-2222-3333-4444-555555555555/v2.0/.well-known/openid-configuration")
    assert response.status_code == 400
    assert response.json()["error_codes"] == [90002]


@pytest.mark.parametrize(
    ("segment", "is_tenant"),
    [
        ("11111111-2222-3333-4444-555555555555", True),
        ("11111111-2222-3333-4444-55555555555A", True),
        ("common", True),
        ("Organizations", True),
        ("consumers", True),
        ("contoso.onmicrosoft.com", True),
        ("xn--bcher-kva.example", True),
        ("google", False),  # Google's /google/oauth2/token shares the shape of Entra's v1 token path
        ("v1.0", False),  # Microsoft Graph's root: a dot, but no domain name
        ("11111111-2222-3333-4444", False),
        ("_sandbox", False),
        ("", False),
    ],
)
def test_tenant_segment(segment: str, is_tenant: bool) -> None:
    assert (re.fullmatch(TenantConvertor.regex, segment) is not None) is is_tenant


def test_a_segment_that_cannot_be_a_tenant_is_not_entras(http: Any) -> None:
    assert http.post("/google/oauth2/v2.0/token", data={"grant_type": "client_credentials"}).status_code == 404


def test_tenant_domain_and_instance_discovery(http: Any, info: SandboxInfo) -> None:
    by_domain = http.get("/contoso.onmicrosoft.com/v2.0/.well-known/openid-configuration").json()
    assert by_domain["token_endpoint"] == f"{info.url}/{info.tenant_id}/oauth2/v2.0/token"
    discovery = http.get("/common/discovery/instance", params={"api-version": "1.1"}).json()
    assert discovery["tenant_discovery_endpoint"].startswith(info.url)


def test_dicom_audience_needs_the_dicom_service_principal(http: Any, info: SandboxInfo, sandbox_control: Any) -> None:
    assert claims(token(http, info, "https://dicom.healthcareapis.azure.com"))["aud"] == (
        "https://dicom.healthcareapis.azure.com")
    sandbox_control.configure(dicom_sp=False)
    response = http.post(f"/{info.tenant_id}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": info.client_id, "client_secret": info.client_secret,
        "scope": "https://dicom.healthcareapis.azure.com/.default"})
    assert response.json()["error_codes"] == [500011]


def test_arm_refuses_missing_and_wrong_audience_tokens(http: Any, info: SandboxInfo, graph_token: str) -> None:
    url = f"/subscriptions/{info.subscription_id}/resourcegroups?api-version=2021-04-01"
    missing = http.get(url)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "AuthenticationFailed"
    assert 'error="invalid_token"' in missing.headers["www-authenticate"]
    wrong = http.get(url, headers={"Authorization": f"Bearer {graph_token}"})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "InvalidAuthenticationTokenAudience"
    garbage = http.get(url, headers={"Authorization": "Bearer abc.def.ghi"})
    assert garbage.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_arm_accepts_audience_with_trailing_slash(http: Any, info: SandboxInfo) -> None:
    raw = token(http, info, "https://management.azure.com/")
    assert claims(raw)["aud"] == "https://management.azure.com/"
    response = http.get(f"/subscriptions/{info.subscription_id}?api-version=2022-12-01",
                        headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 200
    assert response.json()["tenantId"] == info.tenant_id


def test_graph_refuses_missing_and_arm_tokens(http: Any, arm_token: str) -> None:
    missing = http.get("/v1.0/applications")
    assert missing.status_code == 401
    error = missing.json()["error"]
    assert (error["code"], error["message"]) == ("InvalidAuthenticationToken", "Access token is empty.")
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}
    wrong = http.get("/v1.0/applications", headers={"Authorization": f"Bearer {arm_token}"})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["message"] == "Access token validation failure. Invalid audience."
