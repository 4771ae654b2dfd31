"""The implementations behind `provision orthanc up | down | share | shares list | shares revoke`."""

from __future__ import annotations

from collections.abc import Sequence

from provision.core import Engine
from provision.core.commands import CommandCall
from provision.core.durations import format_age, parse_duration
from provision.errors import ConfigurationError
from provision.orthanc import client, credentials, shares, stack
from provision.orthanc.session import Deployment, build_resources, deployment


async def require_applied(current: Deployment) -> None:
    """Refuse to run files that differ from the plan: `up` would start what the plan does not say."""
    planned = await Engine(build_resources(current)).plan()
    changed = [step.resource.address for step in planned.steps if step.action.changes_anything or step.blocked]
    if changed:
        raise ConfigurationError(f"the files in {current.site.layout.root} differ from the plan: {', '.join(changed)}",
                                 hint="run `provision orthanc apply PLAN` first (`plan` shows the differences)")


async def up(call: CommandCall, *, foreground: bool) -> stack.StackReport:
    current = deployment(call.require_plan())
    credentials.signing_key(current.plan, current.section)  # Orthanc's filter reads it from the environment
    await require_applied(current)
    shares.ensure_revocation_list(current.site.layout)
    return await stack.up(current.site, call.connection, admin_password=current.admin_password,
                          foreground=foreground, sink=call.on_event, where=current.where)


async def down(call: CommandCall) -> stack.StackReport:
    return stack.down(deployment(call.require_plan(), admin=False).site, call.on_event)


def lifetime(current: Deployment, expires: str | None) -> float:
    """Seconds of `--expires` (default `shares.lifetime`), at most `shares.max_lifetime`."""
    limits = current.section.shares
    try:
        seconds = parse_duration(expires if expires is not None else limits.lifetime)
    except ValueError as error:
        raise ConfigurationError(f"--expires: {error}") from None
    if seconds <= 0:
        raise ConfigurationError(f"--expires {expires}: a share must last longer than 0s")
    longest = parse_duration(limits.max_lifetime)
    if seconds > longest:
        raise ConfigurationError(f"--expires {expires}: longer than {format_age(longest)}, the longest this plan "
                                 f"allows ({current.where('shares.max_lifetime')})")
    return seconds


async def share(call: CommandCall, *, study: Sequence[str], expires: str | None, note: str,
                allow_upload: bool) -> shares.SharedLink:
    current = deployment(call.require_plan())
    uids = shares.check_uids(study)
    seconds = lifetime(current, expires)
    key = credentials.signing_key(current.plan, current.section)
    site = current.site
    async with client.public_client(site, call.connection, auth=(site.admin_user, current.admin_password)) as http:
        missing = await client.missing_studies(http, site, uids)
    if missing:
        raise ConfigurationError(f"--study {missing[0]}: no such study in Orthanc at {site.public_url}; nothing was "
                                 "signed", hint="check the StudyInstanceUID (the admin's QIDO found none)")
    shares.ensure_revocation_list(site.layout)
    issued, token = shares.mint(key, uids, seconds, note=note, upload=allow_upload)
    shares.record(site.layout, issued)
    return shares.SharedLink(issued, shares.viewer_link(site, issued, token))


async def shares_list(call: CommandCall) -> shares.ShareList:
    layout = deployment(call.require_plan(), admin=False).site.layout
    return shares.ShareList(shares.records(layout), shares.revoked_ids(layout))


async def shares_revoke(call: CommandCall, *, ids: Sequence[str], studies: Sequence[str]) -> shares.Revoked:
    layout = deployment(call.require_plan(), admin=False).site.layout
    for uid in studies:
        shares.check_uids([uid])
    return shares.revoke_selected(layout, shares.select(layout, ids, studies))
