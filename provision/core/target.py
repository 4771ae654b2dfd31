"""What the CLI needs from a target package (azure, gcp, ...): resources to reconcile and OHIF output."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from provision.core.resource import Resource


@dataclass(frozen=True)
class TargetOptions:
    #: a `provision.sandbox.SandboxInfo` when running against the sandbox (kept untyped: core imports no target)
    sandbox: Any = None
    #: extra CA bundle to trust (TLS-inspecting proxies, the sandbox)
    ca_bundle: Path | None = None
    adopt: bool = False
    concurrency: int = 8


@dataclass
class OhifResult:
    """The `ohif.json` document (`{"oidc": [...], "dataSources": [...]}`) and what to tell the user."""

    document: dict[str, Any]
    viewer_url: str | None = None
    notes: list[str] = field(default_factory=list)


class TargetSession(Protocol):
    resources: list[Resource]

    def ohif(self, outputs: Mapping[str, Mapping[str, Any]]) -> OhifResult | None:
        """OHIF configuration from the resources' outputs after apply (None when the plan has no viewer)."""

    async def aclose(self) -> None:
        """Close SDK clients and transports."""
