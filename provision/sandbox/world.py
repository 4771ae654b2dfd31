"""The sandbox's world: everything the emulated clouds hold, persisted as one JSON file.

The world knows no target: each target's sandbox package (`provision.sandbox.<target>`) given to `World`
keeps its own top-level keys of `world.state` and may define, as module-level functions, the hooks the world
calls on it:

- `empty_state() -> dict`: its keys, empty (for a new world, a reset, and defaults under a loaded state);
- `seed(world)`: fill a new or reset world (e.g. Azure's tenant: its applications, users, groups);
- `restore(world)`: after a state file was loaded (fill in what older files lack, apply the config);
- `configure(world, values)`: after `POST /_sandbox/config` applied `values` to `world.config`.

All mutation happens on the server's event loop (handlers do not await between reading and writing the
world), so no locking is needed. Long-running operations are time-based: each operation records when it
ends and what it does then (data, so it survives a restart); `settle()` applies the due ones and is called
before every API request.
"""

from __future__ import annotations

import copy
import json
import os
import secrets
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

WORLD_FILE = "world.json"
STATE_VERSION = 1
TENANT_DOMAIN = "contoso.onmicrosoft.com"


@dataclass
class Config:
    """Run-time knobs (not persisted; set by `start_sandbox(...)`, the CLI, or `POST /_sandbox/config`)."""

    latency_ms: float = 0.0
    lro_seconds: float = 2.0
    principal_delay_seconds: float = 0.0
    # When False (Azure's documented behaviour) a role assignment that names principalType skips the
    # replication-delay check; when True the delay applies to every assignment.
    principal_delay_strict: bool = False
    # None: keep what the world holds; True/False: make the first-party DICOM service principal present/absent.
    dicom_sp: bool | None = None
    fault_seed: int = 0

    def update(self, values: dict[str, Any]) -> list[str]:
        """Apply known keys from `values`; returns the unknown keys (nothing applied for them)."""
        known = {f.name: f for f in fields(self)}
        unknown = [k for k in values if k not in known]
        for key, value in values.items():
            if key not in known:
                continue
            current = getattr(self, key)
            if key == "dicom_sp":
                setattr(self, key, None if value is None else bool(value))
            elif isinstance(current, bool):
                setattr(self, key, bool(value))
            elif isinstance(current, int):
                setattr(self, key, int(value))
            else:
                setattr(self, key, float(value))
        return unknown

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Identity:
    """What stays the same for the life of a state directory (kept by reset)."""

    tenant_id: str
    subscription_id: str
    client_id: str
    client_secret: str
    app_object_id: str
    sp_object_id: str
    domain: str = TENANT_DOMAIN

    @classmethod
    def generate(cls) -> Identity:
        return cls(
            tenant_id=str(uuid.uuid4()),
            subscription_id=str(uuid.uuid4()),
            client_id=str(uuid.uuid4()),
            client_secret=secrets.token_urlsafe(30),
            app_object_id=str(uuid.uuid4()),
            sp_object_id=str(uuid.uuid4()),
        )


class World:
    def __init__(self, state_dir: Path, config: Config | None = None, clock: Callable[[], float] = time.time,
                 targets: Iterable[object] = ()):
        self.state_dir = state_dir
        self.config = config or Config()
        self.clock = clock
        self._targets = tuple(targets)
        self._path = state_dir / WORLD_FILE
        self._dirty = False
        loaded = self._load()
        if loaded is None:
            self.identity = Identity.generate()
            self.state = self._empty_state()
            self._call("seed")
            self._dirty = True
        else:
            self.identity, self.state = loaded
            self._call("restore")
        self.save_if_dirty()

    # --- the targets' parts ------------------------------------------------------------------------
    def _hooks(self, name: str) -> list[Callable[..., Any]]:
        return [getattr(t, name) for t in self._targets if hasattr(t, name)]

    def _call(self, hook: str, *args: Any) -> None:
        for function in self._hooks(hook):
            function(self, *args)

    def _empty_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {}
        for empty_state in self._hooks("empty_state"):
            state.update(empty_state())
        return state

    def configured(self, values: dict[str, Any]) -> None:
        """Tell the targets that `values` were applied to `config` (e.g. Azure's DICOM principal comes or goes)."""
        self._call("configure", values)

    # --- persistence -------------------------------------------------------------------------------
    def _load(self) -> tuple[Identity, dict[str, Any]] | None:
        try:
            raw = json.loads(self._path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        if raw.get("version") != STATE_VERSION:
            raise ValueError(f"{self._path}: unsupported sandbox state version {raw.get('version')!r}")
        state = self._empty_state()
        state.update(raw.get("state", {}))
        return Identity(**raw["identity"]), state

    def mark_dirty(self) -> None:
        self._dirty = True

    @property
    def dirty(self) -> bool:
        return self._dirty

    def save_if_dirty(self) -> None:
        if not self._dirty:
            return
        doc = {"version": STATE_VERSION, "identity": asdict(self.identity), "state": self.state}
        tmp = self._path.with_name(self._path.name + ".tmp")
        tmp.write_text(json.dumps(doc, separators=(",", ":")), encoding="utf-8")
        os.replace(tmp, self._path)
        self._dirty = False

    def reset(self) -> None:
        """Forget every resource and directory object; keep tenant, subscription and credentials."""
        self.state = self._empty_state()
        self._call("seed")
        self.mark_dirty()

    # --- time --------------------------------------------------------------------------------------
    def now(self) -> float:
        return self.clock()

    # --- ARM resources ----------------------------------------------------------------------------
    @property
    def arm(self) -> dict[str, dict[str, Any]]:
        return self.state["arm"]

    def arm_get(self, resource_id: str) -> dict[str, Any] | None:
        return self.arm.get(resource_id.lower())

    def arm_put(self, record: dict[str, Any]) -> None:
        self.arm[record["id"].lower()] = record
        self.mark_dirty()

    def arm_children(self, parent_id: str, type_: str) -> list[dict[str, Any]]:
        """Direct and indirect resources of `type_` under `parent_id`, in creation order."""
        prefix = parent_id.lower() + "/"
        return [r for k, r in self.arm.items() if k.startswith(prefix) and r["type"].lower() == type_.lower()]

    def arm_delete_tree(self, resource_id: str) -> None:
        """Delete a resource, everything under it, and the role assignments scoped to any of them."""
        key = resource_id.lower()
        prefix = key + "/"
        for k in [k for k in self.arm if k == key or k.startswith(prefix)]:
            del self.arm[k]
        assignments = self.state["role_assignments"]
        for name in [
            n for n, ra in assignments.items() if ra["scope"].lower() == key or ra["scope"].lower().startswith(prefix)
        ]:
            del assignments[name]
        self.mark_dirty()

    # --- long-running operations -------------------------------------------------------------------
    @property
    def operations(self) -> dict[str, dict[str, Any]]:
        return self.state["operations"]

    def start_operation(
        self,
        *,
        name: str,
        target: str,
        location: str,
        effect: str,
        duration: float | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Record an operation that ends `duration` seconds from now (default: config.lro_seconds).

        `effect` is applied when it ends: "succeed" sets the target's provisioningState to Succeeded,
        "delete" removes the target and everything under it.
        """
        now = self.now()
        op = {
            "id": str(uuid.uuid4()),
            "name": name,
            "target": target,
            "location": location,
            "effect": effect,
            "start": now,
            "end": now + (self.config.lro_seconds if duration is None else duration),
            "done": False,
            **(extra or {}),
        }
        self.operations[op["id"]] = op
        self._prune_operations()
        self.mark_dirty()
        return op

    def _prune_operations(self, keep: int = 500) -> None:
        if len(self.operations) > keep:
            finished = sorted((o for o in self.operations.values() if o["done"]), key=lambda o: o["end"])
            for op in finished[: len(self.operations) - keep]:
                del self.operations[op["id"]]

    def operation_status(self, op: dict[str, Any]) -> str:
        return "Succeeded" if op["done"] or self.now() >= op["end"] else "Running"

    def settle(self) -> None:
        """Apply the effects of every operation whose time has come (oldest first)."""
        now = self.now()
        due = [op for op in self.operations.values() if not op["done"] and op["end"] <= now]
        for op in sorted(due, key=lambda o: o["end"]):
            op["done"] = True
            record = self.arm_get(op["target"])
            if op["effect"] == "delete":
                if record is not None:
                    self.arm_delete_tree(op["target"])
            elif op["effect"] == "succeed" and record is not None and record.get("_op") == op["id"]:
                record["properties"]["provisioningState"] = "Succeeded"
                record["_ready"] = True
                record.pop("_op", None)
            self.mark_dirty()

    def pending_operation(self, resource_id: str) -> dict[str, Any] | None:
        record = self.arm_get(resource_id)
        op_id = record.get("_op") if record else None
        return self.operations.get(op_id) if op_id else None

    def begin_delete(self, record: dict[str, Any]) -> dict[str, Any]:
        """The record's delete operation: a repeated DELETE joins the running one instead of starting another."""
        op = self.pending_operation(record["id"])
        if op is None or op["effect"] != "delete":
            op = self.start_operation(name=record["name"], target=record["id"], location=record["location"],
                                      effect="delete")
            record["properties"]["provisioningState"] = "Deleting"
            record["_op"] = op["id"]
            self.arm_put(record)
        return op

    # --- role assignments --------------------------------------------------------------------------
    @property
    def role_assignments(self) -> dict[str, dict[str, Any]]:
        return self.state["role_assignments"]

    # --- directory ---------------------------------------------------------------------------------
    def collection(self, name: str) -> dict[str, dict[str, Any]]:
        return self.state["directory"][name]

    def principal(self, object_id: str) -> tuple[str, dict[str, Any]] | None:
        """(principalType, object) of a user, group or service principal with this object id."""
        oid = object_id.lower()
        for coll, ptype in (("users", "User"), ("groups", "Group"), ("servicePrincipals", "ServicePrincipal")):
            obj = self.collection(coll).get(oid)
            if obj is not None:
                return ptype, obj
        return None

    def snapshot(self) -> dict[str, Any]:
        """A deep copy of the state (for debugging and tests)."""
        return copy.deepcopy(self.state)


__all__ = ["Config", "Identity", "World"]
