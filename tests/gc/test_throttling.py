"""The sandbox's ARM throttling: a token bucket per subscription, 429 + Retry-After as Azure answers, off unless
switched on through /_sandbox/throttling."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from provision.sandbox.azure.throttling import AZURE_LIMITS, ArmThrottle, Limit, TokenBucket, kind_of


def test_bucket_starts_full_refills_at_its_rate_and_caps_at_its_burst() -> None:
    bucket = TokenBucket.full(Limit(burst=3, rate=2), now=100.0)
    assert [bucket.take(100.0) for _ in range(3)] == [None, None, None]
    assert bucket.take(100.0) == pytest.approx(0.5)  # one token takes 1/rate seconds
    assert bucket.take(100.25) == pytest.approx(0.25)  # a refused request takes nothing
    assert bucket.take(100.5) is None
    assert bucket.remaining(1000.0) == 3


def test_throttle_keeps_one_bucket_per_subscription_and_kind() -> None:
    throttle = ArmThrottle(enabled=True, limits={"reads": Limit(1, 1), "writes": Limit(1, 1), "deletes": Limit(1, 1)})
    assert throttle.admit("sub-a", "GET", 0.0) is None
    assert throttle.admit("sub-a", "HEAD", 0.0) == ("reads", 1.0)
    assert throttle.admit("SUB-A", "PUT", 0.0) is None
    assert throttle.admit("sub-a", "DELETE", 0.0) is None
    assert throttle.admit("sub-b", "GET", 0.0) is None
    assert (throttle.admitted["reads"], throttle.throttled["reads"]) == (2, 1)
    assert ArmThrottle().admit("sub-a", "GET", 0.0) is None  # off: everything goes through


def test_configure_validates_and_resets() -> None:
    throttle = ArmThrottle()
    throttle.configure({"enabled": True, "limits": {"reads": {"burst": 5}}}, 0.0)
    assert throttle.enabled and throttle.limits["reads"] == Limit(5, 25) and throttle.limits["writes"] == Limit(200, 10)
    throttle.configure({"defaults": True}, 0.0)
    assert throttle.limits == AZURE_LIMITS
    for bad in ({"enable": True}, {"limits": {"lists": {}}}, {"limits": {"reads": {"burst": 0}}}, {"enabled": "yes"},
                {"limits": {"reads": {"rate": "fast"}}}):
        with pytest.raises(ValueError):
            throttle.configure(bad, 0.0)
    assert [kind_of(m) for m in ("get", "HEAD", "POST", "PATCH", "PUT", "DELETE")] == [
        "reads", "reads", "writes", "writes", "writes", "deletes"]


def test_the_front_door_answers_429_with_retry_after(arm: httpx.Client, clean_sandbox: Any) -> None:
    groups = f"/subscriptions/{clean_sandbox.info.subscription_id}/resourcegroups?api-version=2022-09-01"
    assert arm.get("/_sandbox/throttling").json()["enabled"] is False
    assert all(arm.get(groups).status_code == 200 for _ in range(5))  # off by default

    state = arm.post("/_sandbox/throttling", json={"enabled": True, "limits": {"reads": {"burst": 2, "rate": 4}}})
    assert state.json()["remaining"]["reads"] == 2
    admitted = [arm.get(groups) for _ in range(2)]
    assert [r.status_code for r in admitted] == [200, 200]
    # what the bucket has left after each, as ARM's token-bucket throttling reports it
    assert [r.headers["x-ms-ratelimit-remaining-subscription-reads"] for r in admitted] == ["1", "0"]
    refused = arm.get(groups)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"
    assert refused.headers["x-ms-ratelimit-remaining-subscription-reads"] == "0"
    assert refused.json()["error"]["code"] == "SubscriptionRequestsThrottled"
    # writes have their own bucket
    put = arm.put(groups.replace("resourcegroups?", "resourcegroups/rg-t?"), json={"location": "westeurope"})
    assert put.status_code == 201
    time.sleep(0.3)  # 4 per second: a token is back after 0.25 s
    assert arm.get(groups).status_code == 200
    counts = arm.get("/_sandbox/throttling").json()
    assert counts["throttled"] == {"reads": 1, "writes": 0, "deletes": 0}
    assert counts["admitted"]["reads"] == 3 and counts["admitted"]["writes"] == 1
    assert arm.post("/_sandbox/throttling", json={"bogus": 1}).status_code == 400
