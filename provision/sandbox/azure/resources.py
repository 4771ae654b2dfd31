"""Microsoft.Resources: the subscription, resource groups (with the Location-polled delete) and providers."""

from __future__ import annotations

import math
import re
from typing import Any

from starlette.responses import Response

from ..routing import BodyError, Call
from . import arm_state
from .arm import (
    ALL_REGIONS,
    ArmError,
    ArmRoute,
    arm_empty,
    arm_json,
    require_location,
    require_object,
    rg_id,
    rg_not_found,
    validate_tags,
)

RESOURCES_API_VERSIONS = (
    "2019-05-10", "2019-07-01", "2019-08-01", "2019-10-01", "2020-06-01", "2020-10-01", "2021-01-01",
    "2021-04-01", "2022-09-01", "2023-07-01", "2024-03-01", "2024-07-01", "2024-11-01", "2025-01-01",
    "2025-03-01", "2025-04-01",
)
SUBSCRIPTIONS_API_VERSIONS = ("2016-06-01", "2019-06-01", "2019-11-01", "2020-01-01", "2021-01-01", "2022-12-01")
KNOWN_NAMESPACES = {
    "microsoft.healthcareapis": ("Microsoft.HealthcareApis", ["workspaces", "workspaces/dicomservices",
                                                               "locations/operationresults"]),
    "microsoft.authorization": ("Microsoft.Authorization", ["roleAssignments", "roleDefinitions"]),
    "microsoft.resources": ("Microsoft.Resources", ["resourceGroups", "subscriptions"]),
}
RG_TYPE = "Microsoft.Resources/resourceGroups"
_RG_NAME = re.compile(r"^[-\w._()]{1,90}$")


def validate_rg_name(name: str) -> None:
    if not _RG_NAME.match(name) or name.endswith("."):
        raise ArmError(400, "InvalidResourceGroupName",  # code unverified
                       f"Resource group name '{name}' is invalid. Resource group names only allow alphanumeric "
                       "characters, periods, underscores, hyphens and parenthesis and cannot end in a period.")


def render_rg(record: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": record["id"],
        "name": record["name"],
        "type": RG_TYPE,
        "location": record["location"],
    }
    if record.get("managedBy"):
        body["managedBy"] = record["managedBy"]
    if record.get("tags"):
        body["tags"] = dict(record["tags"])
    body["properties"] = {"provisioningState": record["properties"]["provisioningState"]}
    return body


def _retry_after(op: dict[str, Any], now: float) -> dict[str, str]:
    remaining = op["end"] - now
    return {"Retry-After": str(min(15, math.ceil(remaining)))} if remaining >= 1 else {}


def arm_routes() -> list[ArmRoute]:
    async def list_subscriptions(call: Call) -> Response:
        return arm_json(call, {"value": [_subscription(call)], "count": {"type": "Total", "value": 1}})

    async def get_subscription(call: Call) -> Response:
        return arm_json(call, _subscription(call))

    async def put_rg(call: Call) -> Response:
        name = call.params["resourceGroupName"]
        validate_rg_name(name)
        try:
            body = require_object(await call.json())
        except BodyError as exc:
            raise ArmError(400, "InvalidRequestContent", str(exc)) from None
        location = require_location(body, ALL_REGIONS, "resourceGroups")
        tags = validate_tags(body.get("tags"))
        world = call.world
        rid = rg_id(world.identity.subscription_id, name)
        existing = arm_state.get(world, rid)
        if existing is not None:
            if existing["properties"]["provisioningState"] == "Deleting":
                raise ArmError(409, "ResourceGroupBeingDeleted",
                               f"The resource group '{existing['name']}' is in deprovisioning state and cannot "
                               "perform this operation.")
            if existing["location"] != location:
                raise ArmError(409, "InvalidResourceGroupLocation",
                               f"Invalid resource group location '{body['location']}'. The Resource group already "
                               f"exists in location '{existing['location']}'.")
            existing["tags"] = tags
            if "managedBy" in body:
                existing["managedBy"] = body["managedBy"]
            arm_state.put(world, existing)
            return arm_json(call, render_rg(existing), 200)
        record = {
            "id": rid,
            "type": RG_TYPE,
            "name": name,
            "location": location,
            "tags": tags,
            "managedBy": body.get("managedBy"),
            "properties": {"provisioningState": "Succeeded"},
        }
        arm_state.put(world, record)
        return arm_json(call, render_rg(record), 201)

    def _get(call: Call) -> dict[str, Any]:
        name = call.params["resourceGroupName"]
        record = arm_state.get(call.world, rg_id(call.world.identity.subscription_id, name))
        if record is None:
            raise rg_not_found(name)
        return record

    async def get_rg(call: Call) -> Response:
        return arm_json(call, render_rg(_get(call)))

    async def head_rg(call: Call) -> Response:
        _get(call)
        return arm_empty(call, 204)

    async def patch_rg(call: Call) -> Response:
        record = _get(call)
        try:
            body = require_object(await call.json())
        except BodyError as exc:
            raise ArmError(400, "InvalidRequestContent", str(exc)) from None
        if "tags" in body:
            record["tags"] = validate_tags(body["tags"])
        if "managedBy" in body:
            record["managedBy"] = body["managedBy"]
        arm_state.put(call.world, record)
        return arm_json(call, render_rg(record))

    async def delete_rg(call: Call) -> Response:
        record = _get(call)
        op = arm_state.begin_delete(call.world, record)
        return arm_empty(call, 202, {"Location": _op_location(call, op), **_retry_after(op, call.world.now())})

    async def get_operation_result(call: Call) -> Response:
        world = call.world
        op = arm_state.operations(world).get(call.params["operationId"])
        if op is None:
            raise ArmError(404, "NotFound",
                           f"The operation '{call.params['operationId']}' could not be found.")
        if arm_state.operation_status(world, op) == "Running":
            return arm_empty(call, 202, {"Location": _op_location(call, op), **_retry_after(op, world.now())})
        return arm_empty(call, 200)

    async def list_rgs(call: Call) -> Response:
        records = arm_state.children(call.world, f"/subscriptions/{call.world.identity.subscription_id}", RG_TYPE)
        return arm_json(call, {"value": [render_rg(r) for r in records]})

    async def list_rg_resources(call: Call) -> Response:
        rg = _get(call)
        items = [
            {k: r[k] for k in ("id", "name", "type", "location", "tags") if k in r}
            for key, r in arm_state.records(call.world).items()
            if key.startswith(rg["id"].lower() + "/")
        ]
        return arm_json(call, {"value": items})

    async def get_provider(call: Call) -> Response:
        ns = call.params["namespace"]
        known = KNOWN_NAMESPACES.get(ns.lower())
        if known is None:
            raise ArmError(404, "InvalidResourceNamespace", f"The resource namespace '{ns}' is invalid.")
        name, types = known
        return arm_json(call, {
            "id": f"/subscriptions/{call.world.identity.subscription_id}/providers/{name}",
            "namespace": name,
            "registrationState": "Registered",
            "registrationPolicy": "RegistrationRequired",
            "resourceTypes": [{"resourceType": t, "locations": [], "apiVersions": []} for t in types],
        })

    sub = "/subscriptions/{subscriptionId}"
    rg = sub + "/resourceGroups/{resourceGroupName}"
    return [
        ArmRoute("/subscriptions", {"GET": list_subscriptions}, api_versions=SUBSCRIPTIONS_API_VERSIONS,
                 resource_type="Microsoft.Resources/subscriptions"),
        ArmRoute(sub, {"GET": get_subscription}, api_versions=SUBSCRIPTIONS_API_VERSIONS,
                 resource_type="Microsoft.Resources/subscriptions"),
        ArmRoute(sub + "/resourceGroups", {"GET": list_rgs}, api_versions=RESOURCES_API_VERSIONS,
                 resource_type=RG_TYPE),
        ArmRoute(rg, {"PUT": put_rg, "GET": get_rg, "HEAD": head_rg, "PATCH": patch_rg, "DELETE": delete_rg},
                 api_versions=RESOURCES_API_VERSIONS, resource_type=RG_TYPE),
        ArmRoute(rg + "/resources", {"GET": list_rg_resources}, api_versions=RESOURCES_API_VERSIONS,
                 resource_type="Microsoft.Resources/resources"),
        ArmRoute(sub + "/operationresults/{operationId}", {"GET": get_operation_result},
                 api_versions=RESOURCES_API_VERSIONS, resource_type="Microsoft.Resources/operationresults"),
        ArmRoute(sub + "/providers/{namespace}", {"GET": get_provider}, api_versions=RESOURCES_API_VERSIONS,
                 resource_type="Microsoft.Resources/providers"),
        ArmRoute(sub + "/providers/{namespace}/register", {"POST": get_provider},
                 api_versions=RESOURCES_API_VERSIONS, resource_type="Microsoft.Resources/providers"),
    ]


def _op_location(call: Call, op: dict[str, Any]) -> str:
    api_version = call.request.query_params.get("api-version", RESOURCES_API_VERSIONS[-1])
    return (f"{call.base}/subscriptions/{call.world.identity.subscription_id}/operationresults/{op['id']}"
            f"?api-version={api_version}")


def _subscription(call: Call) -> dict[str, Any]:
    ident = call.world.identity
    return {
        "id": f"/subscriptions/{ident.subscription_id}",
        "authorizationSource": "RoleBased",
        "managedByTenants": [],
        "subscriptionId": ident.subscription_id,
        "tenantId": ident.tenant_id,
        "displayName": "Sandbox subscription",
        "state": "Enabled",
        "subscriptionPolicies": {
            "locationPlacementId": "Public_2014-09-01",
            "quotaId": "PayAsYouGo_2014-09-01",
            "spendingLimit": "Off",
        },
    }
