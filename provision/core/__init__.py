"""Target-agnostic reconcile engine: resources, pure diff, actions, graph executor. Imports no cloud SDK.

The engine and the retry loop (which bring asyncio) are loaded on first use (PEP 562): the CLI imports
`provision.core.commands` and `provision.core.target` at start-up and must not pay for them there.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from provision.core.actions import Action, Create, Delete, FieldChange, NoOp, Repair, Replace, Update, Wait
from provision.core.diff import Compare, FieldPolicy, Schema, diff, values_equal
from provision.core.events import Event, EventSink, Phase
from provision.core.resource import Context, Lifecycle, Resource, Stray, TemporaryError, Timeouts
from provision.core.values import UNKNOWN

if TYPE_CHECKING:
    from provision.core.engine import Engine, ExecutionError, Outcome, Plan, Step
    from provision.core.retry import OperationTimeout, backoff_delay, with_retry

_LAZY = {
    "Engine": "provision.core.engine",
    "ExecutionError": "provision.core.engine",
    "Outcome": "provision.core.engine",
    "Plan": "provision.core.engine",
    "Step": "provision.core.engine",
    "OperationTimeout": "provision.core.retry",
    "backoff_delay": "provision.core.retry",
    "with_retry": "provision.core.retry",
}

__all__ = [
    "UNKNOWN",
    "Action",
    "Compare",
    "Context",
    "Create",
    "Delete",
    "Engine",
    "Event",
    "EventSink",
    "ExecutionError",
    "FieldChange",
    "FieldPolicy",
    "Lifecycle",
    "NoOp",
    "OperationTimeout",
    "Outcome",
    "Phase",
    "Plan",
    "Repair",
    "Replace",
    "Resource",
    "Schema",
    "Step",
    "Stray",
    "TemporaryError",
    "Timeouts",
    "Update",
    "Wait",
    "backoff_delay",
    "diff",
    "values_equal",
    "with_retry",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
