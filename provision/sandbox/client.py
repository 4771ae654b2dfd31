"""`SandboxControl`: a small httpx client for the sandbox's `/_sandbox/...` control API (used by tests)."""

from __future__ import annotations

import ssl
import time
from typing import Any

import httpx

from .info import SandboxInfo


class SandboxControl:
    """Read the request log, install faults, change run-time config, reset the world."""

    def __init__(self, info: SandboxInfo, *, timeout: float = 10.0) -> None:
        self.info = info
        self._client = httpx.Client(
            base_url=info.url, verify=ssl.create_default_context(cafile=info.ca_bundle), timeout=timeout
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> SandboxControl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ok(self, response: httpx.Response) -> httpx.Response:
        if response.status_code >= 400:
            raise ValueError(f"sandbox control {response.request.method} {response.request.url.path}: "
                             f"{response.status_code} {response.text}")
        return response

    def log(self, *, since: int | None = None) -> list[dict[str, Any]]:
        """Every API request so far: `{seq, method, path, query, status, time, duration_ms[, fault]}`."""
        params = {"since": str(since)} if since is not None else None
        return list(self._ok(self._client.get("/_sandbox/log", params=params)).json())

    def clear_log(self) -> None:
        self._ok(self._client.delete("/_sandbox/log"))

    def add_fault(
        self,
        status: int | str,
        *,
        method: str | None = None,
        path_regex: str | None = None,
        retry_after: float | None = None,
        count: int | None = None,
        fraction: float | None = None,
        body: Any = None,
        after: bool | None = None,
        skip: int | None = None,
        delay: float | None = None,
    ) -> dict[str, Any]:
        """Install a fault rule; returns it with its `id`. `status` may be "drop", "hold" or "delay"; `after`
        fires it once the request's change is saved, `skip` lets that many matching requests through first."""
        rule: dict[str, Any] = {"status": status}
        for key, value in (("method", method), ("path_regex", path_regex), ("retry_after", retry_after),
                           ("count", count), ("fraction", fraction), ("body", body), ("after", after),
                           ("skip", skip), ("delay", delay)):
            if value is not None:
                rule[key] = value
        return dict(self._ok(self._client.post("/_sandbox/faults", json=rule)).json()[0])

    def fault(self, rule_id: str) -> dict[str, Any] | None:
        """One installed rule, as it is now (None once it is used up or deleted)."""
        return next((rule for rule in self.faults() if rule["id"] == rule_id), None)

    def wait_fired(self, rule_id: str, *, timeout: float = 60.0, interval: float = 0.02) -> dict[str, Any] | None:
        """Poll until the rule has fired (a "hold" is then in force); the rule, or None if it did not fire in
        time (or is gone: a counted rule that fired its last time)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rule = self.fault(rule_id)
            if rule is None or rule["hits"]:
                return rule
            time.sleep(interval)
        return None

    def remove_fault(self, rule_id: str) -> None:
        """Delete one rule; deleting a "hold" that fired ends the hold (what it held is dropped)."""
        self._ok(self._client.delete(f"/_sandbox/faults/{rule_id}"))

    def faults(self) -> list[dict[str, Any]]:
        return list(self._ok(self._client.get("/_sandbox/faults")).json())

    def clear_faults(self) -> None:
        self._ok(self._client.delete("/_sandbox/faults"))

    def fail_operations(self, resource_regex: str, *, count: int | None = None, code: str | None = None,
                        message: str | None = None) -> dict[str, Any]:
        """The next `count` ARM operations on a matching resource id end Failed (/_sandbox/operation-failures)."""
        rule: dict[str, Any] = {"resource_regex": resource_regex}
        for key, value in (("count", count), ("code", code), ("message", message)):
            if value is not None:
                rule[key] = value
        return dict(self._ok(self._client.post("/_sandbox/operation-failures", json=rule)).json())

    def configure(self, **values: Any) -> dict[str, Any]:
        """Set `latency_ms`, `lro_seconds`, `principal_delay_seconds`, `principal_delay_strict`, `dicom_sp`,
        `fault_seed`, `graph_replication_seconds`, `graph_strict_uniqueness`, `test_users`."""
        return dict(self._ok(self._client.post("/_sandbox/config", json=values)).json())

    def config(self) -> dict[str, Any]:
        return dict(self._ok(self._client.get("/_sandbox/config")).json())

    def throttling(self, **values: Any) -> dict[str, Any]:
        """ARM's throttling (/_sandbox/throttling): with `values` (`enabled`, `limits`, `defaults`) change it; the
        state either way (limits, what was admitted and throttled, what is left)."""
        if values:
            return dict(self._ok(self._client.post("/_sandbox/throttling", json=values)).json())
        return dict(self._ok(self._client.get("/_sandbox/throttling")).json())

    def reset(self) -> None:
        """Forget all resources and directory objects (tenant, subscription and credentials stay)."""
        self._ok(self._client.post("/_sandbox/reset"))
