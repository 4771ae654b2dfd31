"""Durations on the command line (`24h`, `90m`, `1d12h`, `0s`) and ages for people (`3d 4h`)."""

from __future__ import annotations

import re

__all__ = ["format_age", "parse_duration"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_duration(text: str) -> float:
    """Seconds in `text`: one or more `<number><unit>` (s, m, h, d, w), e.g. `24h`, `1d12h`, `1.5h`, `0s`; a bare
    `0` is accepted too. Raises ValueError with what is expected."""
    value = text.strip().lower().replace(" ", "")
    if value == "0":
        return 0.0
    pos, total = 0, 0.0
    for match in _PART.finditer(value):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not value or pos != len(value):
        raise ValueError(f"{text!r} is not a duration: use a number and a unit (s, m, h, d, w), e.g. 24h, 90m, 1d12h")
    return total


def format_age(seconds: float | None) -> str:
    """`3d 4h`, `2h 5m`, `4m 10s`, `12s`; `unknown` for None. Two units at most."""
    if seconds is None:
        return "unknown"
    rest = max(0, int(seconds))
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size or (unit == "s" and not parts):
            parts.append(f"{rest // size}{unit}")
            rest %= size
        if len(parts) == 2:
            break
    return " ".join(parts)
