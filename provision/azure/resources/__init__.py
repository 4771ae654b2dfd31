"""The Azure target's resources and how a plan's `azure:` section becomes a graph of them.

Two branches meet only at the role assignments: the app registration (DICOM API principal -> app -> app
principal -> consent) and the ARM branch (resource group -> workspace -> DICOM service). Lookups of users,
groups and roles start at once; each assignment waits only for its scope, its principal and its role.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from provision.azure.plan import AzureAccess, AzureDicom, AzureSection
from provision.azure.resources.access import (
    MarkedRoleAssignment,
    RoleAssignment,
    RoleDefinition,
    StrayRoleAssignment,
)
from provision.azure.resources.arm import DicomService, ResourceGroup, Workspace, declared_cors
from provision.azure.resources.base import Azure, AzureResource
from provision.azure.resources.entra import (
    AdminConsent,
    Application,
    AppPrincipal,
    DicomApiPrincipal,
    GroupPrincipal,
    ServicePrincipalRef,
    UserPrincipal,
)
from provision.core import Resource

if TYPE_CHECKING:
    from provision.dicom.seed import SeedFiles


def build_resources(section: AzureSection, azure: Azure, seed: SeedFiles | None = None) -> list[Resource]:
    """The resources of a plan's `azure:` section (`seed`: what `azure.dicom.seed` holds). Pure: no I/O."""
    resources: list[AzureResource] = []
    dicom: DicomService | None = None
    principal: AppPrincipal | None = None
    if section.app is not None:
        app = section.app
        api = DicomApiPrincipal(azure)
        registration = Application(azure, app.unique_name, app=app, dicom_api_address=api.address)
        principal = AppPrincipal(azure, app.unique_name, app_address=registration.address)
        resources += [api, registration, principal]
        if app.admin_consent:
            resources.append(
                AdminConsent(
                    azure, app.unique_name, principal_address=principal.address, dicom_api_address=api.address
                )
            )
    if section.resource_group is not None:
        group = ResourceGroup(azure, section.resource_group.name, create=section.resource_group.create)
        resources.append(group)
        if section.workspace is not None:
            workspace = Workspace(
                azure, section.workspace.name, resource_group=group.name, group_address=group.address
            )
            resources.append(workspace)
            if section.dicom is not None:
                dicom = DicomService(
                    azure,
                    section.dicom.name,
                    resource_group=group.name,
                    workspace=workspace.name,
                    workspace_address=workspace.address,
                    cors=declared_cors(section.dicom.cors),
                )
                resources.append(dicom)
    if section.access:
        if dicom is None:  # pragma: no cover - the plan models refuse access without dicom
            raise ValueError("azure.access needs azure.dicom")
        resources += _access(section.access, azure, dicom, principal)
    if dicom is not None:
        dicom.assignments = tuple(r.address for r in resources if isinstance(r, RoleAssignment))
    if dicom is not None and section.dicom is not None and section.dicom.extended_query_tags is not None:
        # after the role assignments: the tool's own DICOM data role (an azure.access entry) must exist before
        # the tags are changed, and, in reverse order on destroy, until they have been deleted
        granted = tuple(r.address for r in resources if isinstance(r, RoleAssignment))
        resources.append(_query_tags(section.dicom, azure, dicom, granted))
    out: list[Resource] = list(resources)
    if dicom is not None and seed is not None:
        # last: after the role assignments (the tool's own DICOM data role) and the query tags (so the seeded
        # studies are indexed by them at once, without a reindex)
        out.append(_seed(dicom, azure, seed, tuple(r.address for r in out if r is not dicom)))
    return out


def _seed(dicom: DicomService, azure: Azure, seed: SeedFiles, after: tuple[str, ...]) -> Resource:
    from provision.azure.resources.base import known
    from provision.core import Context
    from provision.dicom.dicomweb import Endpoint
    from provision.dicom.seed import DicomSeed

    def endpoint_of(ctx: Context) -> Endpoint | None:
        url = ctx.inputs(dicom.address).get("service_url")
        return azure.dicom_access.endpoint(str(url), dicom.name) if known(url) and url else None

    return DicomSeed(f"azure.dicom_seed[{dicom.name}]", seed, endpoint_of, depends_on=(dicom.address, *after),
                     store_address=dicom.address)


def _query_tags(declared: AzureDicom, azure: Azure, dicom: DicomService, after: tuple[str, ...]) -> AzureResource:
    from provision.azure.resources.query_tags import ExtendedQueryTags, QueryTag

    tags = [QueryTag.of(tag.model_dump()) for tag in declared.extended_query_tags or ()]
    return ExtendedQueryTags(azure, declared.name, tags, data_plane=azure.data_plane, dicom_address=dicom.address,
                             after=after)


def _access(
    entries: Sequence[AzureAccess], azure: Azure, dicom: DicomService, app_principal: AppPrincipal | None
) -> list[AzureResource]:
    lookups: dict[str, AzureResource] = {}
    assignments: list[AzureResource] = []

    def lookup(resource: AzureResource) -> AzureResource:
        return lookups.setdefault(resource.address.casefold(), resource)

    for entry in entries:
        kind, principal = entry.principal_kind, entry.principal or ""
        target: AzureResource
        if kind == "viewer_app":
            if app_principal is None:  # pragma: no cover - the plan models refuse viewer_app without app
                raise ValueError("viewer_app access needs azure.app")
            target, label = app_principal, "the viewer app"
        elif kind == "user":
            target, label = lookup(UserPrincipal(azure, principal)), f"user {principal}"
        elif kind == "group":
            target, label = lookup(GroupPrincipal(azure, principal)), f"group {principal}"
        else:
            target, label = lookup(ServicePrincipalRef(azure, principal)), f"service principal {principal}"
        role = lookup(RoleDefinition(azure, entry.role))
        key = "viewer-app" if kind == "viewer_app" else entry.principal
        assignments.append(
            RoleAssignment(
                azure,
                f"{key}:{entry.role}",
                principal_label=label,
                scope_address=dicom.address,
                principal_address=target.address,
                role_address=role.address,
            )
        )
    return [*lookups.values(), *assignments]


__all__ = [
    "AdminConsent",
    "AppPrincipal",
    "Application",
    "Azure",
    "AzureResource",
    "DicomApiPrincipal",
    "DicomService",
    "GroupPrincipal",
    "MarkedRoleAssignment",
    "ResourceGroup",
    "RoleAssignment",
    "RoleDefinition",
    "ServicePrincipalRef",
    "StrayRoleAssignment",
    "UserPrincipal",
    "Workspace",
    "build_resources",
]
