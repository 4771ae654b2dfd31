"""Fixtures for the Google Cloud tests: the session sandbox seen through its control endpoints, and a real
google-api-python-client connected to it over HTTPS (TLS verification on) for seeding and inspecting."""

from __future__ import annotations

import ssl
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from provision.cli.target import connection_of
from provision.core.target import Connection
from provision.gcp.client import HealthcareClient, open_client
from provision.gcp.resources import datasets_api


class Observer:
    """The sandbox's request log, config and fault rules, for assertions about what the tool sent."""

    def __init__(self, info: Any) -> None:
        self.info = info
        self.http = httpx.Client(base_url=info.url, verify=ssl.create_default_context(cafile=info.ca_bundle),
                                 timeout=30)

    def log(self) -> list[dict[str, Any]]:
        body = self.http.get("/_sandbox/log").raise_for_status().json()
        entries = body.get("entries", body.get("requests", [])) if isinstance(body, dict) else body
        return [e for e in entries if not str(e.get("path", "")).startswith("/_sandbox")]

    def mark(self) -> int:
        return len(self.log())

    def since(self, mark: int, *, google_only: bool = True) -> list[dict[str, Any]]:
        entries = self.log()[mark:]
        if google_only:
            entries = [e for e in entries if str(e["path"]).startswith(("/v1/", "/google/"))]
        return entries

    @staticmethod
    def writes(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [e for e in entries if e["method"] != "GET" and not str(e["path"]).startswith("/google/oauth2")]

    def config(self, **values: Any) -> None:
        self.http.post("/_sandbox/config", json=values).raise_for_status()

    def gcp_config(self, **values: Any) -> dict[str, Any]:
        return dict(self.http.post("/_sandbox/gcp/config", json=values).raise_for_status().json())

    def faults(self, rules: list[dict[str, Any]]) -> None:
        self.http.post("/_sandbox/faults", json=rules).raise_for_status()

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def observer(sandbox: Any) -> Iterator[Observer]:
    """The session sandbox, with short operations and no "not initialized" window unless a test asks."""
    watcher = Observer(sandbox.info)
    before = watcher.http.get("/_sandbox/config").raise_for_status().json()
    watcher.config(lro_seconds=0.1)
    watcher.gcp_config(dataset_init_seconds=0, iam_races=[])
    yield watcher
    watcher.http.delete("/_sandbox/faults")
    watcher.config(lro_seconds=before["lro_seconds"])
    watcher.gcp_config(dataset_init_seconds=0, iam_races=[])
    watcher.close()


@pytest.fixture
def options(sandbox: Any) -> Connection:
    return connection_of(sandbox.info)


@pytest.fixture
def api(options: Connection) -> Iterator[HealthcareClient]:
    client = open_client(options)
    yield client
    client.close()


@pytest.fixture
def dataset_id() -> str:
    """A fresh dataset per test: the sandbox is shared by the whole session."""
    return f"t-{uuid.uuid4().hex[:10]}"


PROJECT, LOCATION = "sandbox-project", "us-central1"


class Google:
    """Seed and inspect the sandbox through the real google-api-python-client (synchronous calls)."""

    project = PROJECT
    location = LOCATION
    parent = f"projects/{PROJECT}/locations/{LOCATION}"

    def __init__(self, api: HealthcareClient) -> None:
        self.api = api

    @staticmethod
    def dataset_name(dataset: str) -> str:
        return f"projects/{PROJECT}/locations/{LOCATION}/datasets/{dataset}"

    def call(self, make: Any) -> Any:
        return self.api._execute(make, "test call")

    def create_dataset(self, dataset: str) -> None:
        operation = self.call(lambda s: datasets_api(s).create(parent=self.parent, datasetId=dataset, body={}))
        while not operation.get("done"):
            time.sleep(0.05)
            operation = self.call(lambda s, n=operation["name"]: datasets_api(s).operations().get(name=n))

    def create_store(self, dataset: str, store: str, labels: dict[str, str] | None = None) -> str:
        body = {"labels": labels} if labels else {}
        self.call(lambda s: datasets_api(s).dicomStores().create(
            parent=self.dataset_name(dataset), dicomStoreId=store, body=body))
        return f"{self.dataset_name(dataset)}/dicomStores/{store}"

    def exists(self, name: str) -> bool:
        from provision.gcp.client import NotFound

        service = (lambda s: datasets_api(s).dicomStores()) if "/dicomStores/" in name else datasets_api
        try:
            self.call(lambda s: service(s).get(name=name))
        except NotFound:
            return False
        return True

    def get_policy(self, resource: str) -> dict[str, Any]:
        service = (lambda s: datasets_api(s).dicomStores()) if "/dicomStores/" in resource else datasets_api
        return dict(self.call(lambda s: service(s).getIamPolicy(resource=resource, options_requestedPolicyVersion=3)))

    def set_policy(self, resource: str, policy: dict[str, Any]) -> dict[str, Any]:
        service = (lambda s: datasets_api(s).dicomStores()) if "/dicomStores/" in resource else datasets_api
        return dict(self.call(lambda s: service(s).setIamPolicy(resource=resource, body={"policy": policy})))

    @staticmethod
    def members(policy: dict[str, Any], role: str, *, conditional: bool = False) -> list[str]:
        return sorted(
            m
            for b in policy.get("bindings", [])
            if b["role"] == role and bool(b.get("condition")) == conditional
            for m in b["members"]
        )


@pytest.fixture
def google(api: HealthcareClient) -> Google:
    return Google(api)
