"""What every target is given: the plan (as `PlanView`, whatever its sections) and where to connect.

The CLI passes the sandbox's connection facts as plain data (`SandboxEndpoints`), so no target imports the sandbox.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

from provision.errors import PlanError

S = TypeVar("S")


@dataclass(frozen=True)
class SandboxEndpoints:
    """How to reach and trust the local sandbox, which plays every cloud at once (`provision sandbox serve`)."""

    #: base URL of every emulated API (Entra ID, ARM, Graph at /v1.0, Google Healthcare at /v1, ...)
    url: str
    #: the sandbox's own CA (TLS verification stays on)
    ca_bundle: Path
    tenant_id: str
    subscription_id: str
    #: the sandbox's service principal (Azure) ...
    client_id: str
    client_secret: str
    gcp_project: str
    #: ... and its Google Application Default Credentials of kind `authorized_user`
    google_adc: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Connection:
    """Where a target's clients connect: a sandbox, or the real cloud (with an extra CA to trust, if any)."""

    sandbox: SandboxEndpoints | None = None
    #: extra CA bundle to trust (TLS-inspecting proxies)
    ca_bundle: Path | None = None

    def trusted(self) -> list[Path]:
        """The CA bundles to trust besides the system's: the sandbox's and `ca_bundle`; each must exist."""
        from provision.errors import ConfigurationError

        bundles = [self.sandbox.ca_bundle] if self.sandbox is not None else []
        if self.ca_bundle is not None:
            bundles.append(self.ca_bundle)
        for bundle in bundles:
            if not bundle.is_file():
                raise ConfigurationError(f"CA bundle {bundle} does not exist")
        return bundles


class ViewerSettings(Protocol):
    """The plan's `ohif:` section as targets read it."""

    @property
    def viewer_url(self) -> str | None: ...

    @property
    def data_source_name(self) -> str: ...

    @property
    def friendly_name(self) -> str: ...


class PlanView(Protocol):
    """A loaded plan as targets see it (`provision.plan.Plan` is one)."""

    @property
    def name(self) -> str: ...

    @property
    def env(self) -> str: ...

    @property
    def ohif(self) -> ViewerSettings: ...

    @property
    def source(self) -> Path | None: ...

    def section(self, name: str) -> object | None:
        """The plan's section of target `name`, or None when the plan has none."""


def section_of(plan: PlanView, name: str, model: type[S]) -> S:
    """The plan's `name:` section as the target's own model; a PlanError when the plan has none."""
    section = plan.section(name)
    if not isinstance(section, model):
        where = f"{plan.source}: " if plan.source is not None else ""
        raise PlanError(f"{where}the plan has no `{name}:` section", hint="see `provision schema`")
    return section


__all__ = ["Connection", "PlanView", "SandboxEndpoints", "ViewerSettings", "section_of"]
