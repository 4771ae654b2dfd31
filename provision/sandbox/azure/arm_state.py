"""What Azure Resource Manager holds in the world: resource records, long-running operations, role assignments.

Three top-level keys of `world.state` (see `empty_state`): `arm` (lower-cased resource id -> record),
`operations` (operation id -> operation) and `role_assignments` (lower-cased assignment name -> record).
Records are plain JSON; keys starting with "_" are sandbox bookkeeping (`_op`: the running operation,
`_ready`: the first provisioning succeeded). An operation is data too — when it ends and what it does then —
so it survives a restart; `settle` applies the due ones before every API request.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from . import operation_failures

if TYPE_CHECKING:
    from ..world import World


def empty_state() -> dict[str, Any]:
    return {"arm": {}, "operations": {}, "role_assignments": {}}


# --- resources ----------------------------------------------------------------------------------------------

def records(world: World) -> dict[str, dict[str, Any]]:
    return world.state["arm"]


def get(world: World, resource_id: str) -> dict[str, Any] | None:
    return records(world).get(resource_id.lower())


def put(world: World, record: dict[str, Any]) -> None:
    records(world)[record["id"].lower()] = record
    world.mark_dirty()


def children(world: World, parent_id: str, type_: str) -> list[dict[str, Any]]:
    """Direct and indirect resources of `type_` under `parent_id`, in creation order."""
    prefix = parent_id.lower() + "/"
    return [r for k, r in records(world).items() if k.startswith(prefix) and r["type"].lower() == type_.lower()]


def delete_tree(world: World, resource_id: str) -> None:
    """Delete a resource, everything under it, and the role assignments scoped to any of them."""
    key = resource_id.lower()
    prefix = key + "/"
    arm = records(world)
    for k in [k for k in arm if k == key or k.startswith(prefix)]:
        del arm[k]
    assignments = role_assignments(world)
    for name in [
        n for n, ra in assignments.items() if ra["scope"].lower() == key or ra["scope"].lower().startswith(prefix)
    ]:
        del assignments[name]
    world.mark_dirty()


# --- long-running operations --------------------------------------------------------------------------------

def operations(world: World) -> dict[str, dict[str, Any]]:
    return world.state["operations"]


def start_operation(
    world: World,
    *,
    name: str,
    target: str,
    location: str,
    effect: str,
    duration: float | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Record an operation that ends `duration` seconds from now (default: config.lro_seconds).

    `effect` is applied when it ends: "succeed" sets the target's provisioningState to Succeeded (or Failed,
    when `operation_failures` says this one fails), "delete" removes the target and everything under it.
    """
    now = world.now()
    failure = operation_failures.take(world, target) if effect == "succeed" else None
    op = {
        "id": str(uuid.uuid4()),
        "name": name,
        "target": target,
        "location": location,
        "effect": effect,
        "start": now,
        "end": now + (world.config.lro_seconds if duration is None else duration),
        "done": False,
        **({"error": failure} if failure else {}),
        **(extra or {}),
    }
    operations(world)[op["id"]] = op
    _prune_operations(world)
    world.mark_dirty()
    return op


def _prune_operations(world: World, keep: int = 500) -> None:
    ops = operations(world)
    if len(ops) > keep:
        finished = sorted((o for o in ops.values() if o["done"]), key=lambda o: o["end"])
        for op in finished[: len(ops) - keep]:
            del ops[op["id"]]


def operation_status(world: World, op: dict[str, Any]) -> str:
    if not op["done"] and world.now() < op["end"]:
        return "Running"
    return "Failed" if op.get("error") else "Succeeded"


def settle(world: World) -> None:
    """Apply the effects of every operation whose time has come (oldest first)."""
    now = world.now()
    due = [op for op in operations(world).values() if not op["done"] and op["end"] <= now]
    for op in sorted(due, key=lambda o: o["end"]):
        op["done"] = True
        record = get(world, op["target"])
        if op["effect"] == "delete":
            if record is not None:
                delete_tree(world, op["target"])
        elif op["effect"] == "succeed" and record is not None and record.get("_op") == op["id"]:
            if op.get("error"):
                record["properties"]["provisioningState"] = "Failed"
            else:
                record["properties"]["provisioningState"] = "Succeeded"
                record["_ready"] = True
            record.pop("_op", None)
        world.mark_dirty()


def pending_operation(world: World, resource_id: str) -> dict[str, Any] | None:
    record = get(world, resource_id)
    op_id = record.get("_op") if record else None
    return operations(world).get(op_id) if op_id else None


def begin_delete(world: World, record: dict[str, Any]) -> dict[str, Any]:
    """The record's delete operation: a repeated DELETE joins the running one instead of starting another."""
    op = pending_operation(world, record["id"])
    if op is None or op["effect"] != "delete":
        op = start_operation(world, name=record["name"], target=record["id"], location=record["location"],
                             effect="delete")
        record["properties"]["provisioningState"] = "Deleting"
        record["_op"] = op["id"]
        put(world, record)
    return op


#: provisioning states of a resource with an operation running (it refuses other writes with 409)
RUNNING_STATES = frozenset({"Creating", "Updating", "Deleting", "Accepted"})


def busy(record: dict[str, Any]) -> bool:
    return record["properties"]["provisioningState"] in RUNNING_STATES


# --- role assignments ---------------------------------------------------------------------------------------

def role_assignments(world: World) -> dict[str, dict[str, Any]]:
    return world.state["role_assignments"]
