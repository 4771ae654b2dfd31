"""The targets provision knows: one line each. Adding a target is a package and a line here.

Each entry names a module and a `provision.core.target.Target` instance in it, `"package.module:ATTRIBUTE"`.
That module must import nothing heavy (no cloud SDK, no pydantic model built at import): the CLI loads every
target at start-up to mount its commands, and `provision --help` stays fast. The CLI, `provision gc`, the plan
format (one top-level section per target) and the sandbox (`provision.sandbox.<name>`, when it exists) loop
over this list, in this order.
"""

from __future__ import annotations

import importlib
from functools import cache

from provision.core.target import Target

TARGETS: dict[str, str] = {
    "azure": "provision.azure.target:TARGET",
    "gcp": "provision.gcp.target:TARGET",
    "orthanc": "provision.orthanc.target:TARGET",
}


@cache
def targets() -> tuple[Target, ...]:
    """Every registered target, loaded once."""
    loaded = []
    for name, where in TARGETS.items():
        module, _, attribute = where.partition(":")
        target = getattr(importlib.import_module(module), attribute)
        if not isinstance(target, Target) or target.name != name:
            raise TypeError(f"{where} is not the Target named {name!r}")
        loaded.append(target)
    return tuple(loaded)


def target(name: str) -> Target:
    """The registered target called `name` (KeyError when there is none)."""
    for candidate in targets():
        if candidate.name == name:
            return candidate
    raise KeyError(name)


__all__ = ["TARGETS", "target", "targets"]
