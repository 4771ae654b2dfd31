"""SDK exceptions (azure-core, kiota/msgraph, httpx) become the tool's errors, with the cloud's code kept."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceResponseError
from msgraph.generated.models.o_data_errors.main_error import MainError
from msgraph.generated.models.o_data_errors.o_data_error import ODataError

from provision.azure import arm, graph
from provision.azure.errors import AzureCloudError, AzureTemporaryError, classify, identity_failed
from provision.errors import ConfigurationError


class _LegacyResponse:
    """What azure-core's aiohttp transport hands over: `text()`, headers, no `json()`."""

    def __init__(self, status: int, body: str, headers: dict[str, str] | None = None) -> None:
        self.status_code = status
        self.reason = "reason"
        self.headers = headers or {}
        self._body = body
        self.request = None

    def text(self, encoding: str | None = None) -> str:
        return self._body


def _http_error(status: int, body: str, headers: dict[str, str] | None = None) -> HttpResponseError:
    error = HttpResponseError(message="operation failed")
    error.response = _LegacyResponse(status, body, headers)
    error.status_code = status
    error.error = None
    return error


def test_arm_error_body_is_read_even_when_the_sdk_did_not_parse_it() -> None:
    error = arm.translate(
        _http_error(409, '{"error":{"code":"RoleAssignmentExists","message":"The role assignment already exists."}}'),
        "granting x",
    )
    assert isinstance(error, AzureCloudError)
    assert (error.code, error.status) == ("RoleAssignmentExists", 409)
    assert error.message == "granting x: The role assignment already exists. (409 RoleAssignmentExists)"


def test_arm_throttling_keeps_retry_after() -> None:
    error = arm.translate(_http_error(429, "", {"Retry-After": "4"}), "reading x")
    assert isinstance(error, AzureTemporaryError) and error.retry_after == 4.0


def test_no_token_is_a_configuration_error_and_a_dropped_connection_is_temporary() -> None:
    assert isinstance(arm.translate(ClientAuthenticationError("no credential in the chain"), "x"), ConfigurationError)
    assert isinstance(arm.translate(ServiceResponseError("connection reset"), "x"), AzureTemporaryError)


def _odata(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> ODataError:
    error = ODataError(error=MainError(code=code, message=message))
    error.response_status_code = status
    error.response_headers = headers or {}
    return error


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (_odata(429, "TooManyRequests", "slow down", {"Retry-After": "2"}), AzureTemporaryError),
        (_odata(400, "Directory_ConcurrencyViolation", "busy"), AzureTemporaryError),
        (_odata(403, "Authorization_RequestDenied", "Insufficient privileges"), AzureCloudError),
        (httpx.ConnectError("refused"), AzureTemporaryError),
    ],
)
def test_graph_errors(error: Any, kind: type) -> None:
    assert isinstance(graph.translate(error, "writing app x"), kind)


def test_graph_replication_delay_only_when_the_message_names_the_new_object() -> None:
    new_app = "0f0e0d0c-0000-4000-8000-000000000001"
    not_yet = graph._mentions(new_app)
    missing = _odata(400, "Request_BadRequest", f"The appId '{new_app}' does not reference a valid application")
    assert isinstance(graph.translate(missing, "x", not_yet), AzureTemporaryError)
    other = _odata(400, "Request_BadRequest", "Property tags has an invalid value")
    assert isinstance(graph.translate(other, "x", not_yet), AzureCloudError)


class _NoCredential:
    """What DefaultAzureCredential does when no credential in its chain works (not signed in, nothing set)."""

    async def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        raise ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token.")

    async def close(self) -> None:
        pass


def test_no_usable_credential_on_a_graph_call_is_a_configuration_error_not_a_traceback() -> None:
    """kiota fetches the token inside the request: azure-identity's error must become the tool's, with the hint."""
    import asyncio
    import ssl

    from provision.azure.clouds import Cloud

    cloud = Cloud("public", "https://login.microsoftonline.com", "https://management.azure.com",
                  "https://graph.microsoft.com", "https://dicom.healthcareapis.azure.com")

    async def read() -> None:
        api = graph.GraphApi(credential=_NoCredential(), cloud=cloud, context=ssl.create_default_context())
        try:
            await api.get_application("ohif-viewer")
        finally:
            await api.close()

    with pytest.raises(ConfigurationError, match="authentication failed: DefaultAzureCredential") as raised:
        asyncio.run(read())
    assert raised.value.hint is not None and "az login" in raised.value.hint


def test_unreachable_token_endpoint_on_a_graph_call_is_a_connection_failure_not_a_traceback() -> None:
    """kiota fetches the token inside the request; azure-identity raises azure-core's ServiceRequestError when
    the login endpoint (or a stopped sandbox) does not answer. Like ARM's, it is a temporary connection failure."""
    from azure.core.exceptions import ServiceRequestError

    with pytest.raises(AzureTemporaryError, match="reading user x: connection failed"), \
            graph.graph_errors("reading user x"):
        raise ServiceRequestError("Cannot connect to host 127.0.0.1:1")


@pytest.mark.parametrize(("status", "code", "message", "temporary"), [
    (409, "Conflict", "The resource 'd' is in provisioning state 'Creating'; another operation is in progress. "
                      "Retry when it has finished.", True),
    (409, "AnotherOperationInProgress", "Another operation on this or dependent resource is in progress.", True),
    (409, "Conflict", "The workspace 'w' cannot be deleted because it still contains child resources", False),
    (409, "InvalidResourceGroupLocation", "Invalid resource group location 'x'.", False),
])
def test_a_conflict_with_an_operation_in_progress_is_waited_for(status: int, code: str, message: str,
                                                                temporary: bool) -> None:
    error = classify("creating DICOM service d", status=status, code=code, message=message)
    assert isinstance(error, AzureTemporaryError) is temporary


def test_entra_id_unavailable_is_temporary_and_wrong_credentials_are_not() -> None:
    transient = identity_failed("signing in to Azure", "Microsoft Entra ID error '(temporarily_unavailable) "
                                "AADSTS90033: A transient error has occurred.'\nContent: {...}", 503)
    assert isinstance(transient, AzureTemporaryError)
    assert transient.message.startswith("signing in to Azure: Entra ID is unavailable: Microsoft Entra ID error")
    assert "Content" not in transient.message and "az login" not in (transient.hint or "")
    assert isinstance(identity_failed("x", "AADSTS90033: try again", None), AzureTemporaryError)
    wrong = identity_failed("signing in to Azure", "AADSTS7000215: Invalid client secret provided.", 401)
    assert isinstance(wrong, ConfigurationError) and "az login" in (wrong.hint or "")


@pytest.mark.parametrize(("code", "message", "exists"), [
    ("Request_MultipleObjectsWithSameKeyValue", "Permission entry already exists.", True),
    ("Request_MultipleObjectsWithSameKeyValue", "The service principal name x is already in use.", True),
    ("Request_BadRequest", "Another object with the same value for property uniqueName already exists.", True),
    ("Request_BadRequest", "Invalid value specified for property 'displayName' of resource 'Application'.", False),
    ("Request_ResourceNotFound", "Resource 'x' does not exist", False),
])
def test_graph_already_exists(code: str, message: str, exists: bool) -> None:
    assert graph.already_exists(code, message) is exists
