"""Plain-HTTP helpers the end-to-end tests share: ARM calls as the sandbox's service principal, and a
user's sign-in through the viewer app (authorization code + PKCE, as the browser does it)."""

from __future__ import annotations

import base64
import hashlib
import secrets
import ssl
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from provision.sandbox import SandboxInfo

HEALTHCARE_API = "2024-03-31"
AUTHORIZATION_API = "2022-04-01"
DICOM_AUDIENCE = "https://dicom.healthcareapis.azure.com"


def client(info: SandboxInfo, **kwargs: Any) -> httpx.Client:
    return httpx.Client(verify=ssl.create_default_context(cafile=info.ca_bundle), timeout=30, **kwargs)


def app_token(info: SandboxInfo, resource: str) -> str:
    """A client-credentials token of the sandbox's own service principal."""
    with client(info) as http:
        response = http.post(
            f"{info.url}/{info.tenant_id}/oauth2/v2.0/token",
            data={"grant_type": "client_credentials", "client_id": info.client_id,
                  "client_secret": info.client_secret, "scope": f"{resource}/.default"},
        )
        response.raise_for_status()
        return str(response.json()["access_token"])


class Arm:
    """Out-of-band changes to the sandbox's Azure, as someone clicking in the portal would make them."""

    def __init__(self, info: SandboxInfo) -> None:
        self.info = info
        self.http = client(info, base_url=info.url,
                           headers={"Authorization": f"Bearer {app_token(info, 'https://management.azure.com')}"})

    def close(self) -> None:
        self.http.close()

    def dicom_id(self, rg: str, ws: str, name: str) -> str:
        return (f"/subscriptions/{self.info.subscription_id}/resourceGroups/{rg}/providers/"
                f"Microsoft.HealthcareApis/workspaces/{ws}/dicomservices/{name}")

    def get(self, rid: str, api: str = HEALTHCARE_API) -> dict[str, Any]:
        response = self.http.get(rid, params={"api-version": api})
        response.raise_for_status()
        return dict(response.json())

    def set_cors_origins(self, dicom_id: str, origins: list[str]) -> None:
        """GET, change the origins, full PUT (the only way to change CORS), wait for Succeeded."""
        body = self.get(dicom_id)
        body["properties"]["corsConfiguration"]["origins"] = origins
        put = {k: body[k] for k in ("location", "tags", "identity", "properties") if k in body}
        self.http.put(dicom_id, params={"api-version": HEALTHCARE_API}, json=put).raise_for_status()
        import time

        deadline = time.monotonic() + 30
        while self.get(dicom_id)["properties"]["provisioningState"] != "Succeeded":
            if time.monotonic() > deadline:
                raise TimeoutError("the DICOM service did not return to Succeeded")
            time.sleep(0.05)

    def role_assignments(self, scope: str) -> list[dict[str, Any]]:
        response = self.http.get(f"{scope}/providers/Microsoft.Authorization/roleAssignments",
                                 params={"api-version": AUTHORIZATION_API})
        response.raise_for_status()
        return list(response.json()["value"])

    def delete_role_assignments(self, scope: str, principal_id: str) -> int:
        deleted = 0
        for assignment in self.role_assignments(scope):
            if assignment["properties"]["principalId"].lower() == principal_id.lower():
                self.http.delete(assignment["id"], params={"api-version": AUTHORIZATION_API}).raise_for_status()
                deleted += 1
        return deleted

    def assign(self, scope: str, principal_id: str, role_guid: str, principal_type: str = "User") -> None:
        import uuid

        name = uuid.uuid5(uuid.NAMESPACE_URL, f"test|{scope}|{principal_id}|{role_guid}")
        definition = (f"/subscriptions/{self.info.subscription_id}/providers/Microsoft.Authorization/"
                      f"roleDefinitions/{role_guid}")
        self.http.put(f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}",
                      params={"api-version": AUTHORIZATION_API},
                      json={"properties": {"roleDefinitionId": definition, "principalId": principal_id,
                                           "principalType": principal_type}}).raise_for_status()


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authority_base(oidc: dict[str, Any]) -> str:
    """`https://host/{tenant}` from the OHIF `authority` (`https://host/{tenant}/v2.0/`)."""
    return str(oidc["authority"]).rstrip("/").removesuffix("/v2.0")


def user_token(info: SandboxInfo, oidc: dict[str, Any], user: str, *, origin: str | None = None) -> dict[str, Any]:
    """Sign `user` in through the viewer app with the OHIF `oidc` settings; the token response."""
    verifier, challenge = pkce_pair()
    origin = origin or "{0.scheme}://{0.netloc}".format(urlsplit(oidc["redirect_uri"]))
    base = authority_base(oidc)
    with client(info) as http:
        response = http.get(f"{base}/oauth2/v2.0/authorize", params={
            "client_id": oidc["client_id"], "response_type": "code", "redirect_uri": oidc["redirect_uri"],
            "scope": oidc["scope"], "state": "test", "code_challenge": challenge, "code_challenge_method": "S256",
            "login_hint": user,
        })
        if response.status_code != 302:
            raise AssertionError(f"authorize answered {response.status_code}: {response.text[:500]}")
        query = parse_qs(urlsplit(response.headers["location"]).query)
        if "code" not in query:
            raise AssertionError(f"authorize redirected with {query}")
        token = http.post(f"{base}/oauth2/v2.0/token", headers={"Origin": origin}, data={
            "grant_type": "authorization_code", "client_id": oidc["client_id"], "code": query["code"][0],
            "redirect_uri": oidc["redirect_uri"], "code_verifier": verifier,
        })
        token.raise_for_status()
        return dict(token.json())
