"""Extra commands of a target (`provision azure verify`, `provision gcp roles`, ...), described as data.

A command is an async function `run(call, **options)` that returns a result object and never prints. Its
options are keyword parameters annotated `Annotated[T, Option(help=...)]` with a default; the CLI turns each
into a flag (`write_test` -> `--write-test`). A keyword parameter annotated `Annotated[T, Argument(help=...)]`
without a default is a positional argument after the plan file (`list[Path]`: `PATH...`). The CLI adds the
options every command shares (the plan file when the command takes one, `--sandbox`, `--ca-bundle`,
`--output`). A command that changes something shows its plan and asks through `call.confirm` (the CLI's one
show/confirm flow, which also gives it `--auto-approve`, `--dry-run` and `--detailed-exitcode`).

What the CLI knows how to render: `Checks` (verify), `Applied` (a confirmed change) and any `Report`; progress
and streamed items arrive through `call.on_event` (`provision.core.events`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from provision.core.events import CommandEventSink, ignore

if TYPE_CHECKING:
    from provision.core.engine import Outcome, Plan
    from provision.core.inputs import Connection, PlanView


@dataclass(frozen=True)
class Argument:
    """`Annotated` metadata of a positional command argument (after the plan file); a `list[...]` one takes
    one or more values (`PATH...`)."""

    help: str
    metavar: str | None = None


@dataclass(frozen=True)
class Option:
    """`Annotated` metadata of one command option."""

    help: str
    #: the flag's spellings; default: `--` + the parameter's name with dashes
    flags: tuple[str, ...] = ()
    metavar: str | None = None
    #: read the value from this environment variable when the flag is not given
    envvar: str | None = None
    minimum: int | None = None
    maximum: int | None = None


class PlanUse(StrEnum):
    """Whether a command takes a plan file (its first argument)."""

    REQUIRED = "required"
    OPTIONAL = "optional"
    NONE = "none"


#: `confirm(plan, title, question)`: shows the plan, refuses a blocked one, asks (or takes --auto-approve);
#: returns False for a dry run (nothing may be changed), raises when the user says no
Confirm = Callable[["Plan", str, str], Awaitable[bool]]


async def confirm_always(plan: Plan, title: str, question: str) -> bool:
    """For callers without a person to ask (tests, scripts): go ahead unless the plan is blocked."""
    from provision.errors import ProvisionError

    if plan.blocked:
        raise ProvisionError("the plan is blocked; nothing was changed")
    return True


@dataclass(frozen=True)
class CommandCall:
    """What a command runs with, besides its own options."""

    #: the loaded plan, when the command takes one and it was given
    plan: PlanView | None
    #: where its input came from, for reports: the plan file, or "command line"
    source: str
    connection: Connection
    #: progress: the engine's events, `BulkProgress` of a bulk transfer, `Record`s a command streams
    on_event: CommandEventSink = ignore
    confirm: Confirm = confirm_always

    def require_plan(self) -> PlanView:
        """The plan, for commands that declare `PlanUse.REQUIRED` (the CLI makes sure one was given)."""
        if self.plan is None:
            from provision.errors import ConfigurationError

            raise ConfigurationError("this command needs a plan file")
        return self.plan


@dataclass(frozen=True)
class GcCall:
    """What a target's `gc_places` runs with, besides its own options."""

    connection: Connection
    #: True when `--cloud` names this target: finding nothing to search is then an error, not a skip
    required: bool = False


@dataclass(frozen=True)
class Command:
    """One extra command of a target: `provision <target> <name> ...`; a name of two words (`"shares list"`) is a
    command of a group (`provision orthanc shares list ...`)."""

    name: str
    #: `async def run(call: CommandCall, *, option: Annotated[T, Option(...)] = default, ...) -> result`;
    #: its docstring is the command's help
    run: Callable[..., Awaitable[object]]
    plan: PlanUse = PlanUse.REQUIRED
    #: the command shows a plan and asks before changing anything (it calls `call.confirm`)
    confirms: bool = False


# --- results ------------------------------------------------------------------------------------------------


@dataclass
class Check:
    """One line of a verification report."""

    area: str
    subject: str
    ok: bool
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Checks:
    """A verification report: the command exits 0 only when every check passed."""

    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [check for check in self.checks if not check.ok]

    def document(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [check.as_dict() for check in self.checks]}


@dataclass
class Applied:
    """A change a command planned and (unless it was a dry run) made."""

    plan: Plan
    #: None for a dry run
    outcome: Outcome | None
    #: the closing line for people, e.g. "Roles applied: 2 IAM policies written."
    summary: str = ""
    #: extra keys of the JSON document
    details: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Report(Protocol):
    """Any other result: lines for people, a document for machines, and whether it all went well."""

    @property
    def ok(self) -> bool: ...

    def lines(self) -> Sequence[str]: ...

    def document(self) -> dict[str, Any]: ...


__all__ = [
    "Applied",
    "Argument",
    "Check",
    "Checks",
    "Command",
    "CommandCall",
    "Confirm",
    "GcCall",
    "Option",
    "PlanUse",
    "Report",
    "confirm_always",
]
