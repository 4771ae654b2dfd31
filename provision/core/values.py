"""Values the engine passes around that are not plain data: "known after apply"."""

from __future__ import annotations

from typing import Any


class _Unknown:
    """A value that is only known after apply (an id or URL the cloud assigns)."""

    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "(known after apply)"


UNKNOWN: Any = _Unknown()


def plain(value: Any) -> Any:
    """JSON-friendly rendering; "known after apply" becomes a marker string."""
    if value is UNKNOWN:
        return "(known after apply)"
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value
