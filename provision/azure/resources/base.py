"""What every Azure resource shares: the session's APIs, the plan's owner marks, a few helpers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from provision.azure.ownership import Owner
from provision.core import UNKNOWN, Resource

if TYPE_CHECKING:
    from provision.azure.arm import ArmApi
    from provision.azure.graph import GraphApi


@dataclass
class Azure:
    """The session's view shared by its resources. The APIs are None only when nothing needs them (and in
    pure tests, where resources are built but never read)."""

    owner: Owner
    location: str
    #: the plan's `azure.tags`, on every ARM resource next to the ownership tags
    tags: Mapping[str, str] = field(default_factory=dict)
    subscription_id: str | None = None
    arm_api: ArmApi | None = None
    graph_api: GraphApi | None = None
    #: the DICOM data plane (extended query tags); a `provision.azure.resources.query_tags.DicomDataPlane`
    data_plane: Any = None
    #: DICOMweb of the DICOM services (seeding); a `provision.azure.dataplane.DicomAccess`
    dicom_access: Any = None

    @property
    def arm(self) -> ArmApi:
        if self.arm_api is None:  # pragma: no cover - open_session builds it whenever an ARM resource exists
            raise RuntimeError("no ARM client in this session")
        return self.arm_api

    @property
    def graph(self) -> GraphApi:
        if self.graph_api is None:  # pragma: no cover - open_session builds it whenever a Graph resource exists
            raise RuntimeError("no Graph client in this session")
        return self.graph_api

    def arm_tags(self) -> dict[str, str]:
        """The tags an ARM resource of the plan must carry (compared key by key: foreign tags are not drift)."""
        return {**self.tags, **self.owner.tags()}


def known(*values: Any) -> bool:
    """True when every value is known now (not None, not "known after apply")."""
    return all(value is not None and value is not UNKNOWN for value in values)


class AzureResource(Resource):
    """A resource addressed `azure.<kind>[<name>]`."""

    kind: ClassVar[str] = "azure.resource"

    def __init__(
        self, azure: Azure, name: str, depends_on: tuple[str, ...] = (), *, deleted_with: str | None = None
    ) -> None:
        super().__init__(f"{self.kind}[{name}]", depends_on, deleted_with=deleted_with)
        self.azure = azure
        self.name = name

    @classmethod
    def address_of(cls, name: str) -> str:
        return f"{cls.kind}[{name}]"


def merged_tags(actual: Mapping[str, Any] | None, desired: Mapping[str, str]) -> dict[str, str]:
    """Read-modify-write of ARM tags: tags the plan does not declare stay as they are."""
    return {**dict((actual or {}).get("tags") or {}), **desired}


#: output key of an ARM container created by this very run: nothing can be inside it yet, so its children
#: need not be read again before they are created (saves a round trip per level on a fresh apply)
CREATED_NOW = "created_now"


def created_now(body: dict[str, Any]) -> dict[str, Any]:
    """Mark what `create` returns; reads never carry the mark."""
    return {**body, CREATED_NOW: True}


def empty_because_new(ctx: Any, parent: str) -> bool:
    """True when the parent does not exist yet, or was created by this run (so it holds nothing)."""
    inputs = ctx.inputs(parent)
    return not known(inputs.get("id")) or inputs.get(CREATED_NOW) is True


def outputs_of(actual: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    """Selected keys; `actual` may be the engine's "not created yet" mapping, whose missing keys are UNKNOWN."""
    return {key: actual.get(key) for key in keys}
