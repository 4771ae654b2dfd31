"""`provision azure verify PLAN`: does the live setup (Azure or the sandbox) work for the viewer the plan declares?

State checks come from the engine's plan (one read of every resource, nothing changed): the app registration
(redirect URIs on the right platform, the DICOM permission, tenant-wide consent) and each declared role
assignment. Live checks then talk to the services the way the viewer will: a token for the DICOM audience, a
CORS preflight from every declared viewer origin, QIDO on `/v2/studies`, and with `--write-test` a STOW of a
generated instance, its WADO metadata and frame, and its deletion. Every failed check says what to do.

Which identity the data-plane checks use: against the sandbox, the first declared user signs in through the
viewer app itself (authorization code + PKCE, as OHIF does; the sandbox trusts `login_hint`), which proves the
whole sign-in path too. Against Azure, where that would need a person at a browser, the identity the tool runs as
(azure-identity's chain); if it holds no DICOM data role the QIDO check says so and how to fix it.

`verify(call, write_test=...)` runs the command declared in `provision.azure.target`; it returns `Checks`, which
the CLI renders.
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from provision.core.commands import Check, Checks, CommandCall

if TYPE_CHECKING:
    import ssl

    import httpx

    from provision.azure.plan import AzureApp, AzureSection
    from provision.azure.session import AzureSession
    from provision.core.engine import Step
    from provision.core.target import Connection, PlanView

DICOM_SCOPE = "Dicom.ReadWrite"
REDIRECT_FIELDS = ("spa_redirect_uris", "web_redirect_uris", "id_token_issuance", "access_token_issuance")
TEST_STUDY_DESCRIPTION = "provision verify write test"
FRAME_ACCEPT = "multipart/related; type=application/octet-stream; transfer-syntax=*"


@dataclass
class DataToken:
    """The bearer token the data-plane checks use, and who it belongs to."""

    token: str
    who: str


# --- state checks (pure: from the engine's plan) ----------------------------------------------------------------

def _changes(step: Step, fields: Sequence[str]) -> list[str]:
    """The step's field differences under `fields`, as `path: live -> declared`."""
    shown = [c.as_dict() for c in step.action.changes if any(c.path == f or c.path.startswith(f + ".") for f in fields)]
    return [f"{c['path']}: {c['before']} -> {c['after']}" for c in shown]


def app_checks(app: AzureApp, steps: Mapping[str, Step], apply: str) -> list[Check]:
    """Redirect URIs, the DICOM permission and consent of the viewer's app registration."""
    step = steps.get(f"azure.app[{app.unique_name}]")
    platform = "spa" if app.flow == "spa" else "web (implicit grant)"
    uris = ", ".join(app.redirect_uris)
    if step is None or step.action.kind == "create":
        missing = f"app registration {app.unique_name} does not exist"
        return [Check("app registration", subject, False, missing, f"run `{apply}`")
                for subject in ("redirect URIs", "DICOM permission", "consent")]
    checks = []
    redirect_diff = _changes(step, REDIRECT_FIELDS)
    checks.append(Check(
        "app registration", "redirect URIs", not redirect_diff,
        f"{platform}: {uris}" if not redirect_diff else "; ".join(redirect_diff),
        "" if not redirect_diff else f"register {uris} on the {platform} platform: run `{apply}` "
        "(else sign-in fails with AADSTS50011)",
    ))
    permission_diff = _changes(step, ("permissions",))
    checks.append(Check(
        "app registration", "DICOM permission", not permission_diff,
        f"requests {DICOM_SCOPE} of Azure API for DICOM" if not permission_diff else "; ".join(permission_diff),
        "" if not permission_diff else f"add the delegated {DICOM_SCOPE} permission: run `{apply}`",
    ))
    if app.admin_consent:
        consent = steps.get(f"azure.admin_consent[{app.unique_name}]")
        ok = consent is not None and consent.action.kind == "no-op"
        checks.append(Check(
            "app registration", "consent", ok,
            f"tenant-wide consent for {DICOM_SCOPE}" if ok else
            f"no tenant-wide consent for {DICOM_SCOPE}: users meet 'Need admin approval' (AADSTS65001)",
            "" if ok else f"grant admin consent: run `{apply}`",
        ))
    else:
        checks.append(Check("app registration", "consent", True,
                            "not managed (admin_consent: false): each user is asked to consent"))
    return checks


def role_checks(steps: Mapping[str, Step], dicom_name: str, apply: str) -> list[Check]:
    """One line per declared role assignment: does the principal hold the role on the DICOM service?"""
    checks = []
    for address, step in steps.items():
        if not address.startswith("azure.role_assignment["):
            continue
        resource: Any = step.resource
        label = getattr(resource, "principal_label", resource.name)
        role = resource.name.rsplit(":", 1)[-1]
        ok = step.action.kind == "no-op"
        detail = f"{label} holds {role} on {dicom_name}" if ok else f"{label} does not hold {role} on {dicom_name}"
        if step.blocked:
            detail += f" ({step.blocked})"
        checks.append(Check("role", f"{label}: {role}", ok, detail, "" if ok else f"run `{apply}`"))
    return checks


# --- live checks --------------------------------------------------------------------------------------------------

def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


async def viewer_sign_in(http: httpx.AsyncClient, oidc: Mapping[str, Any], user: str) -> str:
    """Sign `user` in through the viewer app exactly as OHIF's `oidc[0]` would, trusting the sandbox's
    `login_hint` (no password page); returns the access token. Raises RuntimeError with the AADSTS message."""
    base = str(oidc["authority"]).rstrip("/").removesuffix("/v2.0")
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(str(oidc["redirect_uri"])))
    implicit = oidc["response_type"] != "code"
    verifier, challenge = _pkce()
    params = {"client_id": oidc["client_id"], "response_type": oidc["response_type"],
              "redirect_uri": oidc["redirect_uri"], "scope": oidc["scope"], "state": secrets.token_hex(8),
              "login_hint": user, "nonce": secrets.token_hex(8)}
    if not implicit:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    response = await http.get(f"{base}/oauth2/v2.0/authorize", params=params)
    if response.status_code != 302:
        raise RuntimeError(_aadsts(response.text) or f"authorize answered {response.status_code}")
    location = urlsplit(response.headers["location"])
    fields = {k: v[0] for k, v in parse_qs(location.fragment or location.query).items()}
    if "error" in fields:
        raise RuntimeError(fields.get("error_description", fields["error"]))
    if implicit:
        return fields["access_token"]
    token = await http.post(f"{base}/oauth2/v2.0/token", headers={"Origin": origin}, data={
        "grant_type": "authorization_code", "client_id": oidc["client_id"], "code": fields["code"],
        "redirect_uri": oidc["redirect_uri"], "code_verifier": verifier})
    body = token.json()
    if token.status_code != 200:
        raise RuntimeError(body.get("error_description", body.get("error", str(token.status_code))))
    if token.headers.get("access-control-allow-origin") not in (origin, "*"):
        raise RuntimeError(f"the token endpoint does not allow the viewer origin {origin} (CORS)")
    return str(body["access_token"])


def _aadsts(page: str) -> str:
    """The AADSTS message of an error page, as text (the page escapes quotes as `&#x27;`)."""
    start = page.find("AADSTS")
    return html.unescape(page[start:page.find("<", start)]) if start >= 0 else ""


async def preflight(http: httpx.AsyncClient, service_url: str, origin: str) -> Check:
    response = await http.options(f"{service_url}/v2/studies", headers={
        "Origin": origin, "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization,accept"})
    allowed_origin = response.headers.get("access-control-allow-origin")
    allowed_headers = response.headers.get("access-control-allow-headers", "").lower()
    ok = allowed_origin in (origin, "*") and ("authorization" in allowed_headers or allowed_headers == "*")
    if ok:
        return Check("CORS", origin, True, f"preflight {response.status_code}, allowed origin {allowed_origin}")
    return Check(
        "CORS", origin, False,
        f"preflight {response.status_code} without Access-Control-Allow-Origin: the browser blocks the viewer",
        f"add the origin {origin} to the DICOM service's CORS (azure.dicom.cors.origins) and run apply",
    )


async def qido(http: httpx.AsyncClient, service_url: str, token: DataToken) -> Check:
    response = await http.get(f"{service_url}/v2/studies", params={"limit": "1"},
                              headers={"Authorization": f"Bearer {token.token}", "Accept": "application/dicom+json"})
    subject = "/v2/studies"
    if response.status_code == 200:
        return Check("QIDO", subject, True, f"200 as {token.who}: the store holds studies")
    if response.status_code == 204:
        return Check("QIDO", subject, True, f"204 as {token.who}: the store is empty")
    if response.status_code == 403:
        return Check("QIDO", subject, False, f"403 as {token.who}: no DICOM data role on the service",
                     f"give {token.who} DICOM Data Reader or Owner on the service (azure.access), or run verify "
                     "as a principal that has one")
    if response.status_code == 401:
        challenge = response.headers.get("www-authenticate", "")
        return Check("QIDO", subject, False, f"401 as {token.who}: the token was refused {challenge}".strip(),
                     "check that the token's audience is the DICOM service's (azure.cloud) and the tenant matches")
    return Check("QIDO", subject, False, f"{response.status_code} as {token.who}: {response.text[:200]}",
                 "see the DICOM service's health in the portal")


async def write_round_trip(http: httpx.AsyncClient, service_url: str, token: DataToken) -> list[Check]:
    """STOW a generated instance, read its metadata and first frame back (WADO), then delete the study."""
    from provision.dicom.synthetic import multipart_related, synthetic_study

    (instance,) = synthetic_study(study_description=TEST_STUDY_DESCRIPTION, patient_id="PROVISION-VERIFY")
    auth = {"Authorization": f"Bearer {token.token}"}
    root = f"{service_url}/v2"
    body, content_type = multipart_related([instance.data])
    stored = await http.post(f"{root}/studies", content=body, headers={
        **auth, "Content-Type": content_type, "Accept": "application/dicom+json"})
    if stored.status_code != 200:
        fix = (f"give {token.who} DICOM Data Owner on the service" if stored.status_code == 403
               else "see the response")
        return [Check("STOW", "generated instance", False, f"{stored.status_code} as {token.who}: "
                      f"{stored.text[:200]}", fix)]
    checks = [Check("STOW", "generated instance", True, f"stored study {instance.study_uid}")]
    path = f"{root}/studies/{instance.study_uid}/series/{instance.series_uid}/instances/{instance.sop_instance_uid}"
    metadata = await http.get(f"{path}/metadata", headers={**auth, "Accept": "application/dicom+json"})
    frame = await http.get(f"{path}/frames/1", headers={**auth, "Accept": FRAME_ACCEPT})
    try:
        same = metadata.json()[0]["00080018"]["Value"][0] == instance.sop_instance_uid
    except (ValueError, LookupError, TypeError):
        same = False
    ok = metadata.status_code == 200 and same and frame.status_code == 200
    checks.append(Check("WADO", "metadata and frame", ok,
                        f"metadata {metadata.status_code}, frame {frame.status_code} ({len(frame.content)} bytes)",
                        "" if ok else "the service stored the instance but does not return it: see its health"))
    deleted = await http.delete(f"{root}/studies/{instance.study_uid}", headers=auth)
    checks.append(Check("cleanup", "delete test study", deleted.status_code == 204, f"DELETE {deleted.status_code}",
                        "" if deleted.status_code == 204 else
                        f"delete study {instance.study_uid} by hand (needs DICOM Data Owner)"))
    return checks


async def token_check(session: AzureSession) -> tuple[Check, DataToken | None]:
    from azure.core.exceptions import ClientAuthenticationError

    from provision.azure.credentials import token_claims

    audience = session.cloud.dicom_audience
    try:
        token = await session.credential.get_token(f"{audience}/.default")
    except ClientAuthenticationError as error:
        message = str(error.message).splitlines()[0]
        fix = ("the tenant lacks the Azure API for DICOM service principal: run apply (the plan creates it)"
               if "500011" in message else "check the credentials the tool signs in with")
        return Check("token", audience, False, message, fix), None
    claims = token_claims(token.token)
    who = f"the tool's identity (oid {claims.get('oid', '?')})"
    return Check("token", audience, True, f"issued to {who}"), DataToken(token.token, who)


def _origins(plan: PlanView, section: AzureSection) -> list[str]:
    from provision.ohif.config import viewer_origin

    cors = section.dicom.cors if section.dicom is not None else None
    declared = [o for o in (cors.origins or ()) if o != "*"] if cors is not None else []
    if not declared and plan.ohif.viewer_url:
        declared = [viewer_origin(str(plan.ohif.viewer_url))]
    return declared


def _first_user(section: AzureSection) -> str | None:
    return next((entry.user for entry in section.access if entry.principal_kind == "user"), None)


def client_context(connection: Connection) -> ssl.SSLContext:
    """The trust the session's SDK clients get: the system store plus the sandbox CA and --ca-bundle."""
    from provision.azure.credentials import ssl_context

    return ssl_context(*connection.trusted())


async def run_checks(session: AzureSession, plan_path: str, *, write_test: bool,
                     context: ssl.SSLContext) -> list[Check]:
    import httpx

    from provision.core import Engine
    from provision.errors import ProvisionError

    apply = f"provision azure apply {plan_path}"
    plan, section = session.plan, session.section
    planned = await Engine(session.resources, concurrency=8).plan()
    steps = {step.resource.address: step for step in planned.steps}
    checks: list[Check] = []
    if section.app is not None:
        checks += app_checks(section.app, steps, apply)
    if section.dicom is None:
        return checks
    dicom_address = f"azure.dicom_service[{section.dicom.name}]"
    service_url = planned.outputs.get(dicom_address, {}).get("service_url")
    token_line, data_token = await token_check(session)
    checks.append(token_line)
    if not isinstance(service_url, str) or not service_url:
        checks.append(Check("DICOM service", section.dicom.name, False, "not found or not provisioned yet",
                            f"run `{apply}`"))
        return checks + role_checks(steps, section.dicom.name, apply)
    async with httpx.AsyncClient(verify=context, timeout=60, follow_redirects=False) as http:
        user = _first_user(section)
        try:
            result = session.ohif(planned.outputs) if section.app is not None else None
        except ProvisionError:  # the app is not there: the app registration checks above say so
            result = None
        if session.cloud.sandbox and user and result is not None and result.document.get("oidc"):
            app_name = section.app.unique_name if section.app is not None else ""
            try:
                token = await viewer_sign_in(http, result.document["oidc"][0], user)
                data_token = DataToken(token, f"{user} (signed in through the viewer app)")
                checks.append(Check("token", f"viewer sign-in as {user}", True,
                                    f"authorization code flow of app {app_name}"))
            except RuntimeError as error:
                checks.append(Check("token", f"viewer sign-in as {user}", False, str(error),
                                    f"run `{apply}` (the app registration, consent or {user}'s account is wrong)"))
        for origin in _origins(plan, section):
            checks.append(await preflight(http, service_url, origin))
        if data_token is not None:
            checks.append(await qido(http, service_url, data_token))
            if write_test:
                checks += await write_round_trip(http, service_url, data_token)
    return checks + role_checks(steps, section.dicom.name, apply)


async def verify(call: CommandCall, *, write_test: bool) -> Checks:
    """`provision azure verify` (declared in `provision.azure.target`)."""
    from provision.azure.session import open_session

    session = await open_session(call.require_plan(), call.connection)
    try:
        return Checks(await run_checks(session, call.source, write_test=write_test,
                                       context=client_context(call.connection)))
    finally:
        await session.aclose()


__all__ = ["run_checks", "verify"]
