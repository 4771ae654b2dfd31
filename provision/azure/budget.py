"""ARM's request limits kept on the client side: one token bucket per kind of request, shared by every client of
a subscription, fed by what ARM says is left.

ARM throttles each subscription (per principal and region) with token buckets (facts/azure.md): reads 250 at
once refilled at 25 per second, writes and deletes 200 / 10 per second. A plan of 200 access entries sends 206
writes: without a budget the last ones would meet 429s with a Retry-After of at least a second; with it they
wait a tenth of a second each. ARM's `x-ms-ratelimit-remaining-subscription-{kind}` says how many requests the
bucket still holds (other clients of the subscription spend from it too), and the local bucket never believes
in more than that. The wait lends the engine's slot to others (`provision.core.limits.idle`).
"""

from __future__ import annotations

from typing import Any

from azure.core.pipeline.policies import AsyncHTTPPolicy

from provision.core.limits import TokenBucket

#: ARM's per-subscription buckets: (burst, refill per second), facts/azure.md
ARM_LIMITS = {"reads": (250.0, 25.0), "writes": (200.0, 10.0), "deletes": (200.0, 10.0)}


def kind_of(method: str) -> str:
    method = method.upper()
    if method in ("GET", "HEAD"):
        return "reads"
    return "deletes" if method == "DELETE" else "writes"


def arm_buckets(limits: dict[str, tuple[float, float]] | None = None) -> dict[str, TokenBucket]:
    """One subscription's buckets, to share between its clients' `ArmBudget`s."""
    return {kind: TokenBucket(burst, rate) for kind, (burst, rate) in (limits or ARM_LIMITS).items()}


class ArmBudget(AsyncHTTPPolicy):
    """A per-call policy of an azure-mgmt client: take a token of the request's kind before sending it. One per
    client (a pipeline chains its own policy objects), the buckets shared."""

    def __init__(self, buckets: dict[str, TokenBucket]) -> None:
        super().__init__()
        self.buckets = buckets

    async def send(self, request: Any) -> Any:
        kind = kind_of(request.http_request.method)
        bucket = self.buckets[kind]
        await bucket.take()
        response = await self.next.send(request)
        left = response.http_response.headers.get(f"x-ms-ratelimit-remaining-subscription-{kind}")
        if left is not None and left.strip().isdigit():
            bucket.observe(float(left))
        return response
