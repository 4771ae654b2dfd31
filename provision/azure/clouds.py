"""Which Azure a session talks to: the endpoints of a named or custom cloud, or of the local sandbox.

The named clouds' endpoints are part of the plan format (`AzureSection.endpoints`); this module turns them, or a
sandbox, into what the SDK clients need: base URLs, token audiences, the host Graph tokens may go to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from provision.azure.plan import AzureSection
    from provision.core.target import SandboxEndpoints

#: The sandbox plays public Azure: it issues tokens for, and checks, the public cloud's audiences
#: while serving every API on its own origin.
SANDBOX_ARM_AUDIENCE = "https://management.azure.com"
SANDBOX_GRAPH_AUDIENCE = "https://graph.microsoft.com"
SANDBOX_DICOM_AUDIENCE = "https://dicom.healthcareapis.azure.com"


def _origin(url: Any) -> str:
    return str(url).rstrip("/")


@dataclass(frozen=True)
class Cloud:
    """Endpoints of one Azure cloud, each an origin without a trailing '/'."""

    name: str
    #: Entra ID authority host, e.g. https://login.microsoftonline.com
    login: str
    #: Azure Resource Manager, e.g. https://management.azure.com
    arm: str
    #: Microsoft Graph (without the version), e.g. https://graph.microsoft.com
    graph: str
    #: audience of DICOM data-plane tokens, e.g. https://dicom.healthcareapis.azure.com
    dicom_audience: str
    #: audiences of ARM and Graph tokens (the endpoints themselves, except in the sandbox)
    arm_audience: str = field(default="")
    graph_audience: str = field(default="")
    #: True for the local emulator (every endpoint on one origin)
    sandbox: bool = False

    def __post_init__(self) -> None:
        for name in ("login", "arm", "graph", "dicom_audience"):
            object.__setattr__(self, name, _origin(getattr(self, name)))
        object.__setattr__(self, "arm_audience", _origin(self.arm_audience or self.arm))
        object.__setattr__(self, "graph_audience", _origin(self.graph_audience or self.graph))

    @property
    def graph_api(self) -> str:
        """Base URL of Graph v1.0 requests."""
        return f"{self.graph}/v1.0"

    @property
    def graph_host(self) -> str:
        """The only host the Graph client sends tokens to."""
        return urlsplit(self.graph).hostname or ""

    @property
    def arm_scope(self) -> str:
        return f"{self.arm_audience}/.default"

    @property
    def graph_scope(self) -> str:
        return f"{self.graph_audience}/.default"

    def authority(self, tenant_id: str) -> str:
        """The OpenID authority OHIF signs users in with (Entra ID v2 endpoint)."""
        return f"{self.login}/{tenant_id}/v2.0/"


def sandbox_cloud(info: SandboxEndpoints) -> Cloud:
    """The sandbox: login, ARM and Graph (`{url}/v1.0`) on `info.url`, public Azure's audiences."""
    url = _origin(info.url)
    return Cloud(
        name="sandbox",
        login=url,
        arm=url,
        graph=url,
        dicom_audience=SANDBOX_DICOM_AUDIENCE,
        arm_audience=SANDBOX_ARM_AUDIENCE,
        graph_audience=SANDBOX_GRAPH_AUDIENCE,
        sandbox=True,
    )


def resolve_cloud(section: AzureSection, sandbox: SandboxEndpoints | None = None) -> Cloud:
    """The cloud of a plan's `azure:` section (`cloud:` by name or as an endpoints block), or the sandbox.

    With a sandbox the plan's cloud is ignored, so a plan written for any cloud runs against it unchanged.
    """
    if sandbox is not None:
        return sandbox_cloud(sandbox)
    endpoints = section.endpoints
    return Cloud(
        name=section.cloud if isinstance(section.cloud, str) else "custom",
        login=endpoints.login,
        arm=endpoints.arm,
        graph=endpoints.graph,
        dicom_audience=endpoints.dicom_audience,
    )
