"""The sandbox's Google routes answer the real google-api-python-client the way the Healthcare API does."""

from __future__ import annotations

import ssl
import time
from typing import Any

import pytest
from googleapiclient.errors import HttpError

from provision.core import TemporaryError
from provision.errors import ConfigurationError
from provision.gcp.client import AlreadyExists, HealthcareClient, NotFound, RpcStatus, sandbox_credentials
from provision.gcp.resources import datasets_api

V = "roles/healthcare.dicomViewer"
COND = {"title": "until-2030", "expression": 'request.time < timestamp("2030-01-01T00:00:00Z")'}


def raw_error(api: HealthcareClient, make: Any) -> RpcStatus:
    with pytest.raises(HttpError) as caught:
        make(api.service).execute(http=api._http(), num_retries=0)
    return RpcStatus.from_http_error(caught.value)


def test_dataset_create_is_a_long_running_operation(google: Any, observer: Any, dataset_id: str) -> None:
    observer.config(lro_seconds=0.3)
    operation = google.call(lambda s: datasets_api(s).create(
        parent=google.parent, datasetId=dataset_id, body={}))
    assert operation["name"].startswith(f"{google.dataset_name(dataset_id)}/operations/")
    assert not operation.get("done")
    with pytest.raises(NotFound):  # the dataset appears when its operation ends
        google.call(lambda s: datasets_api(s).get(name=google.dataset_name(dataset_id)))
    time.sleep(0.35)
    done = google.call(lambda s: datasets_api(s).operations().get(name=operation["name"]))
    assert done["done"] is True
    assert done["response"]["name"] == google.dataset_name(dataset_id)
    assert google.call(lambda s: datasets_api(s).get(name=google.dataset_name(dataset_id))) == {
        "name": google.dataset_name(dataset_id)}
    status = raw_error(google.api, lambda s: datasets_api(s).create(
        parent=google.parent, datasetId=dataset_id, body={}))
    assert (status.code, status.status) == (409, "ALREADY_EXISTS")
    with pytest.raises(AlreadyExists):
        google.call(lambda s: datasets_api(s).create(
            parent=google.parent, datasetId=dataset_id, body={}))


def test_new_dataset_is_not_initialized_for_a_while(
    google: Any, observer: Any, dataset_id: str
) -> None:
    observer.gcp_config(dataset_init_seconds=0.5)
    google.create_dataset(dataset_id)
    status = raw_error(google.api, lambda s: datasets_api(s).dicomStores().list(parent=google.dataset_name(dataset_id)))
    assert (status.code, status.status, status.message) == (404, "NOT_FOUND", "dataset not initialized")
    with pytest.raises(TemporaryError, match="not initialized"):
        google.call(lambda s: datasets_api(s).dicomStores().list(parent=google.dataset_name(dataset_id)))
    time.sleep(0.55)
    assert google.call(lambda s: datasets_api(s).dicomStores().list(parent=google.dataset_name(dataset_id))) == {}


def test_dicom_store_crud_and_proto3_defaults(google: Any, observer: Any, dataset_id: str) -> None:
    google.create_dataset(dataset_id)
    parent = google.dataset_name(dataset_id)
    body = {"labels": {"team": "imaging"},
            "notificationConfig": {"pubsubTopic": "projects/sandbox-project/topics/t", "sendForBulkImport": False}}
    store = google.call(lambda s: datasets_api(s).dicomStores().create(parent=parent, dicomStoreId="main", body=body))
    # created synchronously; a false boolean is not on the wire
    assert store == {"name": f"{parent}/dicomStores/main", "labels": {"team": "imaging"},
                     "notificationConfig": {"pubsubTopic": "projects/sandbox-project/topics/t"}}
    patched = google.call(lambda s: datasets_api(s).dicomStores().patch(
        name=store["name"], updateMask="labels", body={"labels": {"team": "x", "more": ""}}))
    assert patched["labels"] == {"team": "x", "more": ""}
    assert patched["notificationConfig"] == store["notificationConfig"]
    status = raw_error(google.api, lambda s: datasets_api(s).dicomStores().patch(
        name=store["name"], updateMask="labels", body={"labels": {"Bad Key": "x"}}))
    assert (status.code, status.status) == (400, "INVALID_ARGUMENT")
    listed = google.call(lambda s: datasets_api(s).dicomStores().list(parent=parent))
    assert [s["name"] for s in listed["dicomStores"]] == [store["name"]]
    assert google.call(lambda s: datasets_api(s).fhirStores().list(parent=parent)) == {}
    assert google.call(lambda s: datasets_api(s).dicomStores().delete(name=store["name"])) == {}
    with pytest.raises(NotFound):
        google.call(lambda s: datasets_api(s).dicomStores().get(name=store["name"]))


def test_iam_etag_semantics(google: Any, observer: Any, dataset_id: str) -> None:
    google.create_dataset(dataset_id)
    store = google.create_store(dataset_id, "main")
    empty = google.get_policy(store)
    assert empty == {"etag": "ACAB"}
    both = ["user:b@example.org", "user:a@example.org"]
    first = google.set_policy(store, {"bindings": [{"role": V, "members": both}], "etag": empty["etag"]})
    assert first["etag"] != empty["etag"]
    assert google.members(first, V) == ["user:a@example.org", "user:b@example.org"]
    status = raw_error(google.api, lambda s: datasets_api(s).dicomStores().setIamPolicy(
        resource=store, body={"policy": {"bindings": [], "etag": empty["etag"]}}))
    assert (status.code, status.status) == (409, "ABORTED")
    assert "concurrent policy changes" in status.message
    with pytest.raises(TemporaryError, match="read-modify-write"):
        google.set_policy(store, {"bindings": [], "etag": empty["etag"]})
    assert google.get_policy(store) == first


def test_iam_conditions_need_version_3(google: Any, observer: Any, dataset_id: str) -> None:
    google.create_dataset(dataset_id)
    resource = google.dataset_name(dataset_id)
    status = raw_error(google.api, lambda s: datasets_api(s).setIamPolicy(
        resource=resource, body={"policy": {"bindings": [{"role": V, "members": ["user:a@example.org"],
                                                           "condition": COND}]}}))
    assert (status.code, status.status) == (400, "INVALID_ARGUMENT")
    google.set_policy(resource, {"version": 3, "bindings": [{"role": V, "members": ["user:a@example.org"],
                                                           "condition": COND}]})
    v3 = google.get_policy(resource)
    assert v3["version"] == 3 and v3["bindings"][0]["condition"] == COND
    v1 = google.call(lambda s: datasets_api(s).getIamPolicy(resource=resource))
    assert v1["version"] == 1
    assert v1["bindings"][0]["role"].startswith(f"{V}_withcond_") and "condition" not in v1["bindings"][0]
    status = raw_error(google.api, lambda s: datasets_api(s).setIamPolicy(
        resource=resource, body={"policy": {"bindings": [{"role": V, "members": ["alice"]}]}}))
    assert (status.code, status.status) == (400, "INVALID_ARGUMENT")


def test_tokens_come_from_the_sandbox_oauth_endpoint(options: Any, observer: Any, google: Any) -> None:
    from dataclasses import replace

    mark = observer.mark()
    client = HealthcareClient(credentials=sandbox_credentials(options.sandbox), endpoint=options.sandbox.url,
                              ca_certs=options.sandbox.ca_bundle)
    try:
        client._execute(lambda s: datasets_api(s).list(parent=google.parent), "test")
    finally:
        client.close()
    paths = [(e["method"], e["path"], e["status"]) for e in observer.since(mark)]
    assert paths[0] == ("POST", "/google/oauth2/token", 200)
    wrong = replace(options.sandbox, google_adc={**options.sandbox.google_adc, "client_secret": "not-the-secret"})
    client = HealthcareClient(credentials=sandbox_credentials(wrong), endpoint=options.sandbox.url,
                              ca_certs=options.sandbox.ca_bundle)
    try:
        with pytest.raises(ConfigurationError, match="could not obtain a Google access token"):
            client._execute(lambda s: datasets_api(s).list(parent=google.parent), "test")
    finally:
        client.close()


def test_requests_without_a_google_token_are_unauthenticated(options: Any) -> None:
    import httpx

    info = options.sandbox
    response = httpx.get(f"{info.url}/v1/projects/p-123456/locations/us/datasets/x",
                         verify=ssl.create_default_context(cafile=info.ca_bundle))
    assert response.status_code == 401
    assert response.json()["error"]["status"] == "UNAUTHENTICATED"


def test_faults_on_google_routes_answer_google_rpc_status(google: Any, observer: Any, dataset_id: str) -> None:
    google.create_dataset(dataset_id)
    observer.faults([{"status": 503, "method": "GET", "path_regex": f"/datasets/{dataset_id}$", "count": 1}])
    status = raw_error(google.api, lambda s: datasets_api(s).get(name=google.dataset_name(dataset_id)))
    assert (status.code, status.status) == (503, "UNAVAILABLE")
