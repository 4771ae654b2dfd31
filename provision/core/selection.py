"""`--target ADDRESS`: run on some resources only, with what they need (and, for destroy, what needs them)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

from provision.core.resource import Resource
from provision.errors import ConfigurationError


def select(resources: Sequence[Resource], addresses: Iterable[str], *, destroy: bool = False) -> list[Resource]:
    """The resources named by `addresses` and, transitively, those they depend on (plan, apply: a resource
    cannot be made without its prerequisites), or those that depend on them (destroy: nothing may be left
    pointing at a deleted resource). Order is kept. An unknown address is an error naming the known ones."""
    by_address = {r.address: r for r in resources}
    wanted = list(dict.fromkeys(addresses))
    unknown = [a for a in wanted if a not in by_address]
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(by_address), n=1)
        hint = f"did you mean {close[0]}?" if close else "the plan's resources: " + ", ".join(by_address)
        raise ConfigurationError(f"--target {unknown[0]}: the plan has no such resource", hint=hint)
    if destroy:
        follows = {r.address: [d.address for d in resources if r.address in d.depends_on] for r in resources}
    else:
        follows = {r.address: list(r.depends_on) for r in resources}
    chosen: set[str] = set()
    pending = list(wanted)
    while pending:
        address = pending.pop()
        if address not in chosen:
            chosen.add(address)
            pending += follows[address]
    return [r for r in resources if r.address in chosen]


__all__ = ["select"]
