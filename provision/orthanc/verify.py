"""`provision orthanc verify PLAN`: does the running deployment work for a viewer, and hold for a share link?

Checks, in the order a problem would show: the files are as planned; the viewer is
served with cross-origin isolation (COOP/COEP, else OHIF stops on "SharedArrayBuffer is not defined"); its
app-config.js points at the DICOMweb root; a preflight from every allowed origin is answered with its
Access-Control-Allow-Origin and `Authorization` allowed, and an unknown origin gets none; then a share token
(signed here, valid two minutes, never printed or recorded) opens its study and is refused on another study,
on the priors search by PatientID, and once expired or tampered with; a request without token is refused.

A study is needed for the share checks: the first one Orthanc holds, or with `--write-test` a generated one
(stored as the admin through nginx, deleted afterwards through Orthanc's REST API on the loopback).
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from typing import Any

import httpx

from provision.core import Engine
from provision.core.commands import Check, Checks, CommandCall
from provision.orthanc import client, credentials, sharetoken
from provision.orthanc.session import Deployment, build_resources, deployment, parse_app_config
from provision.orthanc.site import Site

JSON = {"Accept": "application/dicom+json"}
NOT_ALLOWED_ORIGIN = "https://not-allowed.invalid"
PROBE_LIFETIME = 120
TEST_DESCRIPTION = "provision orthanc verify write test"


async def file_checks(current: Deployment) -> list[Check]:
    planned = await Engine(build_resources(current)).plan()
    apply = f"run `provision orthanc apply {current.plan.source or 'PLAN'}`"
    drifted = [step for step in planned.steps if step.action.changes_anything or step.blocked]
    checks = [Check("files", step.resource.address, False, step.blocked or f"{step.action.kind}: differs from the plan",
                    step.blocked or apply) for step in drifted]
    return checks or [Check("files", str(current.site.layout.root), True, f"{len(planned.steps)} files as planned")]


async def viewer_checks(http: httpx.AsyncClient, site: Site) -> list[Check]:
    checks = []
    answer = await http.get("/viewer")
    coop = answer.headers.get("cross-origin-opener-policy", "")
    coep = answer.headers.get("cross-origin-embedder-policy", "")
    isolated = answer.status_code == 200 and coop == "same-origin" and coep in ("require-corp", "credentialless")
    checks.append(Check("viewer", "cross-origin isolation", isolated,
                        f"/viewer: {answer.status_code}, COOP {coop or 'missing'}, COEP {coep or 'missing'}",
                        "" if isolated else "nginx must send COOP same-origin and COEP require-corp: run apply, up"))
    config = await http.get("/app-config.js")
    try:
        root = parse_app_config(config.text)["dataSources"][0]["configuration"]["qidoRoot"]
    except (ValueError, KeyError, IndexError, TypeError):
        root = None
    checks.append(Check("viewer", "app-config.js", root == site.dicomweb_url,
                        f"data source at {root}" if root else f"{config.status_code}: no data source found",
                        "" if root == site.dicomweb_url else "run `provision orthanc apply PLAN`"))
    return checks


async def cors_checks(http: httpx.AsyncClient, site: Site) -> list[Check]:
    checks = []
    path = f"{site.dicomweb_root}studies"
    for origin in (*site.allowed_origins, NOT_ALLOWED_ORIGIN):
        answer = await http.options(path, headers={"Origin": origin, "Access-Control-Request-Method": "GET",
                                                   "Access-Control-Request-Headers": "authorization"})
        allowed = answer.headers.get("access-control-allow-origin")
        headers = answer.headers.get("access-control-allow-headers", "").lower()
        if origin == NOT_ALLOWED_ORIGIN:
            ok = allowed is None
            detail = "no Access-Control-Allow-Origin" if ok else f"Access-Control-Allow-Origin {allowed}"
            checks.append(Check("cors", "an origin not allowed", ok, detail, "" if ok else "run apply, then up"))
            continue
        ok = answer.status_code in (200, 204) and allowed == origin and "authorization" in headers
        checks.append(Check("cors", f"preflight from {origin}", ok,
                            f"{answer.status_code}, allow-origin {allowed or 'missing'}, allow-headers "
                            f"{headers or 'missing'}", "" if ok else "run apply, then up (nginx reloads)"))
    return checks


def _tampered(token: str) -> str:
    """The same token with one more study in its claims and the original signature."""
    head, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["studies"] = [*claims["studies"], "1.2.3.4"]
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{head}.{forged}.{signature}"


async def share_checks(http: httpx.AsyncClient, site: Site, key: bytes, study: dict[str, Any],
                       other: str) -> list[Check]:
    uid = study["0020000D"]["Value"][0]
    patient = (study.get("00100020", {}).get("Value") or [""])[0]
    now = int(time.time())
    token = sharetoken.mint(key, [uid], share_id=f"verify-{secrets.token_hex(4)}", issued_at=now,
                            expires_at=now + PROBE_LIFETIME)
    expired = sharetoken.mint(key, [uid], share_id=f"verify-{secrets.token_hex(4)}", issued_at=now - 600,
                              expires_at=now - 300)
    root = site.dicomweb_root

    async def get(path: str, bearer: str | None, params: dict[str, str] | None = None) -> int:
        headers = {**JSON, **({"Authorization": f"Bearer {bearer}"} if bearer else {})}
        return (await http.get(f"{root}{path}", params=params, headers=headers)).status_code

    cases = [
        ("opens its study (QIDO StudyInstanceUID)", await get("studies", token, {"StudyInstanceUID": uid}), (200,)),
        ("reads its study's metadata", await get(f"studies/{uid}/metadata", token), (200,)),
        ("refused on another study", await get(f"studies/{other}/metadata", token), (403,)),
        ("refused on the priors search by PatientID", await get("studies", token, {"00100020": patient or "x"}),
         (403,)),
        ("expired token refused", await get(f"studies/{uid}/metadata", expired), (401, 403)),
        ("tampered token refused", await get(f"studies/{uid}/metadata", _tampered(token)), (401, 403)),
        ("no token refused", await get(f"studies/{uid}/metadata", None), (401, 403)),
    ]
    return [Check("share", subject, status in expected, f"{status} (expected {' or '.join(map(str, expected))})",
                  "" if status in expected else "run `provision orthanc apply PLAN` and `up`: the share filter or "
                  "nginx differ from the plan") for subject, status, expected in cases]


async def _studies(http: httpx.AsyncClient, site: Site) -> list[dict[str, Any]]:
    answer = await http.get(f"{site.dicomweb_root}studies", params={"limit": "2", "includefield": "00100020"},
                            headers=JSON)
    answer.raise_for_status()
    return list(answer.json()) if answer.content else []


async def _store_test_study(http: httpx.AsyncClient, site: Site) -> str:
    from provision.dicom.synthetic import multipart_related, synthetic_study

    instances = synthetic_study(instances=1, study_description=TEST_DESCRIPTION, patient_id="PROVISION-VERIFY")
    body, content_type = multipart_related([instance.data for instance in instances])
    answer = await http.post(f"{site.dicomweb_root}studies", content=body,
                             headers={"Content-Type": content_type, **JSON})
    answer.raise_for_status()
    return instances[0].study_uid


async def _delete_study(site: Site, password: str, uid: str) -> Check:
    """Orthanc's REST API, on the loopback only (nginx does not publish it)."""
    base = f"http://127.0.0.1:{site.http_port}"
    try:
        async with httpx.AsyncClient(base_url=base, auth=(site.admin_user, password), timeout=30,
                                     trust_env=False) as rest:
            found = (await rest.post("/tools/lookup", content=uid)).json()
            for item in found:
                if item.get("Type") == "Study":
                    (await rest.delete(f"/studies/{item['ID']}")).raise_for_status()
    except (httpx.HTTPError, ValueError) as error:
        return Check("write test", "deleted", False, f"{uid}: {error}", f"delete study {uid} by hand")
    return Check("write test", "deleted", True, f"{uid} deleted again")


async def verify(call: CommandCall, *, write_test: bool) -> Checks:
    current = deployment(call.require_plan())
    site = current.site
    key = credentials.signing_key(current.plan, current.section)
    # no check of pid files: the same files may run under `up`, the systemd units or docker-compose; what
    # answers on the public URL is what counts
    checks = Checks(await file_checks(current))
    async with client.public_client(site, call.connection) as http, \
            client.public_client(site, call.connection, auth=(site.admin_user, current.admin_password)) as admin:
        try:
            checks.checks += await viewer_checks(http, site)
            checks.checks += await cors_checks(http, site)
            written = await _store_test_study(admin, site) if write_test else None
            found = await _studies(admin, site)
        except httpx.HTTPError as error:
            checks.checks.append(Check("reach", site.public_url, False, str(client.unreachable(site, error)),
                                       "run `provision orthanc up PLAN`"))
            return checks
        study = next((s for s in found if s["0020000D"]["Value"][0] == written), found[0] if found else None)
        if study is None:
            checks.checks.append(Check("share", "a study to open", False, "Orthanc holds no study",
                                       "store one, or run verify with --write-test"))
            return checks
        others = [s["0020000D"]["Value"][0] for s in found if s is not study]
        other = others[0] if others else "2.25." + str(int.from_bytes(secrets.token_bytes(12), "big"))
        checks.checks += await share_checks(http, site, key, study, other)
        if written is not None:
            checks.checks.append(await _delete_study(site, current.admin_password, written))
    return checks
