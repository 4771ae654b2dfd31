"""The one contract between the CLI and a target package (azure, gcp, orthanc, ...).

A target is a plugin: an instance of a `Target` subclass named in `provision.registry`. It brings

- its plan section: a pydantic model, found under the target's name in plan files (`azure:`, `gcp:`);
- `open_session(plan, connection)`: the resources the engine reconciles, and the OHIF configuration after apply;
- `gc_places(...)`: where `provision gc` looks for its old environments (`provision.core.gc.Inventory`);
- `commands()`: its extra commands (`verify`, `roles`, ...) as plain async functions that return result objects.

Nothing here prints or knows the command line: options are described as data (`provision.core.commands`) and
the CLI turns them into flags. What every target gets (the plan, the connection, the sandbox's facts as plain
data, so no target imports the sandbox) is in `provision.core.inputs`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from provision.core.commands import Command, GcCall
from provision.core.inputs import Connection, PlanView, SandboxEndpoints, ViewerSettings, section_of
from provision.core.resource import Resource

if TYPE_CHECKING:
    from provision.core.gc import Inventory


@dataclass
class OhifResult:
    """The `ohif.json` document (`{"oidc": [...], "dataSources": [...]}`) and what to tell the user."""

    document: dict[str, Any]
    viewer_url: str | None = None
    notes: list[str] = field(default_factory=list)
    #: the complete `window.config`, when the target serves the viewer itself (else one is built from `document`)
    app_config: dict[str, Any] | None = None


class TargetSession(Protocol):
    """One plan against one cloud: the resources to reconcile, and the OHIF configuration they lead to."""

    @property
    def resources(self) -> list[Resource]: ...

    def ohif(self, outputs: Mapping[str, Mapping[str, Any]]) -> OhifResult | None:
        """OHIF configuration from the resources' outputs after apply (None when the plan has no viewer)."""

    async def aclose(self) -> None:
        """Close SDK clients and transports."""


#: a `gc_places` function: validates its flags, then returns the inventories to search (opened, nothing called)
GcPlaces = Callable[..., Awaitable[Sequence["Inventory"]]]


class Target(ABC):
    """A target plugin. Subclasses are small: they name their section model and open sessions; the CLI,
    `provision gc`, the plan format and the sandbox loop over the registry of them."""

    #: the sub-command and the plan section (`provision azure ...`, `azure:`)
    name: str
    #: one line for `--help`
    summary: str

    @abstractmethod
    def section_model(self) -> type[object]:
        """The pydantic model of the plan section (imported here, not at start-up: `--help` stays fast)."""

    @abstractmethod
    async def open_session(self, plan: PlanView, connection: Connection) -> TargetSession:
        """Validate the plan's section, connect, and build its resources. Raises before any call on bad input."""

    def commands(self) -> Sequence[Command]:
        """Extra commands beside plan/apply/destroy/output."""
        return ()

    def gc_places(self) -> GcPlaces | None:
        """How `provision gc` finds this target's environments: an async function taking a `GcCall` and the
        keyword options it declares (`Annotated[..., Option(...)]`); None when the target has nothing to reap."""
        return None


__all__ = [
    "Connection",
    "GcCall",
    "GcPlaces",
    "OhifResult",
    "PlanView",
    "SandboxEndpoints",
    "Target",
    "TargetSession",
    "ViewerSettings",
    "section_of",
]
