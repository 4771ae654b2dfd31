"""Share links against the real thing: Debian's Orthanc with the DICOMweb and python plugins (the share filter)
behind nginx over HTTPS, holding two studies of the same patient. Every request goes through nginx as a browser
sends it, except where the test says it talks to Orthanc's loopback port directly."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import httpx
import pytest
from conftest import Shared
from orthanc_stack import FRAMES, PATIENT_ID

from provision.dicom.synthetic import multipart_related, synthetic_study

pytestmark = pytest.mark.slow

JSON = {"Accept": "application/dicom+json"}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **JSON}


def uids(answer: httpx.Response) -> list[str]:
    return [study["0020000D"]["Value"][0] for study in answer.json()] if answer.status_code == 200 and \
        answer.content else []


@pytest.fixture
def http(shared: Shared) -> Any:
    with shared.site.client() as client:
        yield client


def test_a_share_opens_its_study(shared: Shared, http: httpx.Client) -> None:
    token = shared.site.mint([shared.uid_a])
    found = http.get("/dicom-web/studies", params={"StudyInstanceUID": shared.uid_a}, headers=auth(token))
    assert found.status_code == 200 and uids(found) == [shared.uid_a]
    # the DICOMweb plugin builds its URLs from nginx's Forwarded header: the public origin, not the loopback
    assert found.json()[0]["00081190"]["Value"][0].startswith(f"{shared.site.url}/dicom-web/studies/")
    assert http.get("/dicom-web/studies", params={"0020000D": shared.uid_a, "includefield": "00081030"},
                    headers=auth(token)).status_code == 200
    a = shared.a[0]
    for path in ("/metadata", "/series", f"/series/{a.series_uid}/metadata",
                 f"/series/{a.series_uid}/instances/{a.sop_instance_uid}/metadata"):
        assert http.get(f"/dicom-web/studies/{a.study_uid}{path}", headers=auth(token)).status_code == 200, path
    frame = http.get(f"/dicom-web/studies/{a.study_uid}/series/{a.series_uid}/instances/{a.sop_instance_uid}/frames/1",
                     headers={"Authorization": f"Bearer {token}", "Accept": FRAMES})
    assert frame.status_code == 200 and frame.headers["content-type"].startswith("multipart/related")
    assert len(frame.content) > 64 * 64 * 2


def test_a_share_refuses_everything_else(shared: Shared, http: httpx.Client) -> None:
    token = shared.site.mint([shared.uid_a])
    a, b = shared.a[0], shared.b[0]
    refused = {
        "priors by PatientID": http.get("/dicom-web/studies", params={"00100020": PATIENT_ID}, headers=auth(token)),
        "unrestricted search": http.get("/dicom-web/studies", params={"limit": "101"}, headers=auth(token)),
        "search for B": http.get("/dicom-web/studies", params={"StudyInstanceUID": b.study_uid}, headers=auth(token)),
        "A,B list": http.get("/dicom-web/studies", params={"StudyInstanceUID": f"{a.study_uid},{b.study_uid}"},
                             headers=auth(token)),
        "wildcard": http.get("/dicom-web/studies", params={"StudyInstanceUID": "2.25.*"}, headers=auth(token)),
        "metadata of B": http.get(f"/dicom-web/studies/{b.study_uid}/metadata", headers=auth(token)),
        "frames of B": http.get(f"/dicom-web/studies/{b.study_uid}/series/{b.series_uid}/instances/"
                                f"{b.sop_instance_uid}/frames/1", headers={"Authorization": f"Bearer {token}",
                                                                            "Accept": FRAMES}),
        "rendered B": http.get(f"/dicom-web/studies/{b.study_uid}/series/{b.series_uid}/instances/"
                               f"{b.sop_instance_uid}/rendered", headers={"Authorization": f"Bearer {token}"}),
        "series-level search": http.get("/dicom-web/series", params={"StudyInstanceUID": a.study_uid},
                                        headers=auth(token)),
        "servers": http.get("/dicom-web/servers", headers=auth(token)),
    }
    assert {name: answer.status_code for name, answer in refused.items()} == {name: 403 for name in refused}
    # a study path with another study's series: the plugin checks the hierarchy, B never leaks
    crossed = http.get(f"/dicom-web/studies/{a.study_uid}/series/{b.series_uid}/metadata", headers=auth(token))
    assert crossed.status_code in (400, 404) or b.study_uid not in crossed.text
    # the filter sees only the last of repeated keys; Orthanc searches the last one too: never B
    for query in (f"StudyInstanceUID={b.study_uid}&StudyInstanceUID={a.study_uid}",
                  f"StudyInstanceUID={a.study_uid}&StudyInstanceUID={b.study_uid}",
                  f"StudyInstanceUID={a.study_uid}&0020000D={b.study_uid}"):
        assert b.study_uid not in uids(http.get(f"/dicom-web/studies?{query}", headers=auth(token))), query


def test_writes_need_an_upload_share_and_stay_in_its_study(shared: Shared, http: httpx.Client) -> None:
    reader = shared.site.mint([shared.uid_a])
    extra = synthetic_study(seed="share-A-extra", patient_id=PATIENT_ID)
    into_a = [type(i)(shared.uid_a, i.series_uid, i.sop_instance_uid, i.sop_class_uid, i.data) for i in extra]
    body, content_type = multipart_related([i.data for i in into_a])
    headers = {"Content-Type": content_type, **JSON}
    assert http.post(f"/dicom-web/studies/{shared.uid_a}", content=body,
                     headers={**headers, "Authorization": f"Bearer {reader}"}).status_code == 403
    assert http.delete(f"/dicom-web/studies/{shared.uid_a}",
                       headers={"Authorization": f"Bearer {reader}"}).status_code in (403, 405)
    uploader = shared.site.mint([shared.uid_b], upload=True)
    # instances of another study posted to the granted study's URL are refused by the DICOMweb plugin
    stored = http.post(f"/dicom-web/studies/{shared.uid_b}", content=body,
                       headers={**headers, "Authorization": f"Bearer {uploader}"})
    assert stored.status_code != 200
    assert http.post("/dicom-web/studies", content=body,
                     headers={**headers, "Authorization": f"Bearer {uploader}"}).status_code == 403
    admin = http.get("/dicom-web/studies", params={"00100020": PATIENT_ID}, headers=JSON, auth=shared.site.admin())
    assert sorted(uids(admin)) == sorted([shared.uid_a, shared.uid_b])  # nothing new was stored


def test_bad_tokens_are_refused(shared: Shared, http: httpx.Client) -> None:
    path = f"/dicom-web/studies/{shared.uid_a}/metadata"
    good = shared.site.mint([shared.uid_a])
    expired = shared.site.mint([shared.uid_a], issued_ago=700)
    head, payload, signature = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["studies"] = [shared.uid_a, shared.uid_b]
    forged = f"{head}.{base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b'=').decode()}.{signature}"
    assert http.get(path, headers=auth(good)).status_code == 200
    for token in (expired, forged, good[:-4] + "AAAA", "garbage"):
        assert http.get(path, headers=auth(token)).status_code == 403
    assert http.get(f"/dicom-web/studies/{shared.uid_b}/metadata", headers=auth(forged)).status_code == 403
    assert http.get(path, headers=JSON).status_code == 403  # no token
    assert http.get(path, params={"token": good}, headers=JSON).status_code == 403  # OHIF sends a header, not this
    wrong = base64.b64encode(b"admin:wrong-password").decode()
    assert http.get(path, headers={"Authorization": f"Basic {wrong}", **JSON}).status_code == 403


def test_orthanc_itself_is_guarded_by_the_filter(shared: Shared) -> None:
    token = shared.site.mint([shared.uid_a])
    with httpx.Client(base_url=shared.site.loopback, timeout=30, trust_env=False) as direct:
        assert direct.get("/system").status_code == 403
        assert direct.get("/patients", headers={"Authorization": f"Bearer {token}"}).status_code == 403
        assert direct.post("/tools/find", json={"Level": "Study", "Query": {}},
                           headers={"Authorization": f"Bearer {token}"}).status_code == 403
        assert direct.get("/system", auth=shared.site.admin()).json()["Name"] == "share-test"
        # the Advanced Authorization contract, for a plugin pointed at this Orthanc
        body = {"level": "study", "method": "get", "dicom-uid": shared.uid_a, "token-key": "authorization",
                "token-value": f"Bearer {token}"}
        granted = direct.post("/provision/tokens/validate", json=body)
        assert granted.status_code == 200 and granted.json()["granted"] is True and granted.json()["validity"] > 0
        refused = direct.post("/provision/tokens/validate", json={**body, "dicom-uid": shared.uid_b})
        assert refused.json() == {"granted": False, "validity": 0}
        priors = {**body, "level": "system", "uri": f"/dicom-web/studies?00100020={PATIENT_ID}"}
        assert direct.post("/provision/tokens/validate", json=priors).json()["granted"] is False
    with shared.site.client() as public:  # nginx does not publish Orthanc's REST API nor the contract
        assert "ApiVersion" not in public.get("/system", auth=shared.site.admin()).text
        assert public.post("/provision/tokens/validate", json=body).status_code != 200


def test_cors_and_cross_origin_isolation(shared: Shared, http: httpx.Client) -> None:
    path = f"/dicom-web/studies/{shared.uid_a}/metadata"
    preflight = {"Origin": "https://viewer.example.org", "Access-Control-Request-Method": "GET",
                 "Access-Control-Request-Headers": "authorization,accept"}
    answer = http.options(path, headers=preflight)
    assert answer.status_code == 204
    assert answer.headers["access-control-allow-origin"] == "https://viewer.example.org"
    assert "authorization" in answer.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-origin" not in http.options(path, headers={**preflight,
                                                                             "Origin": "https://evil.example"}).headers
    token = shared.site.mint([shared.uid_a])
    refused = http.get("/dicom-web/studies", params={"00100020": PATIENT_ID},
                       headers={**auth(token), "Origin": "https://viewer.example.org"})
    assert refused.status_code == 403  # and the viewer on the other origin can read that it was refused:
    assert refused.headers["access-control-allow-origin"] == "https://viewer.example.org"
    for page in ("/", f"/viewer?StudyInstanceUIDs={shared.uid_a}&token={token}", "/app-config.js"):
        served = http.get(page)
        assert served.status_code == 200, page
        assert served.headers["cross-origin-opener-policy"] == "same-origin"
        assert served.headers["cross-origin-embedder-policy"] == "require-corp"
        assert served.headers["referrer-policy"] == "no-referrer"
    assert "app-config.js" in http.get("/viewer").text  # the SPA's index.html


def test_share_command_list_and_revoke(shared: Shared, http: httpx.Client) -> None:
    site = shared.site
    link, token, share_id = site.share("--study", shared.uid_a, "--expires", "2h", "--note", "for dr. B")
    assert link.startswith(f"{site.url}/viewer?StudyInstanceUIDs={shared.uid_a}&token=")
    path = f"/dicom-web/studies/{shared.uid_a}/metadata"
    assert http.get(path, headers=auth(token)).status_code == 200
    listed = json.loads(site.ok("orthanc", "shares", "list", str(site.plan), "--output", "json"))["shares"]
    mine = next(entry for entry in listed if entry["id"] == share_id)
    assert mine["status"] == "active" and mine["studies"] == [shared.uid_a] and mine["note"] == "for dr. B"
    assert mine["expires_at"] - mine["issued_at"] == 7200
    assert token not in (site.root / "shares" / "issued.jsonl").read_text()
    out = site.ok("orthanc", "shares", "revoke", str(site.plan), "--id", share_id)
    assert f"Revoked {share_id}" in out
    assert http.get(path, headers=auth(token)).status_code == 403  # the next request, no restart
    assert f"{share_id} was already revoked" in site.ok("orthanc", "shares", "revoke", str(site.plan), "--id",
                                                        share_id)
    text = site.ok("orthanc", "shares", "list", str(site.plan))
    assert re.search(rf"{re.escape(share_id)}\s+revoked", text), text
    assert site.provision("orthanc", "shares", "revoke", str(site.plan), "--id", "nope").exit_code == 1


def test_share_refuses_unknown_studies_bad_uids_and_long_lives(shared: Shared) -> None:
    site = shared.site
    before = (site.root / "shares" / "issued.jsonl").read_text() if (site.root / "shares/issued.jsonl").exists() \
        else ""
    for args, message in ((["--study", "1.2.3.999"], "--study 1.2.3.999: no such study in Orthanc"),
                          (["--study", "1.2.x"], "--study '1.2.x' is not a DICOM UID"),
                          ([], "--study is required"),
                          (["--study", shared.uid_a, "--expires", "1y"], "--expires: '1y' is not a duration"),
                          (["--study", shared.uid_a, "--expires", "91d"], "longer than 90d, the longest this plan")):
        result = site.provision("orthanc", "share", str(site.plan), *args)
        assert result.exit_code == 1 and message in result.output, (args, result.output)
        assert "Traceback" not in result.output and "token=" not in result.output
    after = (site.root / "shares" / "issued.jsonl").read_text() if (site.root / "shares/issued.jsonl").exists() \
        else ""
    assert after == before  # nothing signed, nothing recorded
    missing_key = dict(site.env)
    missing_key.pop("PROVISION_SHARE_KEY")
    saved, site.env = site.env, missing_key
    try:
        result = site.provision("orthanc", "share", str(site.plan), "--study", shared.uid_a)
    finally:
        site.env = saved
    assert result.exit_code == 1 and f"{site.plan}:5:1 orthanc.shares.signing_key_env" in result.output


def test_verify_passes_on_the_running_deployment(shared: Shared, http: httpx.Client) -> None:
    def studies() -> list[str]:
        return sorted(uids(http.get("/dicom-web/studies", headers=JSON, auth=shared.site.admin())))

    before = studies()
    result = shared.site.provision("orthanc", "verify", str(shared.site.plan), "--output", "json")
    assert result.exit_code == 0, result.output
    checks = json.loads(result.output)["checks"]
    subjects = {check["subject"] for check in checks}
    assert {"cross-origin isolation", "preflight from https://viewer.example.org", "refused on another study",
            "refused on the priors search by PatientID", "expired token refused", "tampered token refused"} <= subjects
    assert all(check["ok"] for check in checks)
    written = shared.site.provision("orthanc", "verify", str(shared.site.plan), "--write-test", "--output", "json")
    assert written.exit_code == 0, written.output
    assert any(c["area"] == "write test" and c["ok"] for c in json.loads(written.output)["checks"])
    assert studies() == before  # the generated study was deleted again


def test_tokens_never_reach_a_log(shared: Shared, http: httpx.Client) -> None:
    token = shared.site.mint([shared.uid_a])
    http.get(f"/viewer?StudyInstanceUIDs={shared.uid_a}&token={token}")
    http.get(f"/dicom-web/studies/{shared.uid_a}/metadata", headers=auth(token))
    http.get("/dicom-web/studies", params={"00100020": PATIENT_ID}, headers=auth(token))  # refused: logged
    for log in (shared.site.root / "logs").iterdir():
        text = log.read_text(errors="replace")
        assert token not in text and token.split(".")[1] not in text, log
