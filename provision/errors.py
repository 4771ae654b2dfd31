"""One error hierarchy for the whole tool.

The CLI catches `ProvisionError` and prints its message (no traceback); anything else is a bug.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


class ProvisionError(Exception):
    """Base class of every error the tool reports to a user."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None, details: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        #: what an SDK or a service said in full, when the message sums it up (shown with `provision -v`)
        self.details = details

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"

    def document(self) -> dict[str, object]:
        """The error for `--output json`: `{"error": {type, message, hint}, "diagnostics": [...]}`."""
        return {"error": {"type": type(self).__name__, "message": self.message, "hint": self.hint},
                "diagnostics": []}


@dataclass(frozen=True)
class Diagnostic:
    """One located problem in a plan file (1-based line and column, the key path as written: `azure.app.name`)."""

    file: str
    line: int
    column: int
    path: str
    message: str


class PlanError(ProvisionError):
    """A plan file is malformed or invalid. Raised before any cloud call."""

    def __init__(self, message: str, *, hint: str | None = None, diagnostics: tuple[Diagnostic, ...] = ()) -> None:
        super().__init__(message, hint=hint)
        self.diagnostics = diagnostics

    def document(self) -> dict[str, object]:
        return {**super().document(), "diagnostics": [asdict(d) for d in self.diagnostics]}


class ConfigurationError(ProvisionError):
    """Credentials, endpoints or command-line flags are wrong or missing."""


class CloudError(ProvisionError):
    """A cloud API refused a request for good (validation, authorization, conflict)."""


class OwnershipError(ProvisionError):
    """A resource exists that this plan does not own (refused unless --adopt)."""
