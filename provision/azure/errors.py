"""Classify what Azure answered into the tool's errors: temporary (retried by the engine) or permanent.

Pure: callers (the ARM and Graph facades) extract status, code, message and headers from the SDK's exception
and call `classify`. Nothing here imports an SDK.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Iterable, Mapping

from provision.core import TemporaryError
from provision.errors import CloudError, ConfigurationError, ProvisionError

#: statuses worth retrying whatever the code says
TEMPORARY_STATUS = frozenset({408, 429, 500, 502, 503, 504})

#: codes that mean "not yet": directory replication, concurrent directory writes
REPLICATION_CODES = frozenset({"PrincipalNotFound", "Directory_ConcurrencyViolation", "Request_ThrottledTemporarily"})


#: codes of a write refused because an operation is already running on the object
IN_PROGRESS_CODES = frozenset({"AnotherOperationInProgress", "OperationInProgress", "Conflict_OperationInProgress"})


def operation_in_progress(status: int | None, code: str | None, message: str | None) -> bool:
    """A 409 because the object is busy (a create still running, someone else's update): worth waiting for,
    unlike a 409 about the request itself (a location that differs, a workspace that still holds services)."""
    text = (message or "").lower()
    return code in IN_PROGRESS_CODES or (
        status == 409 and ("operation is in progress" in text or "another operation" in text)
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
    if (
        (status in TEMPORARY_STATUS)
        or (code in REPLICATION_CODES)
        or (code in set(temporary_codes))
        or operation_in_progress(status, code, message)
    ):
        return AzureTemporaryError(
            text, status=status, code=code, retry_after=retry_after_seconds(headers), hint=hint
        )
    if status == 401:
        return ConfigurationError(text, hint=hint)
    return AzureCloudError(text, status=status, code=code, hint=hint)


#: what Entra ID says when the fault is on its side ("AADSTS90033: A transient error has occurred")
TRANSIENT_IDENTITY = ("AADSTS90033", "temporarily_unavailable", "AADSTS90055")


def identity_failed(what: str, message: str, status: int | None = None) -> ProvisionError:
    """No token could be had. Entra ID unavailable for a while (a 429/5xx, AADSTS90033) is temporary and never
    sends the user to sign in again; wrong or missing credentials are permanent, with the sign-in hint."""
    if status in TEMPORARY_STATUS or any(marker in message for marker in TRANSIENT_IDENTITY):
        detail = message.strip().splitlines()[0] if message.strip() else "no message"
        return AzureTemporaryError(
            f"{what}: Entra ID is unavailable: {detail}",
            status=status,
            code="temporarily_unavailable",
            hint="a transient error on Microsoft's side (https://status.azure.com); run the command again later",
        )
    return authentication_failed(what, message)


def authentication_failed(what: str, message: str) -> ConfigurationError:
    """No token could be had (azure-identity's chain found no usable credential) or the cloud rejected it.
    DefaultAzureCredential's answer is a dozen lines (one per credential tried): summed up in one, in full
    with `-v`."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    tried = [line.split(":", 1)[0] for line in lines if re.match(r"^\w+Credential:", line)]
    if tried:
        summary = f"no usable credential (tried {', '.join(name.removesuffix('Credential') for name in tried)})"
    else:
        summary = lines[0] if lines else "no message"
    return ConfigurationError(
        f"{what}: authentication failed: {summary}",
        hint="sign in (az login), or set AZURE_TENANT_ID / AZURE_CLIENT_ID and a secret or federated token",
        details=message if message.strip() != summary else None,
    )


def connection_failed(what: str, error: BaseException) -> TemporaryError:
    """A request that never got an answer (refused, reset, timed out) is worth another try."""
    return AzureTemporaryError(f"{what}: connection failed: {error}", status=None, code=None)
