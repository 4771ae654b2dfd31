"""Time as the emulated APIs print it (a module of its own so that the world and every API can import it)."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(ts: float) -> str:
    """ISO 8601 UTC with 7 fractional digits, the way Azure prints times."""
    dt = datetime.fromtimestamp(ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond:06d}0Z"
