"""`provision gcp roles`: grant and revoke DICOM roles on one dataset or store, from flags or a plan's `access`.

Only IAM policies are changed; the dataset or store must exist (it is a read-only reference, so a missing one
blocks the plan instead of failing half-way). All input is validated before a client is created. The binding
differences are shown first and confirmed through the CLI's one show/confirm flow (`--dry-run` changes
nothing; with `--detailed-exitcode`: 0 no changes, 2 changes).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from provision.core.commands import Applied, CommandCall
from provision.core.resource import Context, Resource
from provision.core.target import Connection, PlanView, section_of
from provision.errors import ConfigurationError, PlanError
from provision.gcp.iam import RoleGrant, check_member, combine_grants, validate_grants
from provision.gcp.names import HealthcareName, parse_name
from provision.plan import validators as v

if TYPE_CHECKING:  # the client and the engine load when the command runs, not when the CLI mounts it
    from provision.gcp.client import HealthcareClient

SHORT_ROLES = dict(v.GCP_DICOM_ROLES)  # viewer -> roles/healthcare.dicomViewer, editor -> ...dicomEditor


@dataclass(frozen=True)
class RolesRequest:
    """The grants for one IAM policy (a dataset's or a store's)."""

    target: HealthcareName
    grants: tuple[RoleGrant, ...]


def requests_from_flags(
    *,
    store: str | None = None,
    dataset: str | None = None,
    viewers: Sequence[str] = (),
    editors: Sequence[str] = (),
    revoke_viewers: Sequence[str] = (),
    revoke_editors: Sequence[str] = (),
    authoritative: Sequence[str] = (),
) -> list[RolesRequest]:
    """Validate command-line input and fold it into one request. Raises ConfigurationError; calls nothing."""
    if (store is None) == (dataset is None):
        raise ConfigurationError(
            "name exactly one of --store or --dataset (or give a plan file)",
            hint="--store projects/P/locations/L/datasets/D/dicomStores/S",
        )
    if store is not None:
        target = parse_name(store, require_store=True)
    else:
        target = parse_name(dataset or "")
        if target.store is not None:
            raise ConfigurationError(f"--dataset {dataset!r} names a DICOM store", hint="use --store for a store")
    modes: dict[str, str] = {}
    for role in authoritative:
        key = role.strip()
        if key not in SHORT_ROLES:
            raise ConfigurationError(f"--authoritative {role!r}: expected 'viewer' or 'editor'")
        modes[SHORT_ROLES[key]] = "authoritative"
    entries: list[tuple[str, Sequence[str], str, str]] = []
    for short, present, absent in (("viewer", viewers, revoke_viewers), ("editor", editors, revoke_editors)):
        role = SHORT_ROLES[short]
        mode = modes.get(role, "additive")
        for member in (*present, *absent):
            check_member(member)
        if mode == "authoritative" and not present:
            # as in a plan file (members: at least one): an empty list would silently strip everyone of the role
            raise ConfigurationError(
                f"--authoritative {short} needs at least one --{short}: the {short}s would become nobody",
                hint=f"to take the role from someone, use --revoke-{short} MEMBER",
            )
        if present or mode == "authoritative":
            entries.append((role, tuple(present), mode, "present"))
        if absent:
            if mode == "authoritative":
                raise ConfigurationError(
                    f"--revoke-{short} cannot be combined with --authoritative {short}",
                    hint=f"with --authoritative {short}, everyone not given with --{short} loses the role",
                )
            entries.append((role, tuple(absent), "additive", "absent"))
    if not entries:
        raise ConfigurationError(
            "nothing to grant or revoke", hint="give --viewer, --editor, --revoke-viewer or --revoke-editor"
        )
    try:
        grants = combine_grants(entries)
    except PlanError as error:
        raise ConfigurationError(error.message) from None
    validate_grants(grants)
    return [RolesRequest(target, tuple(grants))]


def requests_from_plan(plan: PlanView) -> list[RolesRequest]:
    """The plan's `gcp.access`, one request per dataset/store policy (validated; calls nothing)."""
    from provision.gcp.plan import GcpSection
    from provision.gcp.session import plan_grants

    gcp = section_of(plan, "gcp", GcpSection)
    requests = []
    for store_id, grants in plan_grants(gcp).items():
        target = HealthcareName(gcp.project, gcp.location, gcp.dataset.id, store_id)
        requests.append(RolesRequest(target, tuple(grants)))
    if not requests:
        raise PlanError("the plan's gcp.access is empty: nothing to grant or revoke")
    return requests


class ExistingTarget(Resource):
    """A dataset or store that must exist; read only (never created, changed or deleted)."""

    managed = False

    def __init__(self, client: HealthcareClient, name: HealthcareName) -> None:
        address = f"gcp.dataset[{name.dataset}]" if name.store is None else f"gcp.dicom_store[{name.store}]"
        super().__init__(address)
        self.client = client
        self.name = name

    @property
    def label(self) -> str:
        return f"{self.name.kind} {self.name.name}"

    async def read(self, ctx: Context) -> dict[str, Any] | None:
        from provision.gcp.client import NotFound
        from provision.gcp.resources import datasets_api

        def get(service: Any) -> Any:
            if self.name.store is None:
                return datasets_api(service).get(name=self.name.name)
            return datasets_api(service).dicomStores().get(name=self.name.name)

        try:
            body = await self.client.call(get, f"reading {self.label}")
        except NotFound:
            return None
        return {"name": body.get("name", self.name.name)}

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {}


def roles_resources(client: HealthcareClient, requests: Iterable[RolesRequest]) -> list[Resource]:
    """A read-only reference per target and one IamPolicyResource per target, depending on it."""
    from provision.gcp.resources import IamPolicyResource

    resources: list[Resource] = []
    for request in requests:
        validate_grants(request.grants)
        reference = ExistingTarget(client, request.target)
        resources.append(reference)
        resources.append(IamPolicyResource(client, request.target, request.grants, depends_on=(reference.address,)))
    return resources


class RolesSession:
    def __init__(self, client: HealthcareClient, resources: list[Resource]) -> None:
        self.client = client
        self.resources = resources

    @property
    def writes(self) -> int:
        """IAM policies written so far (successful setIamPolicy calls; retries after 409 ABORTED not counted)."""
        from provision.gcp.resources import IamPolicyResource

        return sum(r.writes for r in self.resources if isinstance(r, IamPolicyResource))

    async def aclose(self) -> None:
        self.client.close()


async def open_roles_session(
    requests: Sequence[RolesRequest], connection: Connection, *, endpoint: str | None = None,
    credentials: Any = None,
) -> RolesSession:
    for request in requests:
        validate_grants(request.grants)
    from provision.gcp.client import open_client

    client = open_client(connection, endpoint=endpoint, credentials=credentials)
    return RolesSession(client, roles_resources(client, requests))


async def roles(
    call: CommandCall,
    *,
    store: str | None,
    dataset: str | None,
    viewer: list[str] | None,
    editor: list[str] | None,
    revoke_viewer: list[str] | None,
    revoke_editor: list[str] | None,
    authoritative: list[str] | None,
) -> Applied:
    """`provision gcp roles` (declared in `provision.gcp.target`): the plan's gcp.access, or the flags."""
    flags = any([store, dataset, viewer, editor, revoke_viewer, revoke_editor, authoritative])
    if call.plan is not None:
        if flags:
            raise ConfigurationError("give either a plan file or --store/--dataset with members, not both")
        requests = requests_from_plan(call.plan)
    else:
        requests = requests_from_flags(
            store=store, dataset=dataset, viewers=viewer or [], editors=editor or [],
            revoke_viewers=revoke_viewer or [], revoke_editors=revoke_editor or [], authoritative=authoritative or [],
        )
    from provision.core import Engine

    title = "gcp roles: " + ", ".join(str(r.target) for r in requests)
    session = await open_roles_session(requests, call.connection)
    try:
        planned = await Engine(session.resources).plan()
        if not await call.confirm(planned, title, "Apply these IAM changes?"):
            return Applied(planned, None)
        outcome = await Engine(session.resources, on_event=call.on_event).apply(planned)
        writes = session.writes
        return Applied(planned, outcome,
                       summary=f"Roles applied: {writes} IAM polic{'y' if writes == 1 else 'ies'} written.",
                       details={"writes": writes})
    finally:
        await session.aclose()


__all__ = [
    "ExistingTarget",
    "RolesRequest",
    "RolesSession",
    "open_roles_session",
    "requests_from_flags",
    "requests_from_plan",
    "roles",
    "roles_resources",
]
