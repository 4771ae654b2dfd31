"""`provision gc`: list the environments whose ownership marks show they are older than a limit, and delete them
with `--yes`. `register(app)` adds the command to the top-level app.

Where it looks (docs/ci-environments.md):
- Azure: the subscription of the sandbox (`--sandbox`, PROVISION_SANDBOX), else `--azure-subscription` or
  AZURE_SUBSCRIPTION_ID, with the tenant of the signed-in identity (for the apps);
- Google Cloud: `--gcp-project` (or GOOGLE_CLOUD_PROJECT, or the sandbox's project) in each `--gcp-location`;
  only when a location is given, as datasets live in one location each.
`--cloud azure|gcp` narrows the search to one of them.

Conventions shared with the target commands (provision.cli.target): `--output json` for machines, a table for
people, input errors before any call, exit 1 when anything failed. Cloud SDKs are imported only when it runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from provision.cli.render import console, err_console, print_json
from provision.cli.target import CaBundleOpt, OutputFormat, OutputOpt, SandboxOpt, sandbox_info, user_errors
from provision.errors import ConfigurationError


class CloudName(StrEnum):
    azure = "azure"
    gcp = "gcp"


@dataclass(frozen=True)
class Where:
    """What to search, decided from the flags before any call."""

    azure_subscription: str | None = None
    azure_cloud: str = "public"
    gcp_project: str | None = None
    gcp_locations: tuple[str, ...] = ()

    def describe(self) -> list[dict[str, str]]:
        places = [{"cloud": "azure", "scope": self.azure_subscription}] if self.azure_subscription else []
        return places + [
            {"cloud": "gcp", "scope": f"projects/{self.gcp_project}/locations/{location}"}
            for location in self.gcp_locations
        ]


def _check_gcp_scope(project: str, locations: tuple[str, ...]) -> None:
    """Name the flag when a project id or location is malformed (before any call)."""
    from provision.plan import validators as v

    checks = [("--gcp-project (or GOOGLE_CLOUD_PROJECT)", v.check_gcp_project, project)]
    checks += [("--gcp-location", v.check_gcp_location, location) for location in locations]
    for flag, check, value in checks:
        try:
            check(value)
        except ValueError as error:
            raise ConfigurationError(f"{flag}: {error}") from None


def where_to_look(
    *,
    sandbox: Any,
    clouds: list[CloudName] | None,
    azure_subscription: str | None,
    azure_cloud: str,
    gcp_project: str | None,
    gcp_locations: list[str] | None,
) -> Where:
    """Azure when a subscription is known (the sandbox's, a flag, AZURE_SUBSCRIPTION_ID); Google Cloud when a
    location is given. `clouds` narrows that down, and names a cloud that must be searched."""
    wanted = set(clouds or ())
    subscription = sandbox.subscription_id if sandbox is not None else (azure_subscription or "").strip() or None
    locations = tuple(dict.fromkeys(loc.strip() for loc in gcp_locations or () if loc.strip()))
    project = (gcp_project or "").strip() or (getattr(sandbox, "gcp_project", None) if sandbox is not None else None)
    search_azure = bool(subscription) and (not wanted or CloudName.azure in wanted)
    search_gcp = bool(locations) and (not wanted or CloudName.gcp in wanted)
    if CloudName.azure in wanted and not subscription:
        raise ConfigurationError(
            "--cloud azure: no Azure subscription to search",
            hint="pass --azure-subscription or set AZURE_SUBSCRIPTION_ID",
        )
    if CloudName.gcp in wanted and not locations:
        raise ConfigurationError("--cloud gcp: no location to search", hint="pass --gcp-location (repeatable)")
    if search_gcp and not project:
        raise ConfigurationError(
            "no Google Cloud project to search", hint="pass --gcp-project or set GOOGLE_CLOUD_PROJECT"
        )
    if search_gcp:
        _check_gcp_scope(str(project), locations)
    if not (search_azure or search_gcp):
        raise ConfigurationError(
            "nothing to search: no Azure subscription and no Google Cloud location",
            hint="pass --azure-subscription (or set AZURE_SUBSCRIPTION_ID) and/or --gcp-project with --gcp-location,"
            " or --sandbox",
        )
    return Where(
        azure_subscription=subscription if search_azure else None,
        azure_cloud=azure_cloud,
        gcp_project=project if search_gcp else None,
        gcp_locations=locations if search_gcp else (),
    )


@dataclass
class Result:
    now: datetime
    selection: Any
    reports: list[Any] | None = None
    throttled: int = 0
    retried: int = 0
    seconds: float = 0.0
    searched: list[dict[str, str]] = field(default_factory=list)

    @property
    def failed(self) -> list[Any]:
        return [r for r in self.reports or [] if r.status == "failed"]


async def _open(where: Where, sandbox: Any, ca_bundle: Path | None) -> list[Any]:
    inventories: list[Any] = []
    try:
        if where.azure_subscription:
            from provision.azure.inventory import open_inventory as open_azure

            inventories.append(await open_azure(subscription_id=where.azure_subscription, sandbox=sandbox,
                                                ca_bundle=ca_bundle, cloud=where.azure_cloud))
        for location in where.gcp_locations:
            from provision.gcp.inventory import open_inventory as open_gcp

            inventories.append(open_gcp(project=str(where.gcp_project), location=location, sandbox=sandbox,
                                        ca_bundle=ca_bundle))
    except BaseException:
        for inventory in inventories:
            await inventory.aclose()
        raise
    return inventories


async def collect(
    where: Where,
    *,
    sandbox: Any,
    ca_bundle: Path | None,
    older_than: float,
    env_prefix: str | None,
    plan: str | None,
    delete: bool,
    concurrency: int,
    on_progress: Any = None,
    on_selected: Any = None,
) -> Result:
    """Discover, select and (with `delete`) tear down. The whole of `provision gc` without its rendering."""
    import asyncio

    from provision.reaper import Retrier, group, reap, select
    from provision.reaper.run import by_key

    started = time.monotonic()
    inventories = await _open(where, sandbox, ca_bundle)
    try:
        retrier = Retrier()
        lists = await asyncio.gather(*(inventory.discover(retrier) for inventory in inventories))
        now = datetime.now(UTC)
        selection = select(group(item for found in lists for item in found), now=now, older_than=older_than,
                           env_prefix=env_prefix, plan=plan)
        result = Result(now, selection, searched=where.describe())
        if delete and selection.selected:
            if on_selected is not None:
                on_selected(result)
            places = by_key(inventories)

            def teardown(environment: Any, progress: Any) -> Any:
                inventory = places[(environment.key.cloud, environment.key.scope)]
                return inventory.teardown(environment, retrier, progress)

            result.reports = await reap(selection.selected, teardown, concurrency=concurrency,
                                        on_progress=on_progress)
        elif delete:
            result.reports = []
        result.throttled, result.retried = retrier.throttled, retrier.retried
        result.seconds = time.monotonic() - started
        return result
    finally:
        for inventory in inventories:
            await inventory.aclose()


# --- rendering ---------------------------------------------------------------------------------------------


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "unknown"


def document(result: Result, *, older_than: float, env_prefix: str | None, plan: str | None) -> dict[str, Any]:
    """The `--output json` document."""
    reports = {report.key: report for report in result.reports or []}
    environments = []
    for environment in result.selection.selected:
        key = environment.key
        entry: dict[str, Any] = {
            "cloud": key.cloud, "scope": key.scope, "plan": key.plan, "env": key.env,
            "created": environment.created.isoformat().replace("+00:00", "Z") if environment.created else None,
            "age_seconds": round(environment.age(result.now) or 0, 3),
            "resources": [item.as_dict() for item in environment.resources],
        }
        report = reports.get(key)
        entry.update(report.as_dict() if report is not None else {"status": "would delete"})
        environments.append(entry)
    return {
        "dry_run": result.reports is None,
        "older_than_seconds": older_than,
        "env_prefix": env_prefix,
        "plan": plan,
        "now": result.now.isoformat().replace("+00:00", "Z"),
        "searched": result.searched,
        "environments": environments,
        "skipped": [
            {"cloud": e.key.cloud, "scope": e.key.scope, "plan": e.key.plan, "env": e.key.env, "reason": reason}
            for e, reason in result.selection.skipped
        ],
        "failed": len(result.failed),
        "throttled_retries": result.throttled,
        "other_retries": result.retried,
        "seconds": round(result.seconds, 3),
    }


def _table(result: Result, *, with_outcome: bool) -> Table:
    from provision.reaper import format_age

    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for column in ("cloud", "plan", "env", "age", "created", "resources"):
        table.add_column(column)
    if with_outcome:
        table.add_column("result")
    reports = {report.key: report for report in result.reports or []}
    for environment in result.selection.selected:
        key = environment.key
        row = [key.cloud, key.plan, key.env, format_age(environment.age(result.now)), _when(environment.created),
               environment.summary()]
        cells: list[Any] = list(row)
        if with_outcome:
            report = reports.get(key)
            if report is None:
                cells.append("")
            elif report.status == "failed":
                cells.append(Text(f"failed: {report.error}", style="red"))
            else:
                kept = f"; kept {'; '.join(report.kept)}" if report.kept else ""
                cells.append(Text(f"deleted {report.deleted} in {report.seconds:.1f}s{kept}", style="green"))
        table.add_row(*cells)
    return table


def _heading(result: Result, older_than: str, env_prefix: str | None, plan: str | None) -> str:
    places = ", ".join(f"{p['cloud']} {p['scope']}" for p in result.searched)
    filters = "".join([f", env prefix {env_prefix}" if env_prefix else "", f", plan {plan}" if plan else ""])
    return f"Environments older than {older_than}{filters} in {places}:"


#: tables are read in CI logs: one line per environment rather than the 80 columns of a pipe
_WIDE = None if console.is_terminal else 240


def print_result(result: Result, *, older_than: str, env_prefix: str | None, plan: str | None) -> None:
    selected = result.selection.selected
    younger = len(result.selection.skipped)
    if result.reports is None:
        console.print(_heading(result, older_than, env_prefix, plan), style="bold")
        if selected:
            console.print(_table(result, with_outcome=False), width=_WIDE)
            count = sum(len(e.resources) for e in selected)
            console.print(f"Dry run: {len(selected)} environment(s) ({count} resources) would be deleted. "
                          "Re-run with --yes to delete them.", style="bold")
        else:
            console.print("  none")
    else:
        if selected:
            console.print(_table(result, with_outcome=True), width=_WIDE)
        else:
            console.print(_heading(result, older_than, env_prefix, plan), style="bold")
            console.print("  none")
        deleted = sum(r.deleted for r in result.reports)
        done = len(result.reports) - len(result.failed)
        console.print(
            f"Deleted {done} environment(s) ({deleted} resources) in {result.seconds:.1f} s; "
            f"{len(result.failed)} failed; {result.throttled} throttled request(s) retried.",
            style="bold red" if result.failed else "bold green",
        )
    if younger:
        console.print(f"{younger} other environment(s) left alone (younger than {older_than}, or of unknown age).")


def register(app: typer.Typer) -> None:
    """Add `gc` to the top-level app."""

    @app.command("gc")
    def gc_command(
        older_than: Annotated[
            str,
            typer.Option("--older-than", help="Only environments at least this old, by the creation time in their "
                         "ownership tags: 24h, 90m, 2d, 1d12h, 0s.", show_default=False),
        ],
        env_prefix: Annotated[
            str | None, typer.Option("--env-prefix", help="Only environments whose name starts with this, e.g. pr-.")
        ] = None,
        plan: Annotated[str | None, typer.Option("--plan", help="Only environments of this plan (its name).")] = None,
        yes: Annotated[
            bool, typer.Option("--yes", help="Delete them. Without it: a dry run that lists what would go.")
        ] = False,
        all_environments: Annotated[
            bool, typer.Option("--all-environments", help="With --yes and neither --env-prefix nor --plan: "
                               "confirm that every old environment, long-lived ones included, may go.")
        ] = False,
        sandbox: SandboxOpt = False,
        ca_bundle: CaBundleOpt = None,
        azure_subscription: Annotated[
            str | None,
            typer.Option("--azure-subscription", envvar="AZURE_SUBSCRIPTION_ID",
                         help="Azure subscription to search (and its tenant, for apps).", show_default=False),
        ] = None,
        azure_cloud: Annotated[
            str, typer.Option("--azure-cloud", help="Azure cloud: public, usgov or china.")
        ] = "public",
        gcp_project: Annotated[
            str | None,
            typer.Option("--gcp-project", envvar="GOOGLE_CLOUD_PROJECT", help="Google Cloud project to search.",
                         show_default=False),
        ] = None,
        gcp_location: Annotated[
            list[str] | None,
            typer.Option("--gcp-location", help="Google Cloud location to search (repeatable); Google Cloud is "
                         "searched only when one is given.", show_default=False),
        ] = None,
        cloud: Annotated[
            list[CloudName] | None,
            typer.Option("--cloud", help="Search only this cloud (repeatable).", show_default=False),
        ] = None,
        concurrency: Annotated[
            int, typer.Option("--concurrency", min=1, max=64, help="Environments torn down at once.")
        ] = 16,
        output: OutputOpt = OutputFormat.text,
    ) -> None:
        """List environments older than --older-than by their ownership tags; delete them with --yes."""
        text = output is OutputFormat.text
        with user_errors():
            from provision.reaper import parse_duration

            try:
                limit = parse_duration(older_than)
            except ValueError as error:
                raise ConfigurationError(f"--older-than: {error}") from None
            if yes and not (env_prefix or plan or all_environments):
                # a long-lived environment (`env: default`) is as old as anything: never reap it by accident
                raise ConfigurationError(
                    "refusing to delete every environment older than the limit",
                    hint="narrow it with --env-prefix (e.g. pr-) or --plan, or pass --all-environments",
                )
            with sandbox_info(sandbox) as info:
                where = where_to_look(sandbox=info, clouds=cloud, azure_subscription=azure_subscription,
                                      azure_cloud=azure_cloud, gcp_project=gcp_project, gcp_locations=gcp_location)
                clock = time.monotonic()

                def progress(key: Any, message: str) -> None:
                    if text:
                        err_console.print(f"[{time.monotonic() - clock:6.1f}s] {key}: {message}")

                def selected(result: Result) -> None:
                    if text:
                        console.print(_heading(result, older_than, env_prefix, plan).replace(
                            "Environments", "Deleting environments", 1), style="bold")

                import asyncio

                result = asyncio.run(collect(
                    where, sandbox=info, ca_bundle=ca_bundle, older_than=limit, env_prefix=env_prefix, plan=plan,
                    delete=yes, concurrency=concurrency, on_progress=progress, on_selected=selected,
                ))
            if text:
                print_result(result, older_than=older_than, env_prefix=env_prefix, plan=plan)
            else:
                print_json(document(result, older_than=limit, env_prefix=env_prefix, plan=plan))
            if result.failed:
                raise typer.Exit(1)
