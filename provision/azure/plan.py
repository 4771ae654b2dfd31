"""The plan's `azure:` section: an Entra ID app, a Health Data Services workspace and DICOM service with CORS,
and role assignments at the DICOM service. Defaults that derive from `ohif.viewer_url` (redirect URIs, CORS
origins) are filled by `AzureSection.resolved`, so consumers read final values and never recompute them."""

from __future__ import annotations

import difflib
from typing import Annotated, Literal, Self

from pydantic import ConfigDict, Discriminator, Field, Tag, WithJsonSchema, field_validator, model_validator

from provision.plan import validators as v
from provision.plan.base import (
    CorsOrigin,
    Email,
    Guid,
    HttpMethod,
    HttpsUrl,
    Loc,
    LocalPath,
    Model,
    OhifSection,
    RedirectUri,
    Rule,
    Section,
    duplicates,
    fail,
)

__all__ = [
    "AZURE_CLOUDS",
    "AzureAccess",
    "AzureApp",
    "AzureCloudEndpoints",
    "AzureCors",
    "AzureDicom",
    "AzureQueryTag",
    "AzureResourceGroup",
    "AzureSection",
    "AzureWorkspace",
]

AzureLocation = Annotated[str, Rule(v.check_azure_location, v.AZURE_LOCATION_RE)]
ResourceGroupName = Annotated[str, Rule(v.check_resource_group, v.RESOURCE_GROUP_RE, min_length=1, max_length=90)]
AppUniqueName = Annotated[str, Rule(v.check_app_unique_name, v.APP_UNIQUE_NAME_RE)]
WorkspaceName = Annotated[str, Rule(v.check_workspace_name, v.WORKSPACE_NAME_RE)]
DicomServiceName = Annotated[str, Rule(v.check_dicom_service_name, v.DICOM_SERVICE_NAME_RE)]
DicomTagPath = Annotated[str, Rule(v.check_dicom_tag_path, v.DICOM_TAG_PATH_RE)]
AzureTagKey = Annotated[str, Rule(v.check_azure_tag_key, v.AZURE_TAG_KEY_RE)]
AzureTagValue = Annotated[str, Rule(v.check_azure_tag_value, max_length=256)]


class AzureCloudEndpoints(Model):
    """Endpoints of an Azure cloud (for a sovereign or private cloud, or the local sandbox)."""

    login: HttpsUrl = Field(description="Entra ID authority host, e.g. https://login.microsoftonline.com.")
    arm: HttpsUrl = Field(description="Azure Resource Manager, e.g. https://management.azure.com.")
    graph: HttpsUrl = Field(description="Microsoft Graph, e.g. https://graph.microsoft.com.")
    dicom_audience: HttpsUrl = Field(
        description="Audience (resource) of DICOM tokens, e.g. https://dicom.healthcareapis.azure.com."
    )


#: The named clouds (built without validation at import). Public is confirmed; the US Government and China
#: DICOM audiences are unverified.
AZURE_CLOUDS: dict[str, AzureCloudEndpoints] = {
    "public": AzureCloudEndpoints.model_construct(
        login="https://login.microsoftonline.com",
        arm="https://management.azure.com",
        graph="https://graph.microsoft.com",
        dicom_audience="https://dicom.healthcareapis.azure.com",
    ),
    "usgov": AzureCloudEndpoints.model_construct(
        login="https://login.microsoftonline.us",
        arm="https://management.usgovcloudapi.net",
        graph="https://graph.microsoft.us",
        dicom_audience="https://dicom.healthcareapis.azure.us",
    ),
    "china": AzureCloudEndpoints.model_construct(
        login="https://login.chinacloudapi.cn",
        arm="https://management.chinacloudapi.cn",
        graph="https://microsoftgraph.chinacloudapi.cn",
        dicom_audience="https://dicom.healthcareapis.azure.cn",
    ),
}

AzureCloud = Annotated[
    Annotated[Literal["public", "usgov", "china"], Tag("name")] | Annotated[AzureCloudEndpoints, Tag("endpoints")],
    Discriminator(lambda value: "endpoints" if isinstance(value, dict | AzureCloudEndpoints) else "name"),
]


class AzureResourceGroup(Model):
    name: ResourceGroupName = Field(
        description="Resource group name: 1-90 of letters, digits, `-_.()`, not ending with '.'."
    )
    create: bool = Field(
        default=True, description="Create the group when missing (false: it must exist and is never deleted)."
    )


class AzureApp(Model):
    """The Entra ID app registration the viewer signs users in with."""

    unique_name: AppUniqueName = Field(
        description="Graph `uniqueName`: how the app is found again (idempotent create)."
    )
    display_name: str = Field(min_length=1, max_length=256)
    sign_in_audience: Literal[
        "AzureADMyOrg", "AzureADMultipleOrgs", "AzureADandPersonalMicrosoftAccount", "PersonalMicrosoftAccount"
    ] = "AzureADandPersonalMicrosoftAccount"
    flow: Literal["spa", "implicit"] = Field(
        default="spa",
        description="spa: authorization code + PKCE (OHIF 3.9+); implicit: the legacy id_token token flow.",
    )
    redirect_uris: tuple[RedirectUri, ...] = Field(
        default=(), description='Default: `[ohif.viewer_url + "/callback"]`; required when ohif.viewer_url is not set.'
    )
    logout_redirect_uri: RedirectUri | None = None
    admin_consent: bool = Field(
        default=True,
        description='Grant tenant-wide consent for the DICOM scope so users never see "Need admin approval".',
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        problems: list[tuple[Loc, str]] = []
        if "redirect_uris" in self.model_fields_set and not self.redirect_uris:
            problems.append((("redirect_uris",), "must list at least one redirect URI (or be omitted)"))
        problems += [
            (("redirect_uris",), f"{uri!r} is listed twice") for uri in sorted(duplicates(self.redirect_uris))
        ]
        fail(problems)
        return self


class AzureWorkspace(Model):
    name: WorkspaceName = Field(description="Health Data Services workspace: 3-24 lower-case letters or digits.")


class AzureCors(Model):
    """CORS of the DICOM service. Every field is optional: only declared fields are managed."""

    origins: tuple[CorsOrigin, ...] | None = Field(
        default=None,
        description="Default: the origin of ohif.viewer_url when set."
        " Each scheme://host[:port] (no path, no trailing '/') or '*'.",
    )
    headers: tuple[Annotated[str, Field(min_length=1)], ...] | None = None
    methods: tuple[HttpMethod, ...] | None = None
    max_age: int | None = Field(default=None, ge=0, le=99999)
    allow_credentials: bool | None = None


class AzureQueryTag(Model):
    """An extended query tag of the DICOM service, so QIDO can search on it (Azure DICOM lab 004)."""

    path: DicomTagPath = Field(description='The tag as 8 hex digits, e.g. "00101010" (quoted).')
    level: Literal["Study", "Series", "Instance"]
    vr: str | None = Field(default=None, pattern=r"^[A-Z]{2}$", description="Value representation (private tags).")
    private_creator: str | None = Field(default=None, min_length=1, max_length=64)
    query_status: Literal["Enabled", "Disabled"] = "Enabled"


class AzureDicom(Model):
    name: DicomServiceName = Field(
        description="DICOM service name: 3-24 of lower-case letters, digits and '-', not starting or ending with '-'."
    )
    cors: AzureCors | None = Field(default=None, description="Omitted: CORS is not managed.")
    extended_query_tags: tuple[AzureQueryTag, ...] | None = Field(
        default=None,
        description="Omitted: not managed. Listed: the service holds exactly these (others are deleted).",
    )
    seed: tuple[LocalPath, ...] = Field(
        default=(),
        description="Test studies uploaded at the end of apply (only the missing instances): DICOM files, folders"
        " and .zip archives, relative to the plan file. The tool's identity needs DICOM Data Owner (azure.access).",
    )

    @model_validator(mode="after")
    def _unique_query_tags(self) -> AzureDicom:
        repeated = duplicates(tag.path.upper() for tag in self.extended_query_tags or ())
        if repeated:
            raise ValueError(f"extended query tag {sorted(repeated)[0]} is listed more than once")
        fail((("seed",), f"{path!r} is listed twice") for path in sorted(duplicates(self.seed)))
        return self


_PRINCIPAL_KEYS = ("user", "group", "service_principal", "viewer_app")
#: the data roles of Azure's DICOM service (facts/azure.md), known without asking Azure
BUILTIN_DICOM_ROLES = ("DICOM Data Owner", "DICOM Data Reader")


class AzureAccess(Model):
    """One role assignment at the DICOM service scope; exactly one principal key per entry."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": [key]} for key in _PRINCIPAL_KEYS]},
    )

    user: Email | None = Field(default=None, description="A user by UPN or e-mail.")
    group: Guid | None = Field(default=None, description="A group by object id.")
    service_principal: Guid | None = Field(default=None, description="A service principal by object id.")
    viewer_app: Literal[True] | None = Field(
        default=None, description="The viewer app's own service principal (requires azure.app)."
    )
    role: str = Field(
        default="DICOM Data Owner",
        min_length=1,
        max_length=512,
        description='A built-in role name ("DICOM Data Owner", "DICOM Data Reader") or a custom role\'s name.',
    )

    @field_validator("role")
    @classmethod
    def _known_role(cls, role: str) -> str:
        """A built-in DICOM role by its exact name; a near miss of one is a typo, refused before any call
        (a custom role's name is looked up in the subscription by plan, which writes nothing)."""
        builtin = {name.casefold(): name for name in BUILTIN_DICOM_ROLES}
        if role.casefold() in builtin:
            return builtin[role.casefold()]
        close = difflib.get_close_matches(role.casefold(), list(builtin), n=1, cutoff=0.8)
        if close:
            raise ValueError(f"unknown role {role!r}; did you mean {builtin[close[0]]!r}?")
        return role

    @model_validator(mode="after")
    def _one_principal(self) -> Self:
        given = [key for key in _PRINCIPAL_KEYS if getattr(self, key) is not None]
        if not given:
            fail([((), "needs one principal key: " + ", ".join(_PRINCIPAL_KEYS))])
        if len(given) > 1:
            fail([((given[1],), f"exactly one principal key per entry; found {' and '.join(map(repr, given))}")])
        return self

    @property
    def principal_kind(self) -> Literal["user", "group", "service_principal", "viewer_app"]:
        """Which principal key the entry uses."""
        for key in _PRINCIPAL_KEYS:
            if getattr(self, key) is not None:
                return key  # type: ignore[return-value]
        raise AssertionError("validated entries have a principal")  # pragma: no cover

    @property
    def principal(self) -> str | None:
        """The UPN/e-mail or object id; None for `viewer_app`."""
        return self.user or self.group or self.service_principal


class AzureSection(Section):
    """Azure: an Entra ID app, a Health Data Services workspace and DICOM service, role assignments."""

    cloud: AzureCloud = Field(
        default="public",
        description="public | usgov | china, or a mapping of endpoints {login, arm, graph, dicom_audience}.",
    )
    tenant_id: Guid | None = None
    subscription_id: Guid | None = None
    location: AzureLocation = Field(description="Azure region, e.g. westeurope.")
    resource_group: AzureResourceGroup | None = Field(default=None, description="Required when workspace is declared.")
    app: AzureApp | None = None
    workspace: AzureWorkspace | None = Field(default=None, description="Required when dicom is declared.")
    dicom: AzureDicom | None = Field(default=None, description="Required when access is declared.")
    access: tuple[AzureAccess, ...] = ()
    tags: Annotated[
        dict[AzureTagKey, AzureTagValue],
        WithJsonSchema(
            {
                "type": "object",
                "propertyNames": {"pattern": v.AZURE_TAG_KEY_RE},
                "additionalProperties": {"type": "string", "maxLength": 256},
            }
        ),
    ] = Field(default_factory=dict)
    """Extra tags on every resource (the ownership tags are added by the tool)."""

    @model_validator(mode="after")
    def _check(self) -> Self:
        problems: list[tuple[Loc, str]] = []
        if self.workspace and not self.resource_group:
            problems.append((("resource_group",), "is required when azure.workspace is declared"))
        if self.dicom and not self.workspace:
            problems.append((("workspace",), "is required when azure.dicom is declared"))
        if self.access and not self.dicom:
            problems.append((("dicom",), "is required when azure.access is declared"))
        seen: set[tuple[str, str | None, str]] = set()
        for i, entry in enumerate(self.access):
            if entry.viewer_app and not self.app:
                problems.append((("access", i, "viewer_app"), "needs azure.app (the viewer app) to be declared"))
            key = (entry.principal_kind, (entry.principal or "").casefold(), entry.role.casefold())
            if key in seen:
                problems.append((("access", i), "repeats an earlier entry (same principal and role)"))
            seen.add(key)
        fail(problems)
        return self

    @property
    def endpoints(self) -> AzureCloudEndpoints:
        """The endpoints of `cloud` (a named cloud resolved from `AZURE_CLOUDS`)."""
        return AZURE_CLOUDS[self.cloud] if isinstance(self.cloud, str) else self.cloud

    def resolved(self, ohif: OhifSection) -> Self:
        """Redirect URIs default to `ohif.viewer_url + "/callback"`, CORS origins to the viewer's origin."""
        problems: list[tuple[Loc, str]] = []
        callback, origin = ohif.callback_url, ohif.viewer_origin
        app, dicom = self.app, self.dicom
        if app is not None and not app.redirect_uris:
            if callback is None:
                problems.append((("app", "redirect_uris"), "is required when ohif.viewer_url is not set"))
            else:
                app = app.model_copy(update={"redirect_uris": (callback,)})
        if dicom is not None and dicom.cors is not None and dicom.cors.origins is None and origin is not None:
            dicom = dicom.model_copy(update={"cors": dicom.cors.model_copy(update={"origins": (origin,)})})
        fail(problems)
        if app is self.app and dicom is self.dicom:
            return self
        return self.model_copy(update={"app": app, "dicom": dicom})
