"""`open_session(plan, connection)`: the Google Cloud target as the CLI sees it (resources + OHIF output)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provision.core import Resource
from provision.core.target import Connection, OhifResult, PlanView, section_of
from provision.gcp.client import HealthcareClient, open_client
from provision.gcp.iam import RoleGrant, combine_grants, validate_grants
from provision.gcp.names import HealthcareName
from provision.gcp.plan import GcpSection
from provision.gcp.resources import DatasetResource, DicomStoreResource, IamPolicyResource
from provision.ohif import config as ohif
from provision.plan import validators as v

if TYPE_CHECKING:
    from provision.dicom.seed import SeedFiles


def plan_grants(gcp: GcpSection) -> dict[str | None, list[RoleGrant]]:
    """The plan's access entries folded into one grant list per target (None = the dataset, else a store id)."""
    entries: dict[str | None, list[tuple[str, Sequence[str], str, str]]] = {}
    for entry in gcp.access:
        entries.setdefault(entry.store, []).append(
            (v.check_gcp_role(entry.role), tuple(entry.members), entry.mode, entry.state)
        )
    grants = {target: combine_grants(items) for target, items in entries.items()}
    for items in grants.values():
        validate_grants(items)
    return grants


def build_resources(client: HealthcareClient, plan: PlanView, gcp: GcpSection,
                    seeds: Mapping[str, SeedFiles] | None = None, session: GcpSession | None = None,
                    ) -> list[Resource]:
    """Dataset, stores, IAM policies and the stores' seeds of the plan's `gcp` section, wired by dependencies
    (`seeds` by store id; their endpoints come from `session`)."""
    dataset_name = HealthcareName(gcp.project, gcp.location, gcp.dataset.id)
    dataset = DatasetResource(client, dataset_name, create=gcp.dataset.create, plan_name=plan.name, env=plan.env)
    resources: list[Resource] = [dataset]
    stores: dict[str, DicomStoreResource] = {}
    for spec in gcp.dicom_stores:
        notification = None
        if spec.notification is not None:
            notification = {
                "pubsub_topic": spec.notification.pubsub_topic,
                "send_for_bulk_import": spec.notification.send_for_bulk_import,
            }
        store = DicomStoreResource(
            client,
            HealthcareName(gcp.project, gcp.location, gcp.dataset.id, spec.id),
            plan_name=plan.name,
            env=plan.env,
            labels=dict(spec.labels),
            notification=notification,
            depends_on=(dataset.address,),
            dataset_owned=gcp.dataset.create,
        )
        stores[spec.id] = store
        resources.append(store)
    for target, grants in plan_grants(gcp).items():
        if target is None:
            resources.append(
                IamPolicyResource(client, dataset_name, grants, depends_on=(dataset.address,), parent=dataset.address)
            )
        else:
            store = stores[target]
            resources.append(
                IamPolicyResource(client, store.name, grants, depends_on=(store.address,), parent=store.address)
            )
    policies = tuple(r.address for r in resources if isinstance(r, IamPolicyResource))
    for store_id, seed in (seeds or {}).items():
        if session is None:  # pragma: no cover - open_session always passes it along with the seeds
            raise ValueError("seeding needs the session")
        resources.append(_seed(session, stores[store_id], seed, policies))
    return resources


def _seed(session: GcpSession, store: DicomStoreResource, seed: SeedFiles, after: tuple[str, ...]) -> Resource:
    """The store's test studies, uploaded after the IAM policies are written."""
    from provision.core import Context
    from provision.dicom.dicomweb import Endpoint
    from provision.dicom.seed import DicomSeed
    from provision.gcp.dataplane import endpoint_for

    def endpoint_of(ctx: Context) -> Endpoint | None:
        exists = ctx.inputs(store.address).get("exists") is True
        return endpoint_for(session.client, session.ca_bundles, store.name.name) if exists else None

    return DicomSeed(f"gcp.dicom_seed[{store.name.store}]", seed, endpoint_of,
                     depends_on=(store.address, *after), store_address=store.address)


def _source_name(base: str, store_id: str) -> str:
    return f"{base}-{re.sub(r'[^A-Za-z0-9_-]', '-', store_id)}"


def oauth_client_notes(client_id: str | None, viewer_url: str | None) -> list[str]:
    """What to register on the browser OAuth client by hand (no public API creates or edits one)."""
    where = "Google Cloud console > APIs & Services > Credentials > OAuth 2.0 Client IDs"
    if client_id is None:
        return [
            "No gcp.oauth_client_id in the plan: the viewer has no sign-in and cannot call the Healthcare API. "
            f"Create a 'Web application' OAuth client ({where}) and put its id in the plan."
        ]
    if viewer_url is None:
        return [
            f"Register on OAuth client {client_id} ({where}): the origin OHIF is served from as an Authorized "
            "JavaScript origin, and <viewer URL>/callback and <viewer URL>/silent-refresh.html as Authorized "
            "redirect URIs. Set ohif.viewer_url to get the exact values."
        ]
    origin = v.origin_of(viewer_url)
    return [
        f"Register on OAuth client {client_id} ({where}); no public API can do this:",
        f"  Authorized JavaScript origins: {origin}",
        f"  Authorized redirect URIs: {viewer_url}/callback",
        f"                            {viewer_url}/silent-refresh.html",
        "  OAuth consent screen scopes: .../auth/cloud-healthcare and .../auth/cloudplatformprojects.readonly",
    ]


def ohif_result(
    plan: PlanView, gcp: GcpSection, outputs: Mapping[str, Mapping[str, Any]], authority: str = ohif.GOOGLE_AUTHORITY
) -> OhifResult | None:
    """OHIF's `oidc` and one data source per store, from the stores' outputs (their DICOMweb roots)."""
    stores = [store.id for store in gcp.dicom_stores]
    roots: list[tuple[str, str, str]] = []
    for store_id in stores:
        found = outputs.get(f"gcp.dicom_store[{store_id}]", {})
        root, name = found.get("dicomweb_root"), found.get("name")
        if isinstance(root, str) and isinstance(name, str):
            roots.append((store_id, name, root))
    if not roots:
        return None
    viewer_url = plan.ohif.viewer_url
    sources = []
    for index, (store_id, name, root) in enumerate(roots):
        single = len(roots) == 1
        source_name = plan.ohif.data_source_name if index == 0 else _source_name(plan.ohif.data_source_name, store_id)
        friendly = plan.ohif.friendly_name if single else f"{plan.ohif.friendly_name} ({store_id})"
        sources.append(
            ohif.google_data_source(
                source_name=source_name,
                friendly_name=friendly,
                store_name=name,
                base=root.removesuffix(f"/{name}/dicomWeb"),
                dataset_browser=gcp.dataset_browser,
            )
        )
    oidc = []
    if gcp.oauth_client_id:
        redirect = f"{viewer_url}/callback" if viewer_url else "/callback"
        oidc.append(ohif.google_oidc(client_id=gcp.oauth_client_id, redirect_uri=redirect, authority=authority))
    document = ohif.ohif_document(oidc, sources)
    return OhifResult(document, viewer_url=viewer_url, notes=oauth_client_notes(gcp.oauth_client_id, viewer_url))


class GcpSession:
    """Implements `provision.core.target.TargetSession` for Google Cloud Healthcare."""

    def __init__(self, plan: PlanView, section: GcpSection, client: HealthcareClient,
                 resources: list[Resource], ca_bundles: tuple[Path, ...] = (),
                 authority: str = ohif.GOOGLE_AUTHORITY) -> None:
        self.plan = plan
        self.section = section
        self.client = client
        self.resources = resources
        #: the CA bundles to trust besides the system's (the sandbox's, --ca-bundle), for DICOMweb
        self.ca_bundles = ca_bundles
        #: where viewers sign in: accounts.google.com, or the sandbox's `{url}/google`
        self.authority = authority

    def ohif(self, outputs: Mapping[str, Mapping[str, Any]]) -> OhifResult | None:
        return ohif_result(self.plan, self.section, outputs, self.authority)

    async def aclose(self) -> None:
        self.client.close()


async def open_session(
    plan: PlanView, connection: Connection, *, endpoint: str | None = None, credentials: Any = None
) -> GcpSession:
    """Validate the plan's `gcp` section, then connect (sandbox when `connection.sandbox`, else Google ADC).

    Every input problem is raised before a client exists, so bad input never causes a call.
    """
    section = section_of(plan, "gcp", GcpSection)
    plan_grants(section)  # refuses malformed roles/members before connecting
    seeds = await _seed_files(plan, section)
    client = open_client(connection, endpoint=endpoint, credentials=credentials)
    authority = f"{connection.sandbox.url.rstrip('/')}/google" if connection.sandbox else ohif.GOOGLE_AUTHORITY
    session = GcpSession(plan, section, client, [], tuple(connection.trusted()), authority)
    try:
        session.resources = build_resources(client, plan, section, seeds, session)
    except BaseException:
        client.close()
        raise
    return session


async def _seed_files(plan: PlanView, section: GcpSection) -> dict[str, SeedFiles]:
    """What each store's `seed:` holds (headers only), refused before anything is called when it holds no
    DICOM file."""
    import asyncio

    from provision.dicom.seed import SeedFiles
    from provision.plan.base import resolve_path

    seeds: dict[str, SeedFiles] = {}
    for index, store in enumerate(section.dicom_stores):
        if store.seed:
            paths = [resolve_path(path, plan.source) for path in store.seed]
            where = f"{plan.source or 'the plan'}: gcp.dicom_stores[{index}].seed"
            seeds[store.id] = await asyncio.to_thread(SeedFiles.read, paths, where)
    return seeds


__all__ = ["GcpSession", "build_resources", "oauth_client_notes", "ohif_result", "open_session", "plan_grants"]
