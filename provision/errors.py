"""One error hierarchy for the whole tool.

The CLI catches `ProvisionError` and prints its message (no traceback); anything else is a bug.
"""

from __future__ import annotations


class ProvisionError(Exception):
    """Base class of every error the tool reports to a user."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class PlanError(ProvisionError):
    """A plan file is malformed or invalid. Raised before any cloud call."""


class ConfigurationError(ProvisionError):
    """Credentials, endpoints or command-line flags are wrong or missing."""


class CloudError(ProvisionError):
    """A cloud API refused a request for good (validation, authorization, conflict)."""


class OwnershipError(ProvisionError):
    """A resource exists that this plan does not own (refused unless --adopt)."""
