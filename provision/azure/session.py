"""`open_session`: from a plan and the CLI's options to the resources the engine reconciles, and back to OHIF.

This module imports no SDK at import time; `open_session` does, so `provision --help` stays fast.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provision.azure.clouds import Cloud, resolve_cloud
from provision.azure.ownership import Owner
from provision.azure.plan import AzureSection
from provision.azure.resources.arm import DicomService
from provision.azure.resources.base import Azure
from provision.azure.resources.entra import Application
from provision.core import UNKNOWN, Resource
from provision.core.target import Connection, OhifResult, PlanView, section_of
from provision.errors import ConfigurationError, ProvisionError

if TYPE_CHECKING:
    from provision.azure.dataplane import DicomAccess
    from provision.dicom.seed import SeedFiles


def _env(name: str) -> str | None:
    return os.environ.get(name, "").strip() or None


def _needs_arm(section: AzureSection) -> bool:
    return section.resource_group is not None


def _needs_graph(section: AzureSection) -> bool:
    return section.app is not None or any(entry.principal_kind != "viewer_app" for entry in section.access)


class AzureSession:
    """One plan against one Azure (or the sandbox): resources, OHIF output, and the clients to close."""

    def __init__(
        self,
        *,
        plan: PlanView,
        section: AzureSection,
        cloud: Cloud,
        tenant_id: str | None,
        azure: Azure,
        resources: list[Resource],
        credential: Any = None,
        transport: Any = None,
        ca_bundles: tuple[Path, ...] = (),
    ) -> None:
        self.plan = plan
        self.section = section
        self.cloud = cloud
        self.tenant_id = tenant_id
        self.azure = azure
        self.resources = resources
        self.credential = credential
        self.transport = transport
        #: the CA bundles to trust besides the system's (the sandbox's, --ca-bundle)
        self.ca_bundles = ca_bundles

    def dicom_access(self) -> DicomAccess:
        """How to reach the DICOM services' data plane (upload, search, change feed, seeding)."""
        from provision.azure.dataplane import DicomAccess

        return DicomAccess(self.credential, self.cloud.dicom_audience, self.ca_bundles)

    def ohif(self, outputs: Mapping[str, Mapping[str, Any]]) -> OhifResult | None:
        """`ohif.json` from what exists: the app's client id and the DICOM service's URL. No secret."""
        from provision.ohif.config import azure_data_source, azure_oidc, ohif_document

        section = self.section
        if section.dicom is None:
            return None
        dicom = outputs.get(DicomService.address_of(section.dicom.name), {})
        service_url = dicom.get("service_url")
        missing = [] if _present(service_url) else [f"the URL of DICOM service {section.dicom.name}"]
        oidc: list[dict[str, Any]] = []
        notes: list[str] = []
        app = section.app
        if app is not None:
            registration = outputs.get(Application.address_of(app.unique_name), {})
            client_id = registration.get("app_id")
            if not _present(client_id):
                missing.append(f"the client id of app {app.unique_name}")
            if not self.tenant_id:
                missing.append("the tenant id")
            if not missing:
                oidc.append(
                    azure_oidc(
                        login_host=self.cloud.login,
                        tenant_id=str(self.tenant_id),
                        client_id=str(client_id),
                        dicom_audience=self.cloud.dicom_audience,
                        flow=app.flow,
                        redirect_uri=app.redirect_uris[0],
                        post_logout_redirect_uri=app.logout_redirect_uri,
                    )
                )
            if len(app.redirect_uris) > 1:
                notes.append(f"OHIF redirects to the first redirect URI, {app.redirect_uris[0]}")
            if not app.admin_consent:
                notes.append("without admin consent each user is asked to consent (or meets 'Need admin approval')")
        else:
            notes.append("no azure.app: the viewer has no sign-in, and the DICOM service accepts no anonymous request")
        if missing:
            raise ProvisionError(
                "no OHIF configuration yet: " + ", ".join(missing) + " is not known",
                hint="run apply first",
            )
        source = azure_data_source(
            source_name=self.plan.ohif.data_source_name,
            friendly_name=self.plan.ohif.friendly_name,
            service_url=str(service_url),
        )
        return OhifResult(ohif_document(oidc, [source]), viewer_url=self.plan.ohif.viewer_url, notes=notes)

    async def aclose(self) -> None:
        for api in (self.azure.arm_api, self.azure.graph_api):
            if api is not None:
                await api.close()
        if self.credential is not None:
            await self.credential.close()
        if self.transport is not None and self.transport.session is not None:
            await self.transport.session.close()

    async def __aenter__(self) -> AzureSession:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()


def _present(value: Any) -> bool:
    return value is not None and value is not UNKNOWN and value != ""


async def open_session(plan: PlanView, connection: Connection) -> AzureSession:
    """Connect to the plan's cloud (or `connection.sandbox`) and build the plan's resources.

    Tenant: the plan's `tenant_id`, else AZURE_TENANT_ID, else the one the credential's token names. Subscription:
    the plan's, else AZURE_SUBSCRIPTION_ID. Against the sandbox both are the sandbox's, whatever the plan says,
    so a plan written for real Azure runs there unchanged.
    """
    section = section_of(plan, "azure", AzureSection)

    from provision.azure.credentials import (
        SharedTokens,
        default_credential,
        sandbox_credential,
        shared_transport,
        ssl_context,
        token_claims,
    )
    from provision.azure.resources import build_resources

    sandbox = connection.sandbox
    cloud = resolve_cloud(section, sandbox)
    bundles = connection.trusted()
    if sandbox is not None:
        tenant_id: str | None = sandbox.tenant_id
        subscription_id: str | None = sandbox.subscription_id
    else:
        tenant_id = section.tenant_id or _env("AZURE_TENANT_ID")
        subscription_id = section.subscription_id or _env("AZURE_SUBSCRIPTION_ID")
    if _needs_arm(section) and not subscription_id:
        raise ConfigurationError(
            "no Azure subscription: set azure.subscription_id in the plan or AZURE_SUBSCRIPTION_ID",
            hint="`az account show --query id -o tsv` prints the current one",
        )

    context = ssl_context(*bundles)
    transport = shared_transport(context)
    inner = sandbox_credential(sandbox, transport) if sandbox is not None else default_credential(cloud, transport)
    credential = SharedTokens(inner)
    azure = Azure(
        owner=Owner(plan.name, plan.env),
        location=section.location,
        tags=dict(section.tags),
        subscription_id=subscription_id,
    )
    session = AzureSession(
        plan=plan, section=section, cloud=cloud, tenant_id=tenant_id, azure=azure, resources=[], credential=credential,
        transport=transport, ca_bundles=tuple(bundles),
    )
    try:
        if _needs_arm(section):
            from provision.azure.arm import ArmApi

            azure.arm_api = ArmApi(
                credential=credential, subscription_id=str(subscription_id), cloud=cloud, transport=transport
            )
        if _needs_graph(section):
            from provision.azure.graph import GraphApi

            azure.graph_api = GraphApi(credential=credential, cloud=cloud, context=context)
        if section.dicom is not None and section.dicom.extended_query_tags is not None:
            from provision.azure.resources.query_tags import DicomDataPlane

            azure.data_plane = DicomDataPlane(credential, cloud.dicom_audience, context)
        if session.tenant_id is None and section.app is not None:
            session.tenant_id = await _tenant_from_token(credential, cloud, token_claims)
        seed = None
        if section.dicom is not None and section.dicom.seed:
            seed = await _seed_files(plan, section.dicom.seed)
            azure.dicom_access = session.dicom_access()
        session.resources = build_resources(section, azure, seed)
    except BaseException:
        await session.aclose()
        raise
    return session


async def _seed_files(plan: PlanView, paths: tuple[str, ...]) -> SeedFiles:
    """What `azure.dicom.seed` holds (headers only), refused before any change when it holds no DICOM file."""
    import asyncio

    from provision.dicom.seed import SeedFiles
    from provision.plan.base import resolve_path

    resolved = [resolve_path(path, plan.source) for path in paths]
    where = f"{plan.source or 'the plan'}: azure.dicom.seed"
    return await asyncio.to_thread(SeedFiles.read, resolved, where)


async def _tenant_from_token(credential: Any, cloud: Cloud, token_claims: Any, *, limit: float = 60.0) -> str:
    """The tenant the signed-in identity belongs to (the OHIF authority needs it). Entra ID being unavailable
    for a while is retried within `limit` seconds (the credential raises it as a temporary error)."""
    from provision.core import with_retry

    token = await with_retry(lambda: credential.get_token(cloud.graph_scope), what="signing in to Azure",
                             limit=limit)
    tenant = token_claims(token.token).get("tid")
    if not tenant:
        raise ConfigurationError("the tenant is unknown", hint="set azure.tenant_id in the plan or AZURE_TENANT_ID")
    return str(tenant)
