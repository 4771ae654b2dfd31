"""The Microsoft Graph calls the resources make, through msgraph-sdk (async, httpx).

Methods return Graph's JSON (camelCase dicts, what the normalisers take), None for a 404 on read, and raise
the tool's errors. The SDK's retry handler is off: the engine retries whole operations, re-reading first, so a
POST is never blindly repeated.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar
from uuid import UUID

import httpx
from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError, ServiceResponseError
from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.request_information import RequestInformation
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from kiota_http.middleware.options import RetryHandlerOption
from msgraph import GraphServiceClient
from msgraph.generated.models.application import Application
from msgraph.generated.models.implicit_grant_settings import ImplicitGrantSettings
from msgraph.generated.models.o_auth2_permission_grant import OAuth2PermissionGrant
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.required_resource_access import RequiredResourceAccess
from msgraph.generated.models.resource_access import ResourceAccess
from msgraph.generated.models.service_principal import ServicePrincipal
from msgraph.generated.models.spa_application import SpaApplication
from msgraph.generated.models.web_application import WebApplication
from msgraph.generated.oauth2_permission_grants.oauth2_permission_grants_request_builder import (
    Oauth2PermissionGrantsRequestBuilder,
)
from msgraph.generated.service_principals.service_principals_request_builder import ServicePrincipalsRequestBuilder
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph_core import GraphClientFactory

from provision.azure.clouds import Cloud
from provision.azure.coalesce import Coalesced
from provision.azure.errors import AzureTemporaryError, classify, connection_failed, identity_failed
from provision.errors import ProvisionError

T = TypeVar("T")
Body = dict[str, Any]

#: Graph's codes for "no such object"
NOT_FOUND_CODES = frozenset({"Request_ResourceNotFound", "ResourceNotFound", "itemNotFound"})


def _error_parts(error: APIError) -> tuple[str | None, str]:
    main = getattr(error, "error", None)
    code = getattr(main, "code", None)
    message = getattr(main, "message", None) or error.message
    return code, str(message or "")


#: decides, from Graph's code and message, that an error of one call means "not yet" (replication delay)
NotYet = Callable[[str | None, str], bool]


def _never(_code: str | None, _message: str) -> bool:
    return False


def translate(error: APIError | httpx.TransportError, what: str, not_yet: NotYet = _never) -> ProvisionError:
    if isinstance(error, httpx.TransportError):
        return connection_failed(what, error)
    code, message = _error_parts(error)
    return classify(
        what,
        status=error.response_status_code,
        code=code,
        message=message,
        headers=dict(error.response_headers or {}),
        temporary_codes=(code,) if code and not_yet(code, message) else (),
    )


@contextmanager
def graph_errors(what: str, not_yet: NotYet = _never) -> Iterator[None]:
    try:
        yield
    except (APIError, httpx.TransportError) as error:
        raise translate(error, what, not_yet) from error
    except ClientAuthenticationError as error:
        # kiota asks the credential for the token (the session's converts its errors; another one may not)
        raise identity_failed(what, error.message, error.status_code) from error
    except (ServiceRequestError, ServiceResponseError) as error:
        # the token request got no answer (login endpoint or sandbox unreachable): retried, as ARM's are
        raise connection_failed(what, error) from error


def _mentions(*ids: str) -> NotYet:
    """A 400/404 that names an object this run just created is a replication delay, not a mistake."""

    def check(code: str | None, message: str) -> bool:
        return code in ("Request_BadRequest", "Request_ResourceNotFound") and any(i in message for i in ids if i)

    return check


def already_exists(code: str | None, message: str) -> bool:
    """Graph's answers to a create of something that exists: `Request_MultipleObjectsWithSameKeyValue` (a
    service principal, a permission grant: "Permission entry already exists."), an ObjectConflict on a key
    property ("Another object with the same value for property uniqueName already exists.")."""
    text = message.lower()
    return code == "Request_MultipleObjectsWithSameKeyValue" or (
        code in ("Request_BadRequest", "ObjectConflict") and "already exists" in text
    )


def _not_found(error: APIError) -> bool:
    code, _ = _error_parts(error)
    return error.response_status_code == 404 or code in NOT_FOUND_CODES


async def read_or_none(what: str, call: Callable[[], Awaitable[T | None]]) -> T | None:
    with graph_errors(what):
        try:
            return await call()
        except APIError as error:
            if _not_found(error):
                return None
            raise


def _filter(builder: Any, expression: str) -> RequestConfiguration[Any]:
    return RequestConfiguration(query_parameters=builder(filter=expression))


def _quote(value: str) -> str:
    return value.replace("'", "''")


def application_model(spec: Mapping[str, Any]) -> Application:
    """An Application carrying the managed fields of `spec` (keys as `provision.azure.normalise.application`)."""
    app = Application(
        display_name=spec["display_name"],
        sign_in_audience=spec["sign_in_audience"],
        spa=SpaApplication(redirect_uris=list(spec["spa_redirect_uris"])),
        web=WebApplication(
            redirect_uris=list(spec["web_redirect_uris"]),
            implicit_grant_settings=ImplicitGrantSettings(
                enable_id_token_issuance=spec["id_token_issuance"],
                enable_access_token_issuance=spec["access_token_issuance"],
            ),
        ),
        tags=list(spec.get("tags") or []),
        notes=spec.get("notes"),
    )
    if spec.get("logout_url"):
        app.web.logout_url = spec["logout_url"]  # type: ignore[union-attr]
    grouped: dict[str, list[ResourceAccess]] = {}
    for entry in spec.get("permissions") or []:
        resource_app_id, permission_id, kind = entry.split("/")
        grouped.setdefault(resource_app_id, []).append(
            ResourceAccess(id=UUID(permission_id), type="Scope" if kind.lower() == "scope" else "Role")
        )
    app.required_resource_access = [
        RequiredResourceAccess(resource_app_id=resource_app_id, resource_access=accesses)
        for resource_app_id, accesses in grouped.items()
    ]
    return app


#: names looked up in one request: each is two clauses (userPrincipalName, mail), and Graph takes at most 15 in a
#: filter ("Too many child clauses ... Max allowed: 15")
USERS_PER_LOOKUP = 7


def _named(user: Body, name: str) -> bool:
    wanted = name.casefold()
    return any((user.get(key) or "").casefold() == wanted for key in ("userPrincipalName", "mail"))


#: what a listing of the tenant's applications asks for (one page holds up to 999)
APP_LISTING_FIELDS = ["id", "appId", "uniqueName", "displayName", "tags", "createdDateTime"]


class GraphApi:
    """Graph v1.0 calls. Requests are built by msgraph-sdk's request builders and sent through its adapter
    (auth, middleware, OData error mapping); responses are taken as JSON bytes rather than models, because
    kiota's first deserialization of a `user` imports the whole model graph (about 1.4 s, blocking the loop)
    and the normalisers want Graph's JSON anyway."""

    def __init__(self, *, credential: Any, cloud: Cloud, context: ssl.SSLContext) -> None:
        http = httpx.AsyncClient(
            base_url=cloud.graph_api,
            verify=context,
            timeout=httpx.Timeout(100, connect=30),
            http2=True,
        )
        http = GraphClientFactory.create_with_default_middleware(
            client=http,
            options={RetryHandlerOption.get_key(): RetryHandlerOption(max_retries=0, should_retry=False)},
        )
        self._http = http
        auth = AzureIdentityAuthenticationProvider(
            credential, scopes=[cloud.graph_scope], allowed_hosts=[cloud.graph_host]
        )
        self._adapter = GraphRequestAdapter(auth, http)
        self._adapter.base_url = cloud.graph_api
        self._client = GraphServiceClient(request_adapter=self._adapter)
        self._users = Coalesced(self._find_users_named, _named, per_request=USERS_PER_LOOKUP)

    async def close(self) -> None:
        await self._http.aclose()

    async def _send(self, info: RequestInformation) -> Body | None:
        """Send one request; its JSON body, or None when the answer has none (204)."""
        content = await self._adapter.send_primitive_async(info, "bytes", {"XXX": ODataError})
        if not content:
            return None
        body = json.loads(content)
        return body if isinstance(body, dict) else None

    async def _read(self, what: str, info: RequestInformation) -> Body | None:
        return await read_or_none(what, lambda: self._send(info))

    async def _list(self, what: str, info: RequestInformation) -> list[Body]:
        with graph_errors(what):
            page = await self._send(info)
        return list((page or {}).get("value") or [])

    async def _write(self, what: str, info: RequestInformation, not_yet: NotYet = _never) -> Body | None:
        with graph_errors(what, not_yet):
            return await self._send(info)

    async def _create(self, what: str, info: RequestInformation, not_yet: NotYet = _never) -> Body | None:
        """A write that may create. "Already exists" means a run at the same time got there first, or an earlier
        attempt of ours whose answer was lost: a temporary error, so the engine reads the object again and
        converges on it (it may not be readable at once: directories replicate) instead of failing."""
        with graph_errors(what, not_yet):
            try:
                return await self._send(info)
            except APIError as error:
                code, message = _error_parts(error)
                if not already_exists(code, message):
                    raise
                raise AzureTemporaryError(
                    f"{what}: it exists already (made by a run at the same time, or by an earlier attempt whose "
                    "answer was lost); reading it again",
                    status=error.response_status_code,
                    code=code,
                ) from error

    async def _delete(self, what: str, info: RequestInformation) -> None:
        with graph_errors(what):
            try:
                await self._send(info)
            except APIError as error:
                if not _not_found(error):
                    raise

    # -- applications ---------------------------------------------------------------------------------------

    async def get_application(self, unique_name: str) -> Body | None:
        builder = self._client.applications_with_unique_name(unique_name)
        return await self._read(f"reading app {unique_name}", builder.to_get_request_information())

    async def upsert_application(self, unique_name: str, spec: Mapping[str, Any]) -> Body | None:
        """`PATCH /applications(uniqueName=...)` with `Prefer: create-if-missing`: never a duplicate.

        Returns the created app (201), or None when an existing app was updated (204, no body).
        """
        config: RequestConfiguration[Any] = RequestConfiguration()
        config.headers.add("Prefer", "create-if-missing")
        builder = self._client.applications_with_unique_name(unique_name)
        info = builder.to_patch_request_information(application_model(spec), request_configuration=config)
        return await self._create(f"writing app {unique_name}", info)

    async def delete_application(self, unique_name: str) -> None:
        builder = self._client.applications_with_unique_name(unique_name)
        await self._delete(f"deleting app {unique_name}", builder.to_delete_request_information())

    # -- service principals ---------------------------------------------------------------------------------

    async def find_service_principals(self, app_id: str) -> list[Body]:
        """Every service principal of one app. A list rather than `(appId='...')`: while Graph replicates, two
        runs that created one at the same moment may each have got theirs, and the list shows both."""
        query = ServicePrincipalsRequestBuilder.ServicePrincipalsRequestBuilderGetQueryParameters
        info = self._client.service_principals.to_get_request_information(
            _filter(query, f"appId eq '{_quote(app_id)}'")
        )
        return await self._list(f"reading the service principal of app {app_id}", info)

    async def get_service_principal(self, object_id: str) -> Body | None:
        builder = self._client.service_principals.by_service_principal_id(object_id)
        return await self._read(f"reading service principal {object_id}", builder.to_get_request_information())

    async def create_service_principal(
        self, app_id: str, *, tags: list[str] | None = None, notes: str | None = None
    ) -> Body:
        """POST one. Not idempotent: callers look first (`find_service_principals`); "already exists" (another
        run, or an earlier attempt whose answer was lost) is raised as a temporary error, to be read again."""
        info = self._client.service_principals.to_post_request_information(
            ServicePrincipal(app_id=app_id, tags=tags, notes=notes)
        )
        # a just-created app may not be visible to the service principal endpoint yet
        body = await self._create(f"creating the service principal of app {app_id}", info, _mentions(app_id))
        return body or {}

    async def update_service_principal_tags(self, object_id: str, tags: list[str]) -> None:
        builder = self._client.service_principals.by_service_principal_id(object_id)
        info = builder.to_patch_request_information(ServicePrincipal(tags=tags))
        await self._write(f"updating the tags of service principal {object_id}", info)

    async def delete_service_principal(self, object_id: str) -> None:
        builder = self._client.service_principals.by_service_principal_id(object_id)
        await self._delete(f"deleting service principal {object_id}", builder.to_delete_request_information())

    # -- delegated permission grants (admin consent) --------------------------------------------------------

    async def list_grants(self, client_id: str) -> list[Body]:
        query = Oauth2PermissionGrantsRequestBuilder.Oauth2PermissionGrantsRequestBuilderGetQueryParameters
        info = self._client.oauth2_permission_grants.to_get_request_information(
            _filter(query, f"clientId eq '{_quote(client_id)}'")
        )
        return await self._list(f"reading the permission grants of {client_id}", info)

    async def create_grant(self, *, client_id: str, resource_id: str, scope: str) -> Body:
        info = self._client.oauth2_permission_grants.to_post_request_information(
            OAuth2PermissionGrant(
                client_id=client_id, consent_type="AllPrincipals", resource_id=resource_id, scope=scope
            )
        )
        # right after the client's service principal was created, Graph may not know it yet
        body = await self._create(f"granting admin consent to {client_id}", info, _mentions(client_id, resource_id))
        return body or {}

    async def update_grant(self, grant_id: str, scope: str) -> None:
        builder = self._client.oauth2_permission_grants.by_o_auth2_permission_grant_id(grant_id)
        info = builder.to_patch_request_information(OAuth2PermissionGrant(scope=scope))
        await self._write(f"updating permission grant {grant_id}", info)

    async def delete_grant(self, grant_id: str) -> None:
        builder = self._client.oauth2_permission_grants.by_o_auth2_permission_grant_id(grant_id)
        await self._delete(f"deleting permission grant {grant_id}", builder.to_delete_request_information())

    # -- directory lookups ----------------------------------------------------------------------------------

    async def get_user(self, object_id: str) -> Body | None:
        builder = self._client.users.by_user_id(object_id)
        return await self._read(f"looking up user {object_id}", builder.to_get_request_information())

    async def find_users(self, name: str) -> list[Body]:
        """Users whose userPrincipalName or e-mail is `name`. Lookups made at the same moment share requests
        (`provision.azure.coalesce`)."""
        return await self._users.get(name)

    async def _find_users_named(self, names: list[str]) -> list[Body]:
        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters
        if len(names) == 1:
            quoted = _quote(names[0])
            expression, what = f"userPrincipalName eq '{quoted}' or mail eq '{quoted}'", f"looking up user {names[0]}"
        else:
            values = ", ".join(f"'{_quote(name)}'" for name in names)
            expression = f"userPrincipalName in ({values}) or mail in ({values})"
            what = f"looking up users {', '.join(names)}"
        return await self._list(what, self._client.users.to_get_request_information(_filter(query, expression)))

    async def get_group(self, object_id: str) -> Body | None:
        builder = self._client.groups.by_group_id(object_id)
        return await self._read(f"looking up group {object_id}", builder.to_get_request_information())

    # -- tenant-wide listings (provision gc) -----------------------------------------------------------------

    async def list_applications(self) -> list[Body]:
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.applications.applications_request_builder import ApplicationsRequestBuilder

        query = ApplicationsRequestBuilder.ApplicationsRequestBuilderGetQueryParameters(
            select=APP_LISTING_FIELDS, top=999
        )
        info = self._client.applications.to_get_request_information(RequestConfiguration(query_parameters=query))
        apps: list[Body] = []
        pages = 0
        while True:
            with graph_errors("listing the tenant's applications"):
                page = await self._send(info) or {}
            apps.extend(page.get("value") or [])
            following = page.get("@odata.nextLink")
            pages += 1
            if not following or pages > 1000:
                return apps
            info = self._client.applications.with_url(str(following)).to_get_request_information()
