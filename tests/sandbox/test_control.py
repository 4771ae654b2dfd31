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
