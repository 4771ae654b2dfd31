"""The engine's view of a resource: a natural key, read/normalise, desired state, and the three writes."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from provision.core.actions import Update
from provision.core.diff import FieldPolicy
from provision.errors import ProvisionError


class TemporaryError(ProvisionError):
    """Worth retrying: throttling, 5xx, replication delay. `retry_after` in seconds when the server said;
    `throttled` when the server said "too many requests" (429), which reports count apart; `routine` when
    every run meets it (a new object settling, directory replication): progress to show, not a fault."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, throttled: bool = False, hint: str | None = None,
        routine: bool = False,
    ) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after
        self.throttled = throttled
        self.routine = routine


@dataclass(frozen=True)
class Lifecycle:
    """What the service says about an object's last operation, as its normalised read shows it.

    `running`: an operation is under way (`operation` says which: "create", "update" or "delete"; it picks the
    time limit of the wait); otherwise it failed and `error` says how. A resource returns None from
    `Resource.lifecycle` when its object is settled and healthy; the engine decides what to do with the rest.
    """

    state: str
    running: bool
    operation: str = "update"
    #: when the running operation started (seconds since the epoch), if the service says
    since: float | None = None
    error: str = ""

    @classmethod
    def in_progress(cls, state: str, operation: str, since: float | None = None) -> Lifecycle:
        return cls(state, True, operation, since)

    @classmethod
    def failed(cls, state: str, error: str) -> Lifecycle:
        return cls(state, False, error=error)


@dataclass(frozen=True)
class Timeouts:
    """Per-operation time limits in seconds (retries included)."""

    read: float = 120.0
    create: float = 30 * 60.0
    update: float = 30 * 60.0
    delete: float = 30 * 60.0


class Context:
    """What an operation may see: its dependencies' outputs, and a way to report progress."""

    def __init__(
        self,
        address: str,
        outputs: Mapping[str, Mapping[str, Any]],
        report: Callable[[str, str], None],
    ) -> None:
        self.address = address
        self._outputs = outputs
        self._report = report

    def inputs(self, address: str) -> Mapping[str, Any]:
        return self._outputs.get(address, {})

    def progress(self, message: str) -> None:
        self._report(self.address, message)


@dataclass(frozen=True)
class Stray:
    """An object that exists and carries the plan's ownership marks but that no declared resource stands for any
    more (a role assignment whose `access` entry was deleted from the plan): plan and destroy delete it.
    `resource` reads and deletes it (its address names it for people); `actual` is its normalised read."""

    resource: Resource
    actual: dict[str, Any]


class Resource(ABC):
    """One declared resource. Subclasses are small: they know their API; the engine knows the rest."""

    #: dotted field path -> policy; unlisted fields compare exactly and are updatable
    schema: ClassVar[Mapping[str, FieldPolicy]] = {}
    timeouts: ClassVar[Timeouts] = Timeouts()
    #: False: a reference to something the plan does not manage (read, never written or deleted)
    managed: bool = True
    #: True: an object whose last operation failed is repaired in place (`repair`); False: it is replaced
    repairable: ClassVar[bool] = False

    def __init__(self, address: str, depends_on: tuple[str, ...] = (), *, deleted_with: str | None = None) -> None:
        self.address = address
        self.depends_on = depends_on
        #: the container (an address) whose delete removes this resource too, when `deletes_contents` allows it
        self.deleted_with = deleted_with

    @property
    def label(self) -> str:
        """How the resource is named in output."""
        return self.address

    @abstractmethod
    async def read(self, ctx: Context) -> dict[str, Any] | None:
        """The actual object normalised to plain data, or None when it does not exist."""

    @abstractmethod
    def desired(self, ctx: Context) -> dict[str, Any]:
        """The declared fields; values from dependencies may be UNKNOWN while planning."""

    async def create(self, ctx: Context, desired: dict[str, Any]) -> dict[str, Any] | None:
        raise ProvisionError(f"{self.label}: creating is not supported")

    async def update(
        self, ctx: Context, desired: dict[str, Any], actual: dict[str, Any], action: Update
    ) -> dict[str, Any] | None:
        raise ProvisionError(f"{self.label}: updating is not supported")

    async def delete(self, ctx: Context, actual: dict[str, Any]) -> None:
        raise ProvisionError(f"{self.label}: deleting is not supported")

    def lifecycle(self, actual: dict[str, Any]) -> Lifecycle | None:
        """An operation still running on the existing object, or its failure; None when it is settled."""
        return None

    async def repair(
        self, ctx: Context, desired: dict[str, Any], actual: dict[str, Any], action: Update
    ) -> dict[str, Any] | None:
        """Send the declared state again to an object whose last operation failed (only when `repairable`)."""
        return await self.update(ctx, desired, actual, action)

    def outputs(self, actual: dict[str, Any]) -> dict[str, Any]:
        """Values dependants need (ids, URLs). Default: the whole normalised object."""
        return actual

    def kept_on_destroy(self, actual: dict[str, Any]) -> str | None:
        """Why destroy leaves this owned object in place (shared beyond the plan, adopted), or None to delete."""
        return None

    async def deletes_contents(self, ctx: Context, actual: dict[str, Any]) -> bool:
        """Whether one delete of this container removes what is inside it, all of which belongs to the plan
        (read now); then the resources that name it in `deleted_with` are not deleted one by one."""
        return False

    async def strays(self, ctx: Context, actual: dict[str, Any]) -> Sequence[Stray]:
        """What exists at or inside this (existing) object, carries this plan's marks and is declared by none of
        the plan's resources; `ctx.inputs` sees every resource's planned outputs. Read only, never written."""
        return ()

    def owned(self, actual: dict[str, Any]) -> bool:
        """Whether the existing object belongs to this plan (ownership tags, natural key)."""
        return True

    def owner_of(self, actual: dict[str, Any]) -> str | None:
        """Whose ownership marks the existing object carries, for people ("plan ohif-demo, env pr-7"), or None
        when it carries none."""
        return None

    def shown(self, path: str, value: Any) -> Any:
        """A field's value as people read it in a plan (a permission's name for its GUIDs); the JSON plan and
        the comparison keep the value itself."""
        return value
