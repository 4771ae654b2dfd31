"""A local HTTPS emulator of the clouds the tool provisions: Azure (Entra ID, Microsoft Graph, Resource Manager,
the DICOM data plane) in `azure/`, Google Cloud (OAuth, Cloud Healthcare) in `gcp/`.

The real SDKs talk to it unmodified (TLS verification on, with the sandbox's own CA). See docs/sandbox.md for
what it emulates, how to configure each SDK, the package layout, and the `/_sandbox/...` control API.

    with start_sandbox(tmp_path, lro_seconds=0.5) as sb:
        info = sb.info          # url, ca_bundle, tenant_id, subscription_id, client_id, client_secret, ...
        SandboxControl(info).add_fault(429, path_regex="/v1.0/applications", retry_after=1, count=1)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .info import INFO_FILE, SandboxInfo

if TYPE_CHECKING:
    from .client import SandboxControl
    from .server import RunningSandbox, start_sandbox

__all__ = ["INFO_FILE", "RunningSandbox", "SandboxControl", "SandboxInfo", "start_sandbox"]


def __getattr__(name: str) -> Any:
    # Lazy: `provision --help` and plan loading must not import uvicorn/starlette/httpx.
    if name in ("RunningSandbox", "start_sandbox"):
        from . import server

        return getattr(server, name)
    if name == "SandboxControl":
        from .client import SandboxControl

        return SandboxControl
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
