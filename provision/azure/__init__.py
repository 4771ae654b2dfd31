"""The Azure target: Entra ID app registration, Health Data Services workspace and DICOM service with CORS, role
assignments, and the OHIF configuration that points at them.

`open_session(plan, options)` is the whole public surface the CLI needs. It is loaded on first use (PEP 562), so
that mounting `provision azure verify` does not load the target's resources and engine at start-up.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from provision.azure.session import AzureSession, open_session

__all__ = ["AzureSession", "open_session"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from provision.azure import session

        return getattr(session, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
