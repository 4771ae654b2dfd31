"""Classify what Azure answered into the tool's errors: temporary (retried by the engine) or permanent.

Pure: callers (the ARM and Graph facades) extract status, code, message and headers from the SDK's exception
and call `classify`. Nothing here imports an SDK.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterable, Mapping

from provision.core import TemporaryError
from provision.errors import CloudError, ConfigurationError, ProvisionError

#: statuses worth retrying whatever the code says
TEMPORARY_STATUS = frozenset({408, 429, 500, 502, 503, 504})

#: codes that mean "not yet": directory replication, concurrent writes, operations still settling
REPLICATION_CODES = frozenset(
    {
        "PrincipalNotFound",
        "Directory_ConcurrencyViolation",
        "Request_ThrottledTemporarily",
        "AnotherOperationInProgress",
        "Conflict_OperationInProgress",
    }
)


class AzureCloudError(CloudError):
    """Azure refused a request for good; `status` and `code` are the cloud's."""

    def __init__(self, message: str, *, status: int | None, code: str | None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.code = code


class AzureTemporaryError(TemporaryError):
    """Azure answered "not now" (throttling, 5xx, replication delay); `status` and `code` are the cloud's."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None,
        code: str | None,
        retry_after: float | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, retry_after=retry_after, throttled=status == 429, hint=hint)
        self.status = status
        self.code = code


def retry_after_seconds(headers: Mapping[str, str] | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms`, `x-ms-retry-after-ms` or `Retry-After` (seconds or HTTP date)."""
    if not headers:
        return None
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    for key in ("retry-after-ms", "x-ms-retry-after-ms"):
        if key in lowered:
            try:
                return max(0.0, float(lowered[key]) / 1000)
            except ValueError:
                pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _hint(status: int | None, code: str | None) -> str | None:
    code = code or ""
    if status == 401 or code in ("InvalidAuthenticationToken", "ExpiredAuthenticationToken"):
        return "sign in again (az login) or check AZURE_CLIENT_ID / AZURE_TENANT_ID / AZURE_CLIENT_SECRET"
    if code == "AuthorizationFailed" or (status == 403 and not code.startswith(("Authorization_", "Request_"))):
        return (
            "the signed-in identity lacks an Azure role here: it needs Contributor on the resource group "
            "(and Owner or User Access Administrator for role assignments)"
        )
    if status == 403:
        return (
            "the signed-in identity lacks a directory permission: it needs Application.ReadWrite.All "
            "(or the Application Administrator role) and DelegatedPermissionGrant.ReadWrite.All for admin consent"
        )
    if code in ("SubscriptionNotFound", "InvalidSubscriptionId"):
        return "check azure.subscription_id in the plan or AZURE_SUBSCRIPTION_ID"
    if code == "MissingSubscriptionRegistration":
        return "register the Microsoft.HealthcareApis resource provider on the subscription"
    if code == "UnmatchedPrincipalType":
        return "the principal's kind (user, group, service principal) does not match the access entry"
    return None


def classify(
    what: str,
    *,
    status: int | None,
    code: str | None,
    message: str | None,
    headers: Mapping[str, str] | None = None,
    temporary_codes: Iterable[str] = (),
) -> ProvisionError:
    """The error to raise for an Azure answer. `what` says what was being done ("creating DICOM service x")."""
    detail = (message or "").strip() or "no message"
    label = " ".join(str(part) for part in (status, code) if part)
    text = f"{what}: {detail}" + (f" ({label})" if label else "")
    hint = _hint(status, code)
    if (status in TEMPORARY_STATUS) or (code in REPLICATION_CODES) or (code in set(temporary_codes)):
        return AzureTemporaryError(
            text, status=status, code=code, retry_after=retry_after_seconds(headers), hint=hint
        )
    if status == 401:
        return ConfigurationError(text, hint=hint)
    return AzureCloudError(text, status=status, code=code, hint=hint)


def authentication_failed(what: str, message: str) -> ConfigurationError:
    """No token could be had (azure-identity's chain found no usable credential) or the cloud rejected it."""
    return ConfigurationError(
        f"{what}: authentication failed: {message}",
        hint="sign in (az login), or set AZURE_TENANT_ID / AZURE_CLIENT_ID and a secret or federated token",
    )


def connection_failed(what: str, error: BaseException) -> TemporaryError:
    """A request that never got an answer (refused, reset, timed out) is worth another try."""
    return AzureTemporaryError(f"{what}: connection failed: {error}", status=None, code=None)
