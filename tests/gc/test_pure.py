"""`provision gc`'s pure parts: durations, creation times, grouping, selection, bounded concurrent teardown."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from provision.azure.errors import AzureTemporaryError
from provision.core import TemporaryError
from provision.core.durations import format_age, parse_duration
from provision.core.gc import Environment, Found, Retrier, Teardown, group, parse_created, reap, select
from provision.errors import CloudError

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0s", 0), ("0", 0), ("24h", 86400), ("90m", 5400), ("1d12h", 129600), ("1.5h", 5400), ("2w", 1209600),
     (" 10S ", 10), ("1h 30m", 5400)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "24", "h", "24x", "1h-2m", "-1h", "1h2", "abc"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "unknown"), (0, "0s"), (12.7, "12s"), (250, "4m 10s"), (3600, "1h"), (7500, "2h 5m"),
     (3 * 86400 + 4 * 3600 + 59, "3d 4h"), (-5, "0s")],
)
def test_format_age(seconds: float | None, text: str) -> None:
    assert format_age(seconds) == text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-01-31T23:59:59Z", datetime(2025, 1, 31, 23, 59, 59, tzinfo=UTC)),
        ("2025-01-31T23:59:59.123456+00:00", datetime(2025, 1, 31, 23, 59, 59, 123456, tzinfo=UTC)),
        ("2025-02-01T01:59:59+02:00", datetime(2025, 1, 31, 23, 59, 59, tzinfo=UTC)),
        ("20250131t235959z", datetime(2025, 1, 31, 23, 59, 59, tzinfo=UTC)),
        ("2025-01-31T23:59:59", datetime(2025, 1, 31, 23, 59, 59, tzinfo=UTC)),
        (datetime(2025, 1, 31), datetime(2025, 1, 31, tzinfo=UTC)),
        ("yesterday", None),
        ("", None),
        (None, None),
        (42, None),
    ],
)
def test_parse_created(value: object, expected: datetime | None) -> None:
    assert parse_created(value) == expected


def found(kind: str, env: str, hours: float | None, *, plan: str = "ohif", cloud: str = "azure") -> Found:
    created = None if hours is None else NOW - timedelta(hours=hours)
    return Found(cloud, "sub", kind, f"{kind}-{env}", f"/{kind}/{env}", plan, env, created)


def test_group_by_environment_and_age_of_the_youngest_resource() -> None:
    environments = group([
        found("app", "pr-2", 30), found("resource_group", "pr-1", 30), found("role_assignment", "pr-1", 2),
        found("role_assignment", "pr-1", None), found("dataset", "pr-1", 50, cloud="gcp"),
    ])
    assert [(e.key.cloud, e.key.env) for e in environments] == [("azure", "pr-1"), ("azure", "pr-2"), ("gcp", "pr-1")]
    first = environments[0]
    assert first.age(NOW) == 2 * 3600  # the youngest resource
    assert first.summary() == "2 role assignments, resource group"
    assert Environment(first.key).age(NOW) is None


def test_select_by_age_prefix_and_plan() -> None:
    environments = group([
        found("resource_group", "pr-1", 30), found("resource_group", "pr-2", 1), found("resource_group", "main", 99),
        found("resource_group", "pr-3", None), found("resource_group", "pr-4", 48, plan="other"),
    ])
    chosen = select(environments, now=NOW, older_than=24 * 3600, env_prefix="pr-")
    assert [e.key.env for e in chosen.selected] == ["pr-1", "pr-4"]
    assert [(e.key.env, why) for e, why in chosen.skipped] == [
        ("pr-2", "younger than the limit"), ("pr-3", "no creation time on any of its resources")]
    only = select(environments, now=NOW, older_than=0, plan="ohif")
    assert [e.key.env for e in only.selected] == ["main", "pr-1", "pr-2"]


def test_each_target_marks_its_429s_as_throttling() -> None:
    import httplib2
    from googleapiclient.errors import HttpError

    from provision.gcp.client import classify

    assert AzureTemporaryError("x", status=429, code="SubscriptionRequestsThrottled").throttled
    assert not AzureTemporaryError("x", status=503, code=None).throttled

    def google(status: int) -> Exception:
        body = b'{"error": {"code": %d, "message": "m", "status": "S"}}' % status
        return classify(HttpError(httplib2.Response({"status": status}), body), "deleting store")

    throttled, unavailable = google(429), google(503)
    assert isinstance(throttled, TemporaryError) and throttled.throttled
    assert isinstance(unavailable, TemporaryError) and not unavailable.throttled


def test_retrier_honours_retry_after_and_counts_429s() -> None:
    answers: list[Exception | None] = [AzureTemporaryError("busy", status=429, code="x", retry_after=0.05),
                                       TemporaryError("flaky", retry_after=0.01), None]
    retrier = Retrier()
    messages: list[str] = []

    async def operation() -> str:
        answer = answers.pop(0)
        if answer is not None:
            raise answer
        return "done"

    async def go() -> tuple[str, float]:
        started = asyncio.get_running_loop().time()
        result = await retrier.call(operation, what="x", limit=10, progress=messages.append)
        return result, asyncio.get_running_loop().time() - started

    result, took = asyncio.run(go())
    assert result == "done" and took >= 0.06
    assert (retrier.throttled, retrier.retried) == (1, 1)
    assert messages[0].startswith("busy; retrying in 0.1 s")


def test_reap_bounds_concurrency_isolates_failures_and_reports_in_order() -> None:
    environments = group([found("resource_group", f"pr-{n}", 30) for n in range(10)])
    running, peak = 0, 0

    async def teardown(environment: Environment, progress: object) -> Teardown:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.02)
        running -= 1
        if environment.key.env == "pr-3":
            raise CloudError("refused")
        return Teardown(deleted=list(environment.resources), kept=["x: kept"])

    events: list[str] = []
    reports = asyncio.run(reap(environments, teardown, concurrency=3,
                               on_progress=lambda key, message: events.append(f"{key.env}: {message}")))
    assert peak == 3
    assert [r.key.env for r in reports] == [e.key.env for e in environments]
    failed = [r for r in reports if r.status == "failed"]
    assert [(r.key.env, r.error) for r in failed] == [("pr-3", "refused")]
    assert all(r.deleted == 1 and r.kept == ["x: kept"] for r in reports if r.status == "deleted")
    assert "pr-3: failed: refused" in events
    with pytest.raises(ValueError):
        asyncio.run(reap(environments, teardown, concurrency=0))
