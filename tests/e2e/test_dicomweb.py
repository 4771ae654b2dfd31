"""The sandbox's DICOM data plane: pure rules (CORS, URL rewriting, STOW status, query tags) as tables, then
the live service that `provision azure apply` created, over HTTPS, with real tokens and a real Orthanc."""

from __future__ import annotations

import time
from typing import Any

import httpx
import jwt
import pytest
from conftest import STUDY_DESCRIPTION, Deployment
from e2e_http import DICOM_AUDIENCE, app_token, client

from provision.dicom.synthetic import multipart_related, synthetic_study
from provision.sandbox.azure.authorization import DICOM_DATA_READER
from provision.sandbox.azure.dicom.cors import preflight_headers, response_cors_headers
from provision.sandbox.azure.dicom.errors import DicomError
from provision.sandbox.azure.dicom.qido import tag_of
from provision.sandbox.azure.dicom.query_tags import validate_query_tag
from provision.sandbox.azure.directory import BOB_ID
from provision.sandbox.dicomweb import orthanc_query, rewrite_urls

ORIGIN = "http://127.0.0.1:3000"
CORS = {"origins": [ORIGIN], "headers": ["*"], "methods": ["GET", "POST", "OPTIONS"], "maxAge": 1440,
        "allowCredentials": False}

# --- pure rules ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cors", "origin", "method", "headers", "expected"),
    [
        (CORS, ORIGIN, "GET", "authorization,accept",
         {"Access-Control-Allow-Origin": ORIGIN, "Access-Control-Allow-Methods": "GET",
          "Access-Control-Allow-Headers": "authorization,accept", "Access-Control-Max-Age": "1440", "Vary": "Origin"}),
        (CORS, "HTTP://127.0.0.1:3000", "GET", None, {"Access-Control-Allow-Origin": "HTTP://127.0.0.1:3000",
                                                    "Access-Control-Allow-Methods": "GET",
                                                    "Access-Control-Max-Age": "1440", "Vary": "Origin"}),
        (CORS, "http://127.0.0.1:3001", "GET", "authorization", None),  # another port is another origin
        (CORS, ORIGIN, "DELETE", None, None),  # method not allowed
        ({**CORS, "headers": ["Accept"]}, ORIGIN, "GET", "authorization", None),  # header not allowed
        ({**CORS, "headers": ["Authorization"]}, ORIGIN, "GET", "Authorization,Accept",
         {"Access-Control-Allow-Origin": ORIGIN, "Access-Control-Allow-Methods": "GET",
          "Access-Control-Allow-Headers": "Authorization,Accept", "Access-Control-Max-Age": "1440",
          "Vary": "Origin"}),  # Accept is a simple header
        ({**CORS, "origins": ["*"], "maxAge": None}, "https://any.example", "GET", None,
         {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "GET"}),
        ({**CORS, "origins": ["*"], "allowCredentials": True, "maxAge": None}, "https://any.example", "GET", None,
         {"Access-Control-Allow-Origin": "https://any.example", "Access-Control-Allow-Methods": "GET",
          "Access-Control-Allow-Credentials": "true", "Vary": "Origin"}),
        ({"origins": [], "headers": [], "methods": [], "maxAge": None, "allowCredentials": False}, ORIGIN, "GET",
         None, None),  # the service's default: no CORS at all
    ],
)
def test_preflight(cors: dict[str, Any], origin: str, method: str, headers: str | None,
                   expected: dict[str, str] | None) -> None:
    assert preflight_headers(cors, origin, method, headers) == expected


def test_actual_response_carries_cors_only_for_allowed_origins() -> None:
    assert response_cors_headers(CORS, ORIGIN) == {"Access-Control-Allow-Origin": ORIGIN, "Vary": "Origin"}
    assert response_cors_headers(CORS, "http://evil.example") == {}
    assert response_cors_headers(CORS, None) == {}


def test_orthanc_urls_become_service_urls() -> None:
    body = b'{"00081190":{"vr":"UR","Value":["https://orthanc.sandbox.invalid/dicom-web/studies/1.2"]}}'
    assert rewrite_urls(body, "https://127.0.0.1:9/dicom/ws-d/v2") == (
        b'{"00081190":{"vr":"UR","Value":["https://127.0.0.1:9/dicom/ws-d/v2/studies/1.2"]}}')


def test_includefield_lists_are_split_for_orthanc() -> None:
    assert orthanc_query([("limit", "5"), ("includefield", "00081030,00080060")]) == (
        "limit=5&includefield=00081030&includefield=00080060")


@pytest.mark.parametrize(("path", "tag"), [("00081090", "00081090"), ("ManufacturerModelName", "00081090"),
                                           ("patientsex", "00100040"), ("nonsense", None), ("0008109", None)])
def test_tag_paths(path: str, tag: str | None) -> None:
    assert tag_of(path) == tag


@pytest.mark.parametrize(
    ("item", "status"),
    [
        ({"path": "PatientID", "level": "Study"}, 409),  # already searchable
        ({"path": "00091001", "vr": "LO", "level": "Series"}, 400),  # private tag without its creator
        ({"path": "PatientSex", "level": "Patient"}, 400),  # no such level
        ({"path": "PatientSex", "vr": "SQ", "level": "Study"}, 400),  # sequences are not indexable
        ({"path": "00101234", "level": "Study"}, 400),  # VR unknown to the sandbox: must be sent
    ],
)
def test_invalid_query_tags(item: dict[str, Any], status: int) -> None:
    with pytest.raises(DicomError) as caught:
        validate_query_tag(item, {})
    assert caught.value.status == status


def test_valid_query_tags() -> None:
    assert validate_query_tag({"path": "patientsex", "level": "study"}, {}) == {
        "path": "00100040", "vr": "CS", "level": "Study", "status": "Adding", "queryStatus": "Enabled"}
    private = validate_query_tag({"path": "00091001", "vr": "lo", "level": "Instance", "privateCreator": "ACME"}, {})
    assert private["privateCreator"] == "ACME" and private["vr"] == "LO"


# --- the live service ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def http(deployment: Deployment) -> Any:
    with client(deployment.info) as c:
        yield c


@pytest.fixture(scope="module")
def alice(deployment: Deployment) -> dict[str, str]:
    return {"Authorization": f"Bearer {deployment.user_token()}", "Accept": "application/dicom+json"}


def test_token_is_required(deployment: Deployment, http: httpx.Client) -> None:
    origin = deployment.viewer_url
    response = http.get(f"{deployment.dicomweb_root}/studies", headers={"Origin": origin})
    assert response.status_code == 401
    assert 'resource_id="https://dicom.healthcareapis.azure.com"' in response.headers["www-authenticate"]
    assert response.headers["access-control-allow-origin"] == origin  # the browser can read the 401
    arm_token = app_token(deployment.info, "https://management.azure.com")
    response = http.get(f"{deployment.dicomweb_root}/studies", headers={"Authorization": f"Bearer {arm_token}"})
    assert response.status_code == 401 and 'error="invalid_token"' in response.headers["www-authenticate"]


def test_no_role_is_403(deployment: Deployment, http: httpx.Client) -> None:
    token = app_token(deployment.info, DICOM_AUDIENCE)  # the sandbox's own principal holds no DICOM role
    response = http.get(f"{deployment.dicomweb_root}/studies",
                        headers={"Authorization": f"Bearer {token}", "Origin": deployment.viewer_url})
    assert response.status_code == 403
    assert response.headers["access-control-allow-origin"] == deployment.viewer_url


def test_user_token_carries_the_users_oid(deployment: Deployment) -> None:
    claims = jwt.decode(deployment.user_token(), options={"verify_signature": False})
    assert claims["aud"] == DICOM_AUDIENCE and claims["scp"] == "Dicom.ReadWrite"
    assert claims["upn"] == "alice@contoso.onmicrosoft.com" and claims["idtyp"] == "user"


def test_search_metadata_and_frames_point_at_the_service(deployment: Deployment, http: httpx.Client,
                                                         alice: dict[str, str]) -> None:
    root = deployment.dicomweb_root
    studies = http.get(f"{root}/studies", params={"includefield": "00081030,00080060"}, headers=alice)
    assert studies.status_code == 200
    (study,) = studies.json()
    assert study["00081030"]["Value"] == [STUDY_DESCRIPTION]
    assert study["00081190"]["Value"] == [f"{root}/studies/{deployment.study[0].study_uid}"]
    metadata = http.get(f"{root}/studies/{deployment.study[0].study_uid}/metadata", headers=alice)
    assert metadata.status_code == 200 and len(metadata.json()) == 3
    uris = [i["7FE00010"]["BulkDataURI"] for i in metadata.json()]
    assert all(uri.startswith(f"{root}/studies/") for uri in uris)
    assert "orthanc" not in metadata.text.lower()
    first = deployment.study[0]
    frame = http.get(f"{root}/studies/{first.study_uid}/series/{first.series_uid}/instances/"
                     f"{first.sop_instance_uid}/frames/1",
                     headers={**alice, "Accept": "multipart/related; type=application/octet-stream; transfer-syntax=*"})
    assert frame.status_code == 200 and frame.headers["content-type"].startswith("multipart/related")
    assert len(frame.content) > 64 * 64 * 2


def test_azure_search_rules(deployment: Deployment, http: httpx.Client, alice: dict[str, str]) -> None:
    root = deployment.dicomweb_root
    assert http.get(f"{root}/studies", params={"PatientID": "nobody"}, headers=alice).status_code == 204
    assert http.get(f"{root}/studies", params={"offset": "50"}, headers=alice).status_code == 204
    assert http.get(f"{root}/studies", params={"limit": "500"}, headers=alice).status_code == 400
    refused = http.get(f"{root}/studies", params={"Manufacturer": "x"}, headers=alice)
    assert refused.status_code == 400 and "Manufacturer" in refused.json()["message"]
    assert http.get(f"{deployment.info.url}/dicom/nows-nodicom/v2/studies", headers=alice).status_code == 404


def test_preflight_follows_the_services_cors(deployment: Deployment, http: httpx.Client) -> None:
    url = f"{deployment.dicomweb_root}/studies"
    asks = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization,accept"}
    allowed = http.options(url, headers={"Origin": deployment.viewer_url, **asks})
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == deployment.viewer_url
    refused = http.options(url, headers={"Origin": "https://evil.example", **asks})
    assert refused.status_code == 204 and "access-control-allow-origin" not in refused.headers


def test_reader_reads_but_cannot_write(deployment: Deployment, http: httpx.Client) -> None:
    deployment.arm.assign(deployment.dicom_id, BOB_ID, DICOM_DATA_READER)
    try:
        bob = {"Authorization": f"Bearer {deployment.user_token('bob@contoso.com')}",
               "Accept": "application/dicom+json"}
        assert http.get(f"{deployment.dicomweb_root}/studies", headers=bob).status_code == 200
        body, content_type = multipart_related([i.data for i in synthetic_study()])
        stored = http.post(f"{deployment.dicomweb_root}/studies", content=body,
                           headers={**bob, "Content-Type": content_type})
        assert stored.status_code == 403
    finally:
        deployment.arm.delete_role_assignments(deployment.dicom_id, BOB_ID)
    assert http.get(f"{deployment.dicomweb_root}/studies", headers=bob).status_code == 403


def test_store_and_delete(deployment: Deployment, http: httpx.Client, alice: dict[str, str]) -> None:
    root = deployment.dicomweb_root
    study = synthetic_study(instances=2)
    body, content_type = multipart_related([i.data for i in study])
    stored = http.post(f"{root}/studies", content=body, headers={**alice, "Content-Type": content_type})
    assert stored.status_code == 200
    references = stored.json()["00081199"]["Value"]
    assert {r["00081190"]["Value"][0] for r in references} == {
        f"{root}/studies/{i.study_uid}/series/{i.series_uid}/instances/{i.sop_instance_uid}" for i in study}
    garbage, garbage_type = multipart_related([b"not a DICOM file"])
    refused = http.post(f"{root}/studies", content=garbage, headers={**alice, "Content-Type": garbage_type})
    assert refused.status_code == 409  # Azure's answer (test_dicom_fidelity.py has the details)
    uid = study[0].study_uid
    assert http.delete(f"{root}/studies/{uid}", headers=alice).status_code == 204
    assert http.get(f"{root}/studies", params={"StudyInstanceUID": uid}, headers=alice).status_code == 204
    assert http.delete(f"{root}/studies/{uid}", headers=alice).status_code == 404


def test_extended_query_tags(deployment: Deployment, http: httpx.Client, alice: dict[str, str]) -> None:
    root = deployment.dicomweb_root
    tags = f"{root}/extendedquerytags"
    assert http.get(f"{root}/studies", params={"PatientSex": "O"}, headers=alice).status_code == 400
    added = http.post(tags, json=[{"path": "PatientSex", "level": "Study"}], headers=alice)
    assert added.status_code == 202
    operation = added.json()
    assert operation["href"] == f"{root}/operations/{operation['id']}"
    assert http.post(tags, json=[{"path": "PatientSex", "level": "Study"}], headers=alice).status_code == 409
    deadline = time.monotonic() + 10
    while (polled := http.get(operation["href"], headers=alice)).status_code == 202:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert polled.json()["status"] == "succeeded"
    assert http.get(f"{tags}/00100040", headers=alice).json() == {
        "path": "00100040", "vr": "CS", "level": "Study", "status": "Ready", "queryStatus": "Enabled"}
    found = http.get(f"{root}/studies", params={"PatientSex": "O"}, headers=alice)
    assert found.status_code == 200 and len(found.json()) == 1
    disabled = http.patch(f"{tags}/PatientSex", json={"queryStatus": "Disabled"}, headers=alice)
    assert disabled.status_code == 200 and disabled.json()["queryStatus"] == "Disabled"
    assert http.get(f"{root}/studies", params={"PatientSex": "O"}, headers=alice).status_code == 400
    assert http.delete(f"{tags}/PatientSex", headers=alice).status_code == 204
    assert http.get(f"{tags}/PatientSex", headers=alice).status_code == 404
    assert http.get(tags, headers=alice).json() == []
