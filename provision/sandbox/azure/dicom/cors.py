"""CORS of a DICOM service: exactly its `corsConfiguration`, with ASP.NET Core's semantics (the service is
ASP.NET Core).

A preflight from a listed origin (or with `*`) whose method and headers are allowed gets
`Access-Control-Allow-*` headers; any other preflight gets 204 without them, so the browser blocks the call.
Actual responses, errors included, carry `Access-Control-Allow-Origin` only for allowed origins. Pure
functions of the configuration and the request's headers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# ASP.NET Core's CorsConstants.SimpleRequestHeaders: allowed in a preflight whatever the policy says.
SIMPLE_REQUEST_HEADERS = frozenset({"origin", "accept", "accept-language", "content-language"})


def _listed(values: Iterable[str], value: str, *, casefold: bool = True) -> bool:
    items = list(values)
    if "*" in items:
        return True
    return value.lower() in {v.lower() for v in items} if casefold else value in items


def origin_allowed(cors: Mapping[str, Any], origin: str) -> bool:
    return bool(origin) and _listed(cors.get("origins") or [], origin)


def _allow_origin_value(cors: Mapping[str, Any], origin: str) -> str:
    # AllowAnyOrigin answers "*" unless credentials are allowed (then the origin is echoed, as ASP.NET does).
    if "*" in (cors.get("origins") or []) and not cors.get("allowCredentials"):
        return "*"
    return origin


def preflight_headers(
    cors: Mapping[str, Any], origin: str, request_method: str, request_headers: str | None
) -> dict[str, str] | None:
    """The CORS headers of a preflight answer, or None when the policy refuses it (pure)."""
    if not origin_allowed(cors, origin):
        return None
    if not _listed(cors.get("methods") or [], request_method, casefold=False):
        return None
    requested = [h.strip() for h in (request_headers or "").split(",") if h.strip()]
    allowed_headers = cors.get("headers") or []
    if "*" not in allowed_headers:
        permitted = {h.lower() for h in allowed_headers} | SIMPLE_REQUEST_HEADERS
        if any(h.lower() not in permitted for h in requested):
            return None
    headers = {
        "Access-Control-Allow-Origin": _allow_origin_value(cors, origin),
        "Access-Control-Allow-Methods": request_method,
    }
    if requested:
        headers["Access-Control-Allow-Headers"] = ",".join(requested)
    if cors.get("allowCredentials"):
        headers["Access-Control-Allow-Credentials"] = "true"
    if cors.get("maxAge") is not None:
        headers["Access-Control-Max-Age"] = str(cors["maxAge"])
    if headers["Access-Control-Allow-Origin"] != "*":
        headers["Vary"] = "Origin"
    return headers


def response_cors_headers(cors: Mapping[str, Any], origin: str | None) -> dict[str, str]:
    """CORS headers of an actual (non-preflight) response (pure)."""
    if not origin or not origin_allowed(cors, origin):
        return {}
    headers = {"Access-Control-Allow-Origin": _allow_origin_value(cors, origin)}
    if cors.get("allowCredentials"):
        headers["Access-Control-Allow-Credentials"] = "true"
    if headers["Access-Control-Allow-Origin"] != "*":
        headers["Vary"] = "Origin"
    return headers
