"""The control API: request log, fault rules (honoured by the SDKs' retry policies), config, latency."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from provision.sandbox import SandboxControl, SandboxInfo

from .conftest import ARM_SCOPE, make_credential


def rg_statuses(control: SandboxControl, name: str) -> list[Any]:
    return [e["status"] for e in control.log() if e["path"].lower().endswith(f"/resourcegroups/{name}")]


def test_arm_throttling_then_success_is_retried_by_azure_core(azure: Any, sandbox_control: SandboxControl) -> None:
    azure.resources.resource_groups.create_or_update("rg-throttle", {"location": "westus2"})
    rule = sandbox_control.add_fault(429, method="GET", path_regex="/resourcegroups/rg-throttle$", retry_after=1,
                                     count=1)
    began = time.perf_counter()
    assert azure.resources.resource_groups.get("rg-throttle").name == "rg-throttle"
    assert time.perf_counter() - began >= 0.9  # Retry-After was honoured
    assert rg_statuses(sandbox_control, "rg-throttle")[-2:] == [429, 200]
    assert sandbox_control.faults() == []  # count exhausted
    throttled = next(e for e in sandbox_control.log() if e["status"] == 429)
    assert throttled["fault"] == rule["id"]


def test_arm_fault_bodies(http: Any, info: SandboxInfo, arm_token: str, sandbox_control: SandboxControl) -> None:
    sandbox_control.add_fault(429, path_regex="/resourcegroups$", retry_after=7, count=1)
    sandbox_control.add_fault(500, path_regex="/resourcegroups$", count=1)
    url = f"/subscriptions/{info.subscription_id}/resourcegroups?api-version=2021-04-01"
    auth = {"Authorization": f"Bearer {arm_token}"}
    throttled = http.get(url, headers=auth)
    assert throttled.status_code == 429 and throttled.headers["retry-after"] == "7"
    assert throttled.json()["error"]["code"] == "SubscriptionRequestsThrottled"
    failed = http.get(url, headers=auth)
    assert (failed.status_code, failed.json()["error"]["code"]) == (500, "InternalServerError")
    assert http.get(url, headers=auth).status_code == 200


def test_custom_fault_body_and_fraction(http: Any, info: SandboxInfo, arm_token: str,
                                        sandbox_control: SandboxControl) -> None:
    url = f"/subscriptions/{info.subscription_id}?api-version=2022-12-01"
    auth = {"Authorization": f"Bearer {arm_token}"}
    never = sandbox_control.add_fault(503, fraction=0.0)
    assert http.get(url, headers=auth).status_code == 200
    sandbox_control.clear_faults()
    sandbox_control.add_fault(503, body={"error": {"code": "Custom", "message": "m"}}, count=1)
    response = http.get(url, headers=auth)
    assert (response.status_code, response.json()) == (503, {"error": {"code": "Custom", "message": "m"}})
    assert never["hits"] == 0


def test_dropped_connection_is_retried(azure: Any, sandbox_control: SandboxControl) -> None:
    azure.resources.resource_groups.create_or_update("rg-drop", {"location": "westus2"})
    sandbox_control.add_fault("drop", method="GET", path_regex="/resourcegroups/rg-drop$", count=1)
    assert azure.resources.resource_groups.get("rg-drop").name == "rg-drop"
    assert rg_statuses(sandbox_control, "rg-drop")[-2:] == ["drop", 200]


def test_dropped_connection_on_the_wire(http: Any, info: SandboxInfo, sandbox_control: SandboxControl) -> None:
    sandbox_control.add_fault("drop", path_regex="openid-configuration", count=1)
    with pytest.raises(httpx.TransportError):
        http.get(f"/{info.tenant_id}/v2.0/.well-known/openid-configuration")
    assert http.get(f"/{info.tenant_id}/v2.0/.well-known/openid-configuration").status_code == 200


def test_token_endpoint_faults_are_retried_by_azure_identity(info: SandboxInfo,
                                                            sandbox_control: SandboxControl) -> None:
    sandbox_control.add_fault(503, method="POST", path_regex="/oauth2/v2.0/token$", count=1)
    assert make_credential(info).get_token(ARM_SCOPE).token
    statuses = [e["status"] for e in sandbox_control.log() if e["path"].endswith("/token")]
    assert statuses == [503, 200]


def test_log_records_api_calls_only(http: Any, info: SandboxInfo, sandbox_control: SandboxControl) -> None:
    http.get(f"/{info.tenant_id}/v2.0/.well-known/openid-configuration", params={"x": "1"})
    sandbox_control.config()
    entries = sandbox_control.log()
    assert [e["path"] for e in entries] == [f"/{info.tenant_id}/v2.0/.well-known/openid-configuration"]
    entry = entries[0]
    assert {"method", "path", "query", "status", "time", "seq", "duration_ms"} <= set(entry)
    assert (entry["method"], entry["query"], entry["status"]) == ("GET", "x=1", 200)
    assert entry["time"].endswith("Z")
    assert sandbox_control.log(since=entry["seq"]) == []
    sandbox_control.clear_log()
    assert sandbox_control.log() == []


def test_latency_is_added(http: Any, info: SandboxInfo, sandbox_control: SandboxControl) -> None:
    sandbox_control.configure(latency_ms=150)
    began = time.perf_counter()
    http.get(f"/{info.tenant_id}/discovery/v2.0/keys")
    assert time.perf_counter() - began >= 0.15
    began = time.perf_counter()
    sandbox_control.config()  # control calls are not delayed
    assert time.perf_counter() - began < 0.15


def test_lro_duration_is_configurable(azure: Any, sandbox_control: SandboxControl) -> None:
    from azure.mgmt.healthcareapis.models import DicomService, Workspace

    sandbox_control.configure(lro_seconds=0.05)
    azure.resources.resource_groups.create_or_update("rg-fast", {"location": "westus2"})
    azure.healthcare.workspaces.begin_create_or_update("rg-fast", "wsfast", Workspace(location="westus2")).result()
    began = time.perf_counter()
    azure.healthcare.dicom_services.begin_create_or_update("rg-fast", "wsfast", "dfast", DicomService(
        location="westus2")).result()
    assert time.perf_counter() - began < 0.3


def test_bad_control_requests(sandbox_control: SandboxControl) -> None:
    with pytest.raises(ValueError, match="status"):
        sandbox_control.add_fault(200)
    with pytest.raises(ValueError, match="fraction"):
        sandbox_control.add_fault(500, fraction=2)
    with pytest.raises(ValueError, match="unknown config"):
        sandbox_control.configure(colour="blue")
    assert sandbox_control.faults() == []


# --- after-commit faults: the write is made, its answer is lost ------------------------------------------------

def _rg_url(info: SandboxInfo, name: str) -> str:
    return f"/subscriptions/{info.subscription_id}/resourcegroups/{name}?api-version=2021-04-01"


def _rg_exists(http: Any, info: SandboxInfo, auth: dict[str, str], name: str) -> bool:
    return bool(http.get(_rg_url(info, name), headers=auth).status_code == 200)


def test_the_log_says_which_requests_committed(http: Any, info: SandboxInfo, arm_token: str,
                                               sandbox_control: SandboxControl) -> None:
    auth = {"Authorization": f"Bearer {arm_token}"}
    http.put(_rg_url(info, "rg-log"), headers=auth, json={"location": "westus2"})
    http.put(_rg_url(info, "rg-log"), headers=auth, json={"location": "nowhere"})  # refused: nothing changes
    http.get(_rg_url(info, "rg-log"), headers=auth)
    entries = [e for e in sandbox_control.log() if "/resourcegroups/" in e["path"]]
    assert [(e["method"], e["status"], e["committed"]) for e in entries] == [
        ("PUT", 201, True), ("PUT", 400, False), ("GET", 200, False)]


@pytest.mark.parametrize("status", ["drop", 500])
def test_an_after_rule_commits_the_write_and_loses_its_answer(
        status: Any, http: Any, info: SandboxInfo, arm_token: str, sandbox_control: SandboxControl) -> None:
    auth = {"Authorization": f"Bearer {arm_token}"}
    rule = sandbox_control.add_fault(status, method="PUT", path_regex="/resourcegroups/rg-lost$", after=True,
                                     count=1)
    if status == "drop":
        with pytest.raises(httpx.TransportError):
            http.put(_rg_url(info, "rg-lost"), headers=auth, json={"location": "westus2"})
    else:
        answer = http.put(_rg_url(info, "rg-lost"), headers=auth, json={"location": "westus2"})
        assert (answer.status_code, answer.json()["error"]["code"]) == (500, "InternalServerError")
    assert _rg_exists(http, info, auth, "rg-lost"), "the write was made before the answer was lost"
    [put] = [e for e in sandbox_control.log() if e["method"] == "PUT"]
    assert (put["status"], put["committed"], put["fault"]) == (status, True, rule["id"])


def test_an_after_rule_fires_only_on_writes_that_commit_and_skips_the_first_ones(
        http: Any, info: SandboxInfo, arm_token: str, sandbox_control: SandboxControl) -> None:
    auth = {"Authorization": f"Bearer {arm_token}"}
    sandbox_control.add_fault(503, after=True, skip=2, count=1)
    assert http.put(_rg_url(info, "rg-a"), headers=auth, json={"location": "nowhere"}).status_code == 400
    assert http.get(_rg_url(info, "rg-a"), headers=auth).status_code == 404  # reads never commit
    assert http.put(_rg_url(info, "rg-a"), headers=auth, json={"location": "westus2"}).status_code == 201  # 1st
    assert http.put(_rg_url(info, "rg-b"), headers=auth, json={"location": "westus2"}).status_code == 201  # 2nd
    assert http.put(_rg_url(info, "rg-c"), headers=auth, json={"location": "westus2"}).status_code == 503  # 3rd
    assert _rg_exists(http, info, auth, "rg-c")
    assert http.put(_rg_url(info, "rg-d"), headers=auth, json={"location": "westus2"}).status_code == 201
    assert sandbox_control.faults() == []


def test_a_delayed_answer_comes_late_after_the_write(http: Any, info: SandboxInfo, arm_token: str,
                                                     sandbox_control: SandboxControl) -> None:
    auth = {"Authorization": f"Bearer {arm_token}"}
    sandbox_control.add_fault("delay", delay=0.5, after=True, count=1)
    began = time.perf_counter()
    assert http.put(_rg_url(info, "rg-late"), headers=auth, json={"location": "westus2"}).status_code == 201
    assert time.perf_counter() - began >= 0.5


def test_a_hold_freezes_the_world_right_after_the_write_until_it_is_deleted(
        info: SandboxInfo, arm_token: str, sandbox_control: SandboxControl) -> None:
    """What a client killed right after its k-th write leaves: that write, and nothing it sent afterwards."""
    import concurrent.futures
    import ssl

    auth = {"Authorization": f"Bearer {arm_token}"}
    rule = sandbox_control.add_fault("hold", after=True, skip=1)
    context = ssl.create_default_context(cafile=info.ca_bundle)

    def put(name: str) -> Any:
        with httpx.Client(base_url=info.url, verify=context, timeout=30) as client:
            return client.put(_rg_url(info, name), headers=auth, json={"location": "westus2"})

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        assert put("rg-1").status_code == 201
        second = pool.submit(put, "rg-2")  # committed, then held
        fired = sandbox_control.wait_fired(rule["id"], timeout=10)
        assert fired is not None and fired["holding"]
        later = [pool.submit(put, "rg-3"), pool.submit(put, "rg-4")]  # held before the API sees them
        time.sleep(0.3)
        assert not second.done() and not any(f.done() for f in later)
        sandbox_control.remove_fault(rule["id"])
        for future in (second, *later):
            with pytest.raises(httpx.TransportError):
                future.result(timeout=10)
    with httpx.Client(base_url=info.url, verify=context, timeout=30) as client:
        present = [n for n in ("rg-1", "rg-2", "rg-3", "rg-4") if _rg_exists(client, info, auth, n)]
    assert present == ["rg-1", "rg-2"]
    assert put("rg-5").status_code == 201  # the hold is over
    statuses = {e["path"].rsplit("/", 1)[-1]: e["status"] for e in sandbox_control.log() if e["method"] == "PUT"}
    assert statuses == {"rg-1": 201, "rg-2": "drop", "rg-3": "drop", "rg-4": "drop", "rg-5": 201}


def test_a_pause_holds_requests_until_it_is_deleted_then_lets_them_all_go(
        info: SandboxInfo, arm_token: str, sandbox_control: SandboxControl) -> None:
    import concurrent.futures
    import ssl

    auth = {"Authorization": f"Bearer {arm_token}"}
    rule = sandbox_control.add_fault("pause", method="PUT")
    context = ssl.create_default_context(cafile=info.ca_bundle)

    def put(name: str) -> int:
        with httpx.Client(base_url=info.url, verify=context, timeout=30) as client:
            return client.put(_rg_url(info, name), headers=auth, json={"location": "westus2"}).status_code

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        waiting = [pool.submit(put, "rg-p1"), pool.submit(put, "rg-p2")]
        deadline = time.monotonic() + 10
        while (sandbox_control.fault(rule["id"]) or {}).get("hits", 0) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not any(f.done() for f in waiting)
        sandbox_control.remove_fault(rule["id"])
        assert sorted(f.result(timeout=10) for f in waiting) == [201, 201]


def test_bad_after_rules(http: Any, sandbox_control: SandboxControl) -> None:
    with pytest.raises(ValueError, match="delay"):
        sandbox_control.add_fault("delay")
    with pytest.raises(ValueError, match="skip"):
        sandbox_control.add_fault(500, skip=-1)
    with pytest.raises(ValueError, match="pause"):
        sandbox_control.add_fault("pause", after=True)
    refused = http.post("/_sandbox/faults", json={"status": 500, "after": 1})
    assert (refused.status_code, refused.json()) == (400, {"error": "after must be true or false"})
    assert sandbox_control.faults() == []


# --- long-running operations that fail ------------------------------------------------------------------------

def test_an_operation_can_be_made_to_fail(azure: Any, http: Any, sandbox_control: SandboxControl) -> None:
    from azure.core.exceptions import HttpResponseError
    from azure.mgmt.healthcareapis.models import DicomService, Workspace

    azure.resources.resource_groups.create_or_update("rg-fail", {"location": "westus2"})
    azure.healthcare.workspaces.begin_create_or_update("rg-fail", "wsfail", Workspace(location="westus2")).result()
    rule = sandbox_control.fail_operations("/dicomservices/dfail$", code="QuotaExceeded", message="no capacity")
    assert (rule["count"], rule["code"]) == (1, "QuotaExceeded")
    with pytest.raises(HttpResponseError, match="no capacity"):
        azure.healthcare.dicom_services.begin_create_or_update(
            "rg-fail", "wsfail", "dfail", DicomService(location="westus2")).result()
    failed = azure.healthcare.dicom_services.get("rg-fail", "wsfail", "dfail")
    assert (failed.provisioning_state, failed.service_url) == ("Failed", "")
    assert http.get("/_sandbox/operation-failures").json() == []  # used up
    # a PUT provisions it again
    repaired = azure.healthcare.dicom_services.begin_create_or_update(
        "rg-fail", "wsfail", "dfail", DicomService(location="westus2")).result()
    assert repaired.provisioning_state == "Succeeded" and repaired.service_url
    assert http.post("/_sandbox/operation-failures", json={"count": 1}).status_code == 400


# --- Graph's replication ----------------------------------------------------------------------------------------

def test_new_directory_objects_are_invisible_to_reads_while_graph_replicates(
        http: Any, graph_token: str, sandbox_control: SandboxControl) -> None:
    auth = {"Authorization": f"Bearer {graph_token}"}
    sandbox_control.configure(graph_replication_seconds=0.6)
    created = http.post("/v1.0/applications", headers=auth, json={"displayName": "late"}).json()
    sp = http.post("/v1.0/servicePrincipals", headers=auth, json={"appId": created["appId"]})
    assert sp.status_code == 201
    assert http.get(f"/v1.0/applications/{created['id']}", headers=auth).status_code == 404
    assert http.get(f"/v1.0/servicePrincipals/{sp.json()['id']}", headers=auth).status_code == 404
    listed = http.get("/v1.0/servicePrincipals", headers=auth, params={"$filter": f"appId eq '{created['appId']}'"})
    assert listed.json()["value"] == []
    # the writes see it already: a second principal for the app is refused
    again = http.post("/v1.0/servicePrincipals", headers=auth, json={"appId": created["appId"]})
    assert (again.status_code, again.json()["error"]["code"]) == (409, "Request_MultipleObjectsWithSameKeyValue")
    time.sleep(0.7)
    assert http.get(f"/v1.0/applications/{created['id']}", headers=auth).status_code == 200
    assert len(http.get("/v1.0/servicePrincipals", headers=auth,
                        params={"$filter": f"appId eq '{created['appId']}'"}).json()["value"]) == 1


def test_without_strict_uniqueness_a_racing_principal_gets_through(
        http: Any, graph_token: str, sandbox_control: SandboxControl) -> None:
    auth = {"Authorization": f"Bearer {graph_token}"}
    sandbox_control.configure(graph_replication_seconds=0.5, graph_strict_uniqueness=False)
    app = http.post("/v1.0/applications", headers=auth, json={"displayName": "raced"}).json()
    first = http.post("/v1.0/servicePrincipals", headers=auth, json={"appId": app["appId"]})
    second = http.post("/v1.0/servicePrincipals", headers=auth, json={"appId": app["appId"]})
    assert (first.status_code, second.status_code) == (201, 201)
    time.sleep(0.6)
    third = http.post("/v1.0/servicePrincipals", headers=auth, json={"appId": app["appId"]})
    assert third.status_code == 409  # replicated: the duplicate is seen now
    listed = http.get("/v1.0/servicePrincipals", headers=auth, params={"$filter": f"appId eq '{app['appId']}'"})
    assert len(listed.json()["value"]) == 2
    assert http.delete(f"/v1.0/applications/{app['id']}", headers=auth).status_code == 204
    assert http.get("/v1.0/servicePrincipals", headers=auth,
                    params={"$filter": f"appId eq '{app['appId']}'"}).json()["value"] == []


def test_test_users_fill_the_directory_for_plans_with_many_access_entries(
        http: Any, graph_token: str, sandbox_control: SandboxControl) -> None:
    auth = {"Authorization": f"Bearer {graph_token}"}
    found = http.get("/v1.0/users", headers=auth, params={"$filter": "mail eq 'user3@contoso.com'"})
    assert found.json()["value"] == []
    sandbox_control.configure(test_users=3)
    found = http.get("/v1.0/users", headers=auth, params={"$filter": "mail eq 'user3@contoso.com'"}).json()["value"]
    assert [user["userPrincipalName"].split("@")[0] for user in found] == ["user3"]
    missing = http.get("/v1.0/users", headers=auth, params={"$filter": "mail eq 'user4@contoso.com'"})
    assert missing.json()["value"] == []
    sandbox_control.reset()  # a reset keeps them: the config still asks for them
    listed = http.get("/v1.0/users", headers=auth, params={"$filter": "startswith(mail, 'user')"})
    assert len(listed.json()["value"]) == 3
