"""Interactive sign-in in the sandbox's Entra ID, driven over HTTP the way a browser would, against the app
registration `provision azure apply` made: the happy path and each wall Entra ID puts up for a viewer app."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from conftest import Deployment
from e2e_http import DICOM_AUDIENCE, app_token, authority_base, client, pkce_pair, user_token

from provision.sandbox.azure.directory import ALICE_ID
from provision.sandbox.azure.signin import half_hash, pkce_matches, redirect_platform, split_scopes


def test_pkce_s256() -> None:
    verifier, challenge = pkce_pair()
    assert pkce_matches(verifier, challenge, "S256")
    assert not pkce_matches(verifier + "x", challenge, "S256")
    assert pkce_matches("plain-value", "plain-value", None)


def test_redirect_platform_prefers_spa() -> None:
    app = {"spa": {"redirectUris": ["http://a/cb"]}, "web": {"redirectUris": ["http://a/cb", "http://b/cb"]}}
    assert redirect_platform(app, "http://a/cb") == "spa"
    assert redirect_platform(app, "http://b/cb") == "web"
    assert redirect_platform(app, "http://a/cb/") is None  # exact match only


def test_split_scopes() -> None:
    assert split_scopes("openid https://dicom.healthcareapis.azure.com/Dicom.ReadWrite offline_access") == (
        ["openid", "offline_access"], {"https://dicom.healthcareapis.azure.com": ["Dicom.ReadWrite"]})
    assert split_scopes("openid User.Read") == (["openid"], {"https://graph.microsoft.com": ["User.Read"]})


def test_half_hash_is_oidc_at_hash() -> None:
    # OpenID Connect Core 3.1.3.6: left-most 128 bits of SHA-256, base64url without padding
    assert half_hash("dNZX1hEZ9wBCzNL40Upu646bdzQA") == "wfgvmE9VxjAudsl9lc6TqA"


@pytest.fixture(scope="module")
def http(deployment: Deployment) -> Iterator[httpx.Client]:
    with client(deployment.info, follow_redirects=False) as c:
        yield c


def authorize(http: httpx.Client, deployment: Deployment, **overrides: str) -> httpx.Response:
    oidc = deployment.oidc
    _, challenge = pkce_pair()
    params = {"client_id": oidc["client_id"], "response_type": "code", "redirect_uri": oidc["redirect_uri"],
              "scope": oidc["scope"], "state": "st", "code_challenge": challenge, "code_challenge_method": "S256",
              "login_hint": "alice@contoso.com", **overrides}
    tenant = overrides.pop("tenant", None)
    base = authority_base(oidc) if tenant is None else f"{deployment.info.url}/{tenant}"
    params.pop("tenant", None)
    return http.get(f"{base}/oauth2/v2.0/authorize", params={k: v for k, v in params.items() if v != ""})


def redirected(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text[:300]
    location = urlsplit(response.headers["location"])
    return {k: v[0] for k, v in parse_qs(location.fragment or location.query).items()}


def test_discovery_is_what_oidc_client_ts_needs(deployment: Deployment, http: httpx.Client) -> None:
    authority = deployment.oidc["authority"]
    response = http.get(f"{authority}.well-known/openid-configuration", headers={"Origin": deployment.viewer_url})
    assert response.headers["access-control-allow-origin"] == "*"
    doc = response.json()
    base = authority_base(deployment.oidc)
    assert doc["issuer"] == authority.rstrip("/")
    assert doc["authorization_endpoint"] == f"{base}/oauth2/v2.0/authorize"
    assert doc["token_endpoint"] == f"{base}/oauth2/v2.0/token"
    keys = http.get(doc["jwks_uri"], headers={"Origin": deployment.viewer_url})
    assert keys.headers["access-control-allow-origin"] == "*" and keys.json()["keys"]


def test_code_flow_with_pkce(deployment: Deployment, http: httpx.Client) -> None:
    tokens = user_token(deployment.info, deployment.oidc, "alice@contoso.com")
    assert tokens["token_type"] == "Bearer" and tokens["scope"] == f"{DICOM_AUDIENCE}/Dicom.ReadWrite"
    doc = http.get(f"{deployment.oidc['authority']}.well-known/openid-configuration").json()
    keys = jwt.PyJWKSet.from_dict(http.get(doc["jwks_uri"]).json())

    def key(token: str) -> Any:
        return keys[jwt.get_unverified_header(token)["kid"]].key

    id_token = jwt.decode(tokens["id_token"], key(tokens["id_token"]), algorithms=["RS256"],
                          audience=deployment.oidc["client_id"], issuer=doc["issuer"])
    assert id_token["oid"] == ALICE_ID and id_token["preferred_username"] == "alice@contoso.onmicrosoft.com"
    assert id_token["tid"] == deployment.info.tenant_id
    access = jwt.decode(tokens["access_token"], key(tokens["access_token"]), algorithms=["RS256"],
                        audience=DICOM_AUDIENCE)
    assert access["oid"] == ALICE_ID and access["scp"] == "Dicom.ReadWrite"
    assert access["appid"] == deployment.oidc["client_id"]
    refreshed = http.post(f"{authority_base(deployment.oidc)}/oauth2/v2.0/token",
                          headers={"Origin": deployment.viewer_url},
                          data={"grant_type": "refresh_token", "client_id": deployment.oidc["client_id"],
                                "refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200 and refreshed.json()["access_token"]


def test_token_response_allows_the_viewer_origin(deployment: Deployment, http: httpx.Client) -> None:
    verifier, challenge = pkce_pair()
    code = redirected(authorize(http, deployment, code_challenge=challenge))["code"]
    base = authority_base(deployment.oidc)
    form = {"grant_type": "authorization_code", "client_id": deployment.oidc["client_id"], "code": code,
            "redirect_uri": deployment.oidc["redirect_uri"], "code_verifier": verifier}
    same_origin = http.post(f"{base}/oauth2/v2.0/token", data=form)
    assert same_origin.status_code == 400 and "AADSTS9002327" in same_origin.json()["error_description"]
    redeemed = http.post(f"{base}/oauth2/v2.0/token", data=form, headers={"Origin": deployment.viewer_url})
    assert redeemed.status_code == 200
    assert redeemed.headers["access-control-allow-origin"] == deployment.viewer_url
    again = http.post(f"{base}/oauth2/v2.0/token", data=form, headers={"Origin": deployment.viewer_url})
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"  # a code is redeemed once


def test_pkce_verifier_must_match(deployment: Deployment, http: httpx.Client) -> None:
    _, challenge = pkce_pair()
    code = redirected(authorize(http, deployment, code_challenge=challenge))["code"]
    response = http.post(f"{authority_base(deployment.oidc)}/oauth2/v2.0/token",
                         headers={"Origin": deployment.viewer_url},
                         data={"grant_type": "authorization_code", "client_id": deployment.oidc["client_id"],
                               "code": code, "redirect_uri": deployment.oidc["redirect_uri"],
                               "code_verifier": pkce_pair()[0]})
    assert response.status_code == 400 and "AADSTS501481" in response.json()["error_description"]
    assert response.headers["access-control-allow-origin"] == deployment.viewer_url  # readable by the viewer


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"redirect_uri": "http://127.0.0.1:1/callback"}, 50011),
        ({"client_id": "00000000-0000-0000-0000-000000000001"}, 700016),
        ({"login_hint": "nobody@contoso.com"}, 50034),
    ],
)
def test_error_pages(deployment: Deployment, http: httpx.Client, overrides: dict[str, str], code: int) -> None:
    response = authorize(http, deployment, **overrides)
    assert response.status_code == 400
    assert f"AADSTS{code}" in response.text and "trouble signing you in" in response.text


def test_implicit_flow_needs_implicit_grant(deployment: Deployment, http: httpx.Client) -> None:
    fields = redirected(authorize(http, deployment, response_type="id_token token", nonce="n1"))
    assert fields["error"] == "unsupported_response_type" and "AADSTS700054" in fields["error_description"]
    assert fields["state"] == "st"


def test_implicit_flow_on_a_web_redirect(deployment: Deployment, http: httpx.Client) -> None:
    graph = client(deployment.info, base_url=f"{deployment.info.url}/v1.0",
                   headers={"Authorization": f"Bearer {app_token(deployment.info, 'https://graph.microsoft.com')}"})
    oidc = deployment.oidc
    app_path = "/applications(uniqueName='ohif-viewer')"
    try:
        graph.patch(app_path, json={"web": {"redirectUris": [oidc["redirect_uri"]], "implicitGrantSettings": {
            "enableIdTokenIssuance": True, "enableAccessTokenIssuance": True}}, "spa": {"redirectUris": []}}
        ).raise_for_status()
        fields = redirected(authorize(http, deployment, response_type="id_token token", nonce="n2"))
        claims = jwt.decode(fields["id_token"], options={"verify_signature": False})
        assert claims["nonce"] == "n2" and claims["at_hash"]
        access = jwt.decode(fields["access_token"], options={"verify_signature": False})
        assert access["aud"] == DICOM_AUDIENCE and access["oid"] == ALICE_ID
        # a code for a web redirect URI is not redeemable from a browser
        verifier, challenge = pkce_pair()
        code = redirected(authorize(http, deployment, code_challenge=challenge))["code"]
        response = http.post(f"{authority_base(oidc)}/oauth2/v2.0/token", headers={"Origin": deployment.viewer_url},
                             data={"grant_type": "authorization_code", "client_id": oidc["client_id"], "code": code,
                                   "redirect_uri": oidc["redirect_uri"], "code_verifier": verifier})
        assert "AADSTS9002326" in response.json()["error_description"]
        assert "access-control-allow-origin" not in response.headers
    finally:
        graph.close()
        deployment.apply()


def test_consent_is_required(deployment: Deployment, http: httpx.Client) -> None:
    token = app_token(deployment.info, "https://graph.microsoft.com")
    with client(deployment.info, base_url=f"{deployment.info.url}/v1.0",
                headers={"Authorization": f"Bearer {token}"}) as graph:
        app_sp = graph.get(f"/servicePrincipals(appId='{deployment.oidc['client_id']}')").json()
        grants = graph.get("/oauth2PermissionGrants", params={"$filter": f"clientId eq '{app_sp['id']}'"}).json()
        assert grants["value"]
        try:
            for grant in grants["value"]:
                graph.delete(f"/oauth2PermissionGrants/{grant['id']}").raise_for_status()
            response = authorize(http, deployment)
            assert response.status_code == 400 and "AADSTS65001" in response.text
            silent = redirected(authorize(http, deployment, prompt="none"))
            assert silent["error"] == "consent_required"
            # sign-in alone (no DICOM scope) needs no consent: the DICOM service then refuses the Graph token
            fields = redirected(authorize(http, deployment, scope="openid"))
            assert "code" in fields
        finally:
            deployment.apply()
    assert "code" in redirected(authorize(http, deployment))


def test_single_tenant_app_refuses_common(deployment: Deployment, http: httpx.Client) -> None:
    assert "code" in redirected(authorize(http, deployment, tenant="organizations"))  # the plan's audience
    token = app_token(deployment.info, "https://graph.microsoft.com")
    with client(deployment.info, base_url=f"{deployment.info.url}/v1.0",
                headers={"Authorization": f"Bearer {token}"}) as graph:
        try:
            graph.patch("/applications(uniqueName='ohif-viewer')",
                        json={"signInAudience": "AzureADMyOrg"}).raise_for_status()
            fields = redirected(authorize(http, deployment, tenant="common"))
            assert "AADSTS50194" in fields["error_description"]
        finally:
            deployment.apply()


def test_account_page_session_and_silent_sign_in(deployment: Deployment) -> None:
    with client(deployment.info, follow_redirects=False) as browser:
        assert redirected(authorize(browser, deployment, login_hint="", prompt="none"))["error"] == "login_required"
        page = authorize(browser, deployment, login_hint="")
        assert page.status_code == 200 and "Pick an account" in page.text
        assert "alice@contoso.onmicrosoft.com" in page.text and "bob@contoso.onmicrosoft.com" in page.text
        link = page.text.split('class="account" href="')[1].split('"')[0].replace("&amp;", "&")
        chosen = browser.get(deployment.info.url + link)  # one click, no password
        assert "code" in redirected(chosen)
        silent = redirected(authorize(browser, deployment, login_hint="", prompt="none"))
        assert "code" in silent and silent["state"] == "st"


def test_sandbox_session_cookie_is_not_a_token(deployment: Deployment, http: httpx.Client) -> None:
    response = authorize(http, deployment)
    cookie = response.cookies.get("sandbox_session")
    assert cookie is not None
    claims: dict[str, Any] = json.loads(jwt.api_jws.decode_complete(cookie, options={"verify_signature": False})[
        "payload"])
    assert claims["aud"] == "urn:provision-sandbox:session"
    dicom = http.get(f"{deployment.dicomweb_root}/studies", headers={"Authorization": f"Bearer {cookie}"})
    assert dicom.status_code == 401
