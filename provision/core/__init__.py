"""Target-agnostic reconcile engine: resources, pure diff, actions, graph executor. Imports no cloud SDK."""

from provision.core.actions import Action, Create, Delete, FieldChange, NoOp, Replace, Update
from provision.core.diff import UNKNOWN, Compare, FieldPolicy, Schema, diff, values_equal
from provision.core.engine import Engine, ExecutionError, Outcome, Plan, Step
from provision.core.events import Event, EventSink, Phase
from provision.core.resource import Context, Resource, TemporaryError, Timeouts
from provision.core.retry import OperationTimeout, backoff_delay, with_retry

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
    "NoOp",
    "OperationTimeout",
    "Outcome",
    "Phase",
    "Plan",
    "Replace",
    "Resource",
    "Schema",
    "Step",
    "TemporaryError",
    "Timeouts",
    "Update",
    "backoff_delay",
    "diff",
    "values_equal",
    "with_retry",
]
