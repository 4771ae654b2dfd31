"""`provision gc`: list the environments whose ownership marks show they are older than a limit, and delete them
with `--yes`. `register(app)` adds the command to the top-level app.

Where it looks is each target's business (`Target.gc_places` and the options it declares, e.g. Azure's
`--azure-subscription`, Google Cloud's `--gcp-project` and `--gcp-location`; docs/ci-environments.md); `--cloud
NAME` narrows the search to those targets and makes finding nothing to search there an error. Every input is
checked before any call. Conventions shared with the target commands: `--output json` for machines, a table
for people, exit 1 when anything failed. Cloud SDKs are imported only when it runs.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Sequence
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from provision.cli.render import console, err_console, gc_document, print_gc, print_json
from provision.cli.target import (
    CaBundleOpt,
    OutputFormat,
    OutputOpt,
    SandboxOpt,
    _keyword,
    build_function,
    connection_of,
    option_parameters,
    run_async,
    sandbox_info,
    user_errors,
)
from provision.core.commands import GcCall
from provision.core.target import Connection, GcPlaces, Target
from provision.errors import ConfigurationError

if TYPE_CHECKING:
    from provision.core.gc import GcResult, Inventory


async def open_places(
    places: Sequence[tuple[Target, GcPlaces, dict[str, Any]]], connection: Connection, clouds: set[str]
) -> list[Inventory]:
    """Every target's inventories (validated flags, opened clients, no call yet); closed again on an error."""
    inventories: list[Inventory] = []
    try:
        for target, gc_places, values in places:
            if clouds and target.name not in clouds:
                continue
            inventories += await gc_places(GcCall(connection, required=target.name in clouds), **values)
    except BaseException:
        for inventory in inventories:
            await inventory.aclose()
        raise
    if not inventories:
        raise ConfigurationError(
            "nothing to search: no Azure subscription and no Google Cloud location",
            hint="pass --azure-subscription (or set AZURE_SUBSCRIPTION_ID) and/or --gcp-project with --gcp-location,"
            " or --sandbox",
        )
    return inventories


def register(app: typer.Typer, targets: Sequence[Target]) -> None:
    """Add `gc` to the top-level app, with the options of every target that has something to reap."""
    places = [(target, gc_places) for target in targets if (gc_places := target.gc_places()) is not None]
    own = {target.name: option_parameters(gc_places) for target, gc_places in places}
    seen: set[str] = set()
    for parameters in own.values():
        clash = seen & {p.name for p in parameters}
        if clash:
            raise TypeError(f"two targets declare the gc option {sorted(clash)[0]}")
        seen |= {p.name for p in parameters}
    cloud_names = Enum("CloudName", {target.name: target.name for target, _ in places}, type=str)  # type: ignore[misc]

    parameters = [
        _keyword("older_than", Annotated[str, typer.Option(
            "--older-than", help="Only environments at least this old, by the creation time in their ownership "
            "tags: 24h, 90m, 2d, 1d12h, 0s.", show_default=False)], inspect.Parameter.empty),
        _keyword("env_prefix", Annotated[str | None, typer.Option(
            "--env-prefix", help="Only environments whose name starts with this, e.g. pr-.")], None),
        _keyword("plan", Annotated[str | None, typer.Option(
            "--plan", help="Only environments of this plan (its name).")], None),
        _keyword("yes", Annotated[bool, typer.Option(
            "--yes", help="Delete them. Without it: a dry run that lists what would go.")], False),
        _keyword("all_environments", Annotated[bool, typer.Option(
            "--all-environments", help="With --yes and neither --env-prefix nor --plan: confirm that every old "
            "environment, long-lived ones included, may go.")], False),
        _keyword("sandbox", SandboxOpt, False),
        _keyword("ca_bundle", CaBundleOpt, None),
        *(parameter for parameters in own.values() for parameter in parameters),
        _keyword("cloud", Annotated[list[cloud_names] | None, typer.Option(
            "--cloud", help="Search only this cloud (repeatable).", show_default=False)], None),
        _keyword("concurrency", Annotated[int, typer.Option(
            "--concurrency", min=1, max=64, help="Environments torn down at once.")], 16),
        _keyword("output", OutputOpt, OutputFormat.text),
    ]

    def body(values: dict[str, Any]) -> None:
        text = values["output"] is OutputFormat.text
        older_than, env_prefix, plan, yes = values["older_than"], values["env_prefix"], values["plan"], values["yes"]
        with user_errors(json_output=not text):
            from provision.core.durations import parse_duration
            from provision.core.gc import collect

            try:
                limit = parse_duration(older_than)
            except ValueError as error:
                raise ConfigurationError(f"--older-than: {error}") from None
            if yes and not (env_prefix or plan or values["all_environments"]):
                # a long-lived environment (`env: default`) is as old as anything: never reap it by accident
                raise ConfigurationError(
                    "refusing to delete every environment older than the limit",
                    hint="narrow it with --env-prefix (e.g. pr-) or --plan, or pass --all-environments",
                )
            clouds = {str(cloud.value) for cloud in values["cloud"] or ()}
            chosen = [(target, gc_places, {p.name: values[p.name] for p in own[target.name]})
                      for target, gc_places in places]
            with sandbox_info(values["sandbox"]) as info:
                connection = connection_of(info, values["ca_bundle"])
                clock = time.monotonic()

                def progress(key: Any, message: str) -> None:
                    if text:
                        err_console.print(f"[{time.monotonic() - clock:6.1f}s] {key}: {message}")

                def selected(result: GcResult) -> None:
                    if text:
                        from provision.cli.render import gc_heading

                        console.print(gc_heading(result, older_than, env_prefix, plan).replace(
                            "Environments", "Deleting environments", 1), style="bold")

                async def work() -> GcResult:
                    inventories = await open_places(chosen, connection, clouds)
                    try:
                        return await collect(inventories, older_than=limit, env_prefix=env_prefix, plan=plan,
                                             delete=yes, concurrency=values["concurrency"], on_progress=progress,
                                             on_selected=selected)
                    finally:
                        for inventory in inventories:
                            await inventory.aclose()

                result = run_async(work())
            if text:
                print_gc(result, older_than=older_than, env_prefix=env_prefix, plan=plan)
            else:
                print_json(gc_document(result, older_than=limit, env_prefix=env_prefix, plan=plan))
            if result.failed:
                raise typer.Exit(1)

    doc = "List environments older than --older-than by their ownership tags; delete them with --yes."
    app.command("gc")(build_function("gc", doc, parameters, body))
