"""Azure Resource Manager front door: authentication, routing, api-version checks, ARM error bodies.

Resource providers (`resources.py`, `health_data_services.py`, `authorization.py`) contribute `ArmRoute`s; this
module mounts them under `/subscriptions/...` and `/providers/...` and applies what the ARM gateway does before a
provider sees a request: bearer token for https://management.azure.com, route lookup (case-insensitive),
`api-version` validation per resource type, subscription existence, throttling (decided by `throttling.py`).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..routing import Call, Handler, PatternRoute, Router, base_url, json_response
from ..tokens import TokenError, bearer_token
from . import arm_state, throttling

if TYPE_CHECKING:
    from ..tokens import TokenSigner
    from ..world import World

ARM_AUDIENCES = (
    "https://management.azure.com",
    "https://management.azure.com/",
    "https://management.core.windows.net",
    "https://management.core.windows.net/",
)
ALL_METHODS = ["GET", "HEAD", "PUT", "PATCH", "POST", "DELETE"]

# Regions where Microsoft.HealthcareApis is offered (plus the spec examples' westus); resource groups may be
# anywhere in ALL_REGIONS.
HEALTHCARE_REGIONS = (
    "australiaeast", "canadacentral", "centralindia", "eastus", "eastus2", "francecentral", "germanywestcentral",
    "japaneast", "koreacentral", "northcentralus", "northeurope", "norwayeast", "qatarcentral", "southcentralus",
    "southeastasia", "swedencentral", "switzerlandnorth", "uksouth", "westcentralus", "westeurope", "westus",
    "westus2", "westus3",
)
ALL_REGIONS = tuple(
    sorted(
        {
            *HEALTHCARE_REGIONS, "australiacentral", "australiasoutheast", "brazilsouth", "canadaeast",
            "centralus", "eastasia", "japanwest", "jioindiawest", "koreasouth", "southafricanorth", "southindia",
            "uaenorth", "ukwest", "westindia", "polandcentral", "italynorth", "israelcentral", "spaincentral",
            "mexicocentral", "newzealandnorth",
        }
    )
)


class ArmError(Exception):
    """Raised by handlers and validators; rendered as ARM's `{"error": {"code", "message"}}`."""

    def __init__(self, status: int, code: str, message: str, *, target: str | None = None,
                 details: list[dict[str, Any]] | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.target = target
        self.details = details
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.target is not None:
            err["target"] = self.target
        if self.details:
            err["details"] = self.details
        return {"error": err}


def arm_headers(request: Request | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
    rid = str(uuid.uuid4())
    headers = {
        "Cache-Control": "no-cache",
        "Pragma": "no-cache",
        "x-ms-request-id": rid,
        "x-ms-correlation-request-id": (request.headers.get("x-ms-correlation-request-id") if request else None) or rid,
        "x-ms-routing-request-id": f"SANDBOX:{rid}",
    }
    if request is not None:
        kind = {"GET": "reads", "HEAD": "reads", "DELETE": "deletes"}.get(request.method, "writes")
        headers[f"x-ms-ratelimit-remaining-subscription-{kind}"] = "11999" if kind == "reads" else "1199"
        crid = request.headers.get("x-ms-client-request-id")
        if crid:
            headers["x-ms-client-request-id"] = crid
    headers.update(extra or {})
    return headers


def arm_json(call: Call, body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return json_response(body, status, arm_headers(call.request, headers))


def arm_empty(call: Call, status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(b"", status_code=status, headers=arm_headers(call.request, headers))


def error_response(request: Request | None, err: ArmError) -> Response:
    return json_response(err.body(), err.status, arm_headers(request, err.headers))


class ArmRoute(PatternRoute):
    """A provider route. `api_versions` are the versions ARM accepts for its resource type."""

    def __init__(self, pattern: str, handlers: Mapping[str, Handler], *, api_versions: Iterable[str],
                 resource_type: str) -> None:
        super().__init__(pattern, handlers)
        self.api_versions = tuple(api_versions)
        self.resource_type = resource_type


# --- identifiers and names --------------------------------------------------------------------------------

def sub_id(sub: str) -> str:
    return f"/subscriptions/{sub}"


def rg_id(sub: str, rg: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}"


def normalize_location(location: str) -> str:
    return re.sub(r"\s+", "", location).lower()


def require_location(body: dict[str, Any], allowed: tuple[str, ...], resource_type: str) -> str:
    loc = body.get("location")
    if loc is None or (isinstance(loc, str) and not loc.strip()):
        raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
    if not isinstance(loc, str):
        raise ArmError(400, "InvalidRequestContent",
                       "The request content was invalid and could not be deserialized: 'Error converting value "
                       "to type 'System.String'. Path 'location'.'.")
    norm = normalize_location(loc)
    if norm not in allowed:
        if resource_type == "resourceGroups":
            raise ArmError(400, "LocationNotAvailableForResourceGroup",
                           f"The provided location '{loc}' is not available for resource group. List of available "
                           f"regions is '{','.join(allowed)}'.")
        raise ArmError(400, "LocationNotAvailableForResourceType",
                       f"The provided location '{loc}' is not available for resource type '{resource_type}'. "
                       f"List of available regions for the resource type is '{','.join(allowed)}'.")
    return norm


def validate_tags(tags: Any) -> dict[str, str]:
    """ARM tag rules: an object of string values; at most 50; name <= 512 chars, value <= 256 chars."""
    if tags is None:
        return {}
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        raise ArmError(400, "InvalidRequestContent",
                       "The request content was invalid and could not be deserialized: 'tags must be an object "
                       "of string values'.")
    if len(tags) > 50:
        raise ArmError(400, "InvalidTag",
                       "The number of tags on a resource must not exceed 50.")
    for name, value in tags.items():
        if not name or len(name) > 512 or re.search(r"[<>%&\\?/]", name):
            raise ArmError(400, "InvalidTagNameCharacters",
                           f"The tag names '{name}' have reserved characters '<,>,%,&,\\,?,/' or control characters.")
        if len(value) > 256:
            raise ArmError(400, "InvalidTagValueLength",
                           f"The tag value '{value[:40]}...' exceeds the maximum length of 256 characters.")
    return dict(tags)


def require_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ArmError(400, "InvalidRequestContent",
                       "The request content was invalid and could not be deserialized: 'Unexpected JSON token; "
                       "an object was expected.'.")
    return body


def gateway_not_found(resource_type: str, name: str, rg: str) -> ArmError:
    return ArmError(404, "ResourceNotFound",
                    f"The Resource '{resource_type}/{name}' under resource group '{rg}' was not found. For more "
                    "details please go to https://aka.ms/ARMResourceNotFoundFix")


def rg_not_found(rg: str) -> ArmError:
    return ArmError(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")


def require_rg(world: World, sub: str, rg: str) -> dict[str, Any]:
    record = arm_state.get(world, rg_id(sub, rg))
    if record is None:
        raise rg_not_found(rg)
    return record


# --- the front door -----------------------------------------------------------------------------------------

def _auth_error(request: Request, exc: TokenError, tenant_id: str) -> ArmError:
    base = base_url(request)
    if exc.reason == "missing":
        err = ArmError(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
        desc = "The authentication failed because of missing 'Authorization' header."
    elif exc.reason == "expired":
        err = ArmError(401, "ExpiredAuthenticationToken",
                       "The access token expiry UTC time is earlier than current UTC time.")
        desc = "The access token is expired."
    elif exc.reason == "audience":
        err = ArmError(401, "InvalidAuthenticationTokenAudience",
                       f"The access token has been obtained for wrong audience or resource '{exc.audience}'. It "
                       "should exactly match with one of the allowed audiences 'https://management.core.windows.net/',"
                       "'https://management.core.windows.net','https://management.azure.com/',"
                       "'https://management.azure.com'.")
        desc = "The access token has been obtained from wrong audience or resource."
    elif exc.reason == "tenant":
        err = ArmError(401, "InvalidAuthenticationTokenTenant",
                       f"The access token is from the wrong issuer. It must match the tenant '{tenant_id}' "
                       f"associated with this subscription. Please use the authority (URL) '{base}/{tenant_id}' "
                       "to get the token.")
        desc = "The access token is from the wrong issuer."
    else:
        err = ArmError(401, "InvalidAuthenticationToken", "The access token is invalid.")
        desc = "The access token is invalid."
    err.headers["WWW-Authenticate"] = (
        f'Bearer authorization_uri="{base}/{tenant_id}", error="invalid_token", error_description="{desc}"'
    )
    return err


def _unknown_route(path: str, api_version: str | None) -> ArmError:
    m = re.search(r"/providers/([^/]+)(?:/([^/]+))?", path, re.IGNORECASE)
    if m and m.group(1).lower() not in ("microsoft.healthcareapis", "microsoft.authorization", "microsoft.resources"):
        return ArmError(404, "InvalidResourceNamespace", f"The resource namespace '{m.group(1)}' is invalid.")
    if m and m.group(2):
        return ArmError(404, "InvalidResourceType",
                        f"The resource type '{m.group(2)}' could not be found in the namespace '{m.group(1)}' for "
                        f"api version '{api_version or ''}'.")
    return ArmError(404, "NotFound", f"The requested path '{path}' is not supported by the sandbox.")


def _throttled(world: World, throttled: throttling.Throttled) -> ArmError:
    """ARM's 429 for a request its subscription's bucket refused."""
    seconds, kind = throttled.retry_after, throttled.kind
    return ArmError(
        429,
        "SubscriptionRequestsThrottled",
        f"Number of '{kind[:-1]}' requests for subscription '{throttled.subscription}' actor "
        f"'{world.identity.sp_object_id}' exceeded. Please try again after '{seconds}' seconds after additional "
        f"'{seconds}' requests. Please see https://aka.ms/throttling for more information.",
        headers={"Retry-After": str(seconds), f"x-ms-ratelimit-remaining-subscription-{kind}": "0"},
    )


def check_api_version(route: ArmRoute, api_version: str | None) -> None:
    if not api_version:
        raise ArmError(400, "MissingApiVersionParameter",
                       "The api-version query parameter (?api-version=) is required for all requests.")
    if api_version not in route.api_versions:
        raise ArmError(400, "InvalidApiVersionParameter",
                       f"The api-version '{api_version}' is invalid. The supported versions are "
                       f"'{','.join(sorted(route.api_versions, reverse=True))}'.")


def routes(world: World, signer: TokenSigner, arm_routes: Iterable[ArmRoute]) -> list[BaseRoute]:
    router = Router(list(arm_routes))
    own_sub = world.identity.subscription_id.lower()

    async def endpoint(request: Request) -> Response:
        path = request.url.path
        api_version = request.query_params.get("api-version")
        try:
            try:
                claims = signer.verify(
                    bearer_token(request.headers.get("authorization")),
                    audiences=ARM_AUDIENCES,
                    tenant_id=world.identity.tenant_id,
                )
            except TokenError as exc:
                raise _auth_error(request, exc, world.identity.tenant_id) from None
            found = router.resolve(path)
            if found is None:
                raise _unknown_route(path, api_version)
            route, params = found
            assert isinstance(route, ArmRoute)
            handler = route.handlers.get(request.method)
            if handler is None and request.method == "HEAD":
                handler = route.handlers.get("GET")
            if handler is None:
                raise ArmError(405, "HttpMethodNotAllowed",
                               f"The HTTP method '{request.method}' is not supported for '{route.resource_type}'.")
            check_api_version(route, api_version)
            sub = params.get("subscriptionId")
            if sub is not None and sub.lower() != own_sub:
                raise ArmError(404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found.")
            throttled = throttling.check(world, request, sub)  # off by default
            if throttled is not None:
                raise _throttled(world, throttled)
            response = await handler(Call(request, params, world, signer, claims))
            left = throttling.remaining(world, request.method, sub)
            if left is not None:
                kind = throttling.kind_of(request.method)
                response.headers[f"x-ms-ratelimit-remaining-subscription-{kind}"] = str(left)
            if request.method == "HEAD" and "HEAD" not in route.handlers:
                return Response(b"", status_code=response.status_code, headers=dict(response.headers))
            return response
        except ArmError as err:
            if request.method == "HEAD":
                return Response(b"", status_code=err.status, headers=arm_headers(request, err.headers))
            return error_response(request, err)

    return [
        Route("/subscriptions", endpoint, methods=ALL_METHODS),
        Route("/subscriptions/{rest:path}", endpoint, methods=ALL_METHODS),
        Route("/providers/{rest:path}", endpoint, methods=ALL_METHODS),
    ]


def async_operation_url(call: Call, op: dict[str, Any], api_version: str, namespace: str) -> str:
    return (
        f"{call.base}/subscriptions/{call.world.identity.subscription_id}/providers/{namespace}/locations/"
        f"{op['location']}/operationresults/{op['id']}?api-version={api_version}"
    )


def system_data(call: Call, record: dict[str, Any] | None, now_iso: str) -> dict[str, Any]:
    actor = call.claims.get("appid", "")
    created = (record or {}).get("systemData") or {
        "createdBy": actor,
        "createdByType": "Application",
        "createdAt": now_iso,
    }
    return {**created, "lastModifiedBy": actor, "lastModifiedByType": "Application", "lastModifiedAt": now_iso}


def new_etag() -> str:
    u = uuid.uuid4().hex
    return f'"{u[:8]}-0000-0200-0000-{u[8:20]}0000"'
