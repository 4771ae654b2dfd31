"""The sandbox's world: everything the emulated clouds hold, persisted as one JSON file.

The world knows no target: each target's sandbox package (`provision.sandbox.<target>`) given to `World`
keeps its own top-level keys of `world.state` and may define, as module-level functions, the hooks the world
calls on it:

- `empty_state() -> dict`: its keys, empty (for a new world, a reset, and defaults under a loaded state);
- `seed(world)`: fill a new or reset world (e.g. Azure's tenant: its applications, users, groups);
- `restore(world)`: after a state file was loaded (fill in what older files lack, apply the config);
- `configure(world, values)`: after `POST /_sandbox/config` applied `values` to `world.config`;
- `settle(world)`: before every API request, catch up with the time (e.g. finish due long-running operations,
  which are time-based: each records when it ends and what it does then, as data, so it survives a restart).

All mutation happens on the server's event loop (handlers do not await between reading and writing the
world), so no locking is needed.
"""

from __future__ import annotations

import copy
import json
import os
import secrets
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
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
    # Graph's replication: a directory object younger than this is not yet visible to Graph's reads (GET 404,
    # absent from lists), while writes already see it.
    graph_replication_seconds: float = 0.0
    # When False, Graph lets a second POST /servicePrincipals for one app through while the first one is
    # younger than graph_replication_seconds (two writes that did not see each other), as real Graph may.
    graph_strict_uniqueness: bool = True
    # Extra directory users for scale tests: user1..userN (`userK@{domain}`, mail `userK@contoso.com`), seeded on
    # reset and added when raised (never removed: access entries may still name them).
    test_users: int = 0

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


@dataclass
class Changes:
    """How many changes the request being handled has made to the world (see `World.tracking`)."""

    count: int = 0


_changes: ContextVar[Changes | None] = ContextVar("sandbox_request_changes", default=None)


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
        changes = _changes.get()
        if changes is not None:
            changes.count += 1

    @contextmanager
    def tracking(self) -> Iterator[Changes]:
        """Count the changes made by the code run inside (one request: each runs in its own task, so concurrent
        requests count apart). A request "committed" when it changed something."""
        changes = Changes()
        token = _changes.set(changes)
        try:
            yield changes
        finally:
            _changes.reset(token)

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

    def settle(self) -> None:
        """Let the targets catch up with the time before an API request (e.g. finish due ARM operations)."""
        self._call("settle")

    def snapshot(self) -> dict[str, Any]:
        """A deep copy of the state (for debugging and tests)."""
        return copy.deepcopy(self.state)


__all__ = ["Changes", "Config", "Identity", "World"]
