"""The plan-file models (pydantic v2).

Every model forbids unknown keys and is frozen. Defaults that depend on other sections (redirect URIs and
CORS origins derived from `ohif.viewer_url`) are resolved by `Plan`'s model validator, so consumers read
final values and never recompute them.

Cross-field problems are raised as one `PydanticCustomError` of type `plan_rules` whose context carries
`problems`: a list of `(relative location, message)` pairs; the loader turns each into its own located line.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    PrivateAttr,
    Tag,
    WithJsonSchema,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from provision.plan import validators as v

__all__ = [
    "AZURE_CLOUDS",
    "AzureAccess",
    "AzureApp",
    "AzureCloudEndpoints",
    "AzureCors",
    "AzureDicom",
    "AzureResourceGroup",
    "AzureSection",
    "AzureWorkspace",
    "GcpAccess",
    "GcpDataset",
    "GcpDicomStore",
    "GcpNotification",
    "GcpSection",
    "OhifSection",
    "Plan",
]

Loc = tuple[str | int, ...]


def _fail(problems: Iterable[tuple[Loc, str]]) -> None:
    """Raise the located cross-field problems collected by a model validator, if any."""
    problems = list(problems)
    if problems:
        raise PydanticCustomError(
            "plan_rules",
            "{summary}",
            {"summary": "; ".join(msg for _, msg in problems), "problems": problems},
        )


@dataclass(frozen=True)
class _Rule:
    """`Annotated` metadata: validate a string with `check`; describe it in JSON Schema by `pattern`/`format`.

    The check raises ValueError with a message meant for people; the pattern (when the rule is regular)
    lets editors and `provision schema` users validate the same way.
    """

    check: Callable[[str], str]
    pattern: str | None = None
    format: str | None = None
    min_length: int | None = None
    max_length: int | None = None

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        keywords = {
            "pattern": self.pattern,
            "format": self.format,
            "minLength": self.min_length,
            "maxLength": self.max_length,
        }
        return {"type": "string", **{k: value for k, value in keywords.items() if value is not None}}


PlanName = Annotated[str, _Rule(v.check_plan_name, v.PLAN_NAME_RE)]
EnvName = Annotated[str, _Rule(v.check_env_name, v.ENV_NAME_RE)]
Guid = Annotated[str, _Rule(v.check_guid, v.GUID_RE)]
Email = Annotated[str, _Rule(v.check_email, v.EMAIL_RE)]
HttpsUrl = Annotated[str, _Rule(v.check_https_url, format="uri")]
ViewerUrl = Annotated[str, _Rule(v.check_viewer_url, format="uri")]
RedirectUri = Annotated[str, _Rule(v.check_redirect_uri, format="uri")]
CorsOrigin = Annotated[str, _Rule(v.check_cors_origin, v.CORS_ORIGIN_RE)]
DataSourceName = Annotated[str, _Rule(v.check_data_source_name, v.DATA_SOURCE_NAME_RE)]
AzureLocation = Annotated[str, _Rule(v.check_azure_location, v.AZURE_LOCATION_RE)]
ResourceGroupName = Annotated[str, _Rule(v.check_resource_group, v.RESOURCE_GROUP_RE, min_length=1, max_length=90)]
AppUniqueName = Annotated[str, _Rule(v.check_app_unique_name, v.APP_UNIQUE_NAME_RE)]
WorkspaceName = Annotated[str, _Rule(v.check_workspace_name, v.WORKSPACE_NAME_RE)]
DicomServiceName = Annotated[str, _Rule(v.check_dicom_service_name, v.DICOM_SERVICE_NAME_RE)]
DicomTagPath = Annotated[str, _Rule(v.check_dicom_tag_path, v.DICOM_TAG_PATH_RE)]
AzureTagKey = Annotated[str, _Rule(v.check_azure_tag_key, v.AZURE_TAG_KEY_RE)]
AzureTagValue = Annotated[str, _Rule(v.check_azure_tag_value, max_length=256)]
GcpProject = Annotated[str, _Rule(v.check_gcp_project, v.GCP_PROJECT_RE)]
GcpLocation = Annotated[str, _Rule(v.check_gcp_location, v.GCP_LOCATION_RE)]
GcpId = Annotated[str, _Rule(v.check_gcp_id, v.GCP_ID_RE)]
GcpLabelKey = Annotated[str, _Rule(v.check_gcp_label_key, v.GCP_LABEL_KEY_RE)]
GcpLabelValue = Annotated[str, _Rule(v.check_gcp_label_value, v.GCP_LABEL_VALUE_RE)]
GcpMember = Annotated[str, _Rule(v.check_gcp_member, v.GCP_MEMBER_RE)]
GcpRole = Annotated[str, _Rule(v.check_gcp_role, v.GCP_ROLE_OR_SHORT_RE)]
PubsubTopic = Annotated[str, _Rule(v.check_pubsub_topic, v.PUBSUB_TOPIC_RE)]
GoogleOauthClientId = Annotated[str, _Rule(v.check_google_oauth_client_id, v.GOOGLE_OAUTH_CLIENT_ID_RE)]

HttpMethod = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        coerce_numbers_to_str=True,  # `env: 42` or a label value `2` mean the string
        defer_build=True,  # build validators on first use: importing the CLI stays fast
    )


def _duplicates(values: Iterable[Any]) -> set[Any]:
    return {value for value, count in Counter(values).items() if count > 1}


# --- ohif ------------------------------------------------------------------------------------------------------


class OhifSection(_Model):
    """The OHIF viewer that will use what the plan provisions."""

    viewer_url: ViewerUrl | None = Field(
        default=None,
        description="Where OHIF is served (origin and optional path); https, or http on localhost/127.0.0.1."
        " Stored without a trailing '/'.",
    )
    data_source_name: DataSourceName = Field(
        default="dicomweb", description="`sourceName` of the OHIF data source (and `defaultDataSourceName`)."
    )
    friendly_name: str = Field(
        default="DICOM server", min_length=1, description="Label of the data source in the viewer."
    )

    @property
    def viewer_origin(self) -> str | None:
        """`scheme://host[:port]` of `viewer_url` (what a CORS rule must allow), or None."""
        return v.origin_of(self.viewer_url) if self.viewer_url else None

    @property
    def callback_url(self) -> str | None:
        """OHIF's default OIDC redirect URI, `viewer_url + "/callback"`, or None."""
        return f"{self.viewer_url}/callback" if self.viewer_url else None


# --- azure -----------------------------------------------------------------------------------------------------


class AzureCloudEndpoints(_Model):
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


class AzureResourceGroup(_Model):
    name: ResourceGroupName = Field(
        description="Resource group name: 1-90 of letters, digits, `-_.()`, not ending with '.'."
    )
    create: bool = Field(
        default=True, description="Create the group when missing (false: it must exist and is never deleted)."
    )


class AzureApp(_Model):
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
            (("redirect_uris",), f"{uri!r} is listed twice") for uri in sorted(_duplicates(self.redirect_uris))
        ]
        _fail(problems)
        return self


class AzureWorkspace(_Model):
    name: WorkspaceName = Field(description="Health Data Services workspace: 3-24 lower-case letters or digits.")


class AzureCors(_Model):
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


class AzureQueryTag(_Model):
    """An extended query tag of the DICOM service, so QIDO can search on it (Azure DICOM lab 004)."""

    path: DicomTagPath = Field(description='The tag as 8 hex digits, e.g. "00101010" (quoted).')
    level: Literal["Study", "Series", "Instance"]
    vr: str | None = Field(default=None, pattern=r"^[A-Z]{2}$", description="Value representation (private tags).")
    private_creator: str | None = Field(default=None, min_length=1, max_length=64)
    query_status: Literal["Enabled", "Disabled"] = "Enabled"


class AzureDicom(_Model):
    name: DicomServiceName = Field(
        description="DICOM service name: 3-24 of lower-case letters, digits and '-', not starting or ending with '-'."
    )
    cors: AzureCors | None = Field(default=None, description="Omitted: CORS is not managed.")
    extended_query_tags: tuple[AzureQueryTag, ...] | None = Field(
        default=None,
        description="Omitted: not managed. Listed: the service holds exactly these (others are deleted).",
    )

    @model_validator(mode="after")
    def _unique_query_tags(self) -> AzureDicom:
        repeated = _duplicates(tag.path.upper() for tag in self.extended_query_tags or ())
        if repeated:
            raise ValueError(f"extended query tag {sorted(repeated)[0]} is listed more than once")
        return self


_PRINCIPAL_KEYS = ("user", "group", "service_principal", "viewer_app")


class AzureAccess(_Model):
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
        description='A built-in role name, e.g. "DICOM Data Owner" or "DICOM Data Reader".',
    )

    @model_validator(mode="after")
    def _one_principal(self) -> Self:
        given = [key for key in _PRINCIPAL_KEYS if getattr(self, key) is not None]
        if not given:
            _fail([((), "needs one principal key: " + ", ".join(_PRINCIPAL_KEYS))])
        if len(given) > 1:
            _fail([((given[1],), f"exactly one principal key per entry; found {' and '.join(map(repr, given))}")])
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


class AzureSection(_Model):
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
        _fail(problems)
        return self

    @property
    def endpoints(self) -> AzureCloudEndpoints:
        """The endpoints of `cloud` (a named cloud resolved from `AZURE_CLOUDS`)."""
        return AZURE_CLOUDS[self.cloud] if isinstance(self.cloud, str) else self.cloud


# --- gcp -------------------------------------------------------------------------------------------------------


class GcpDataset(_Model):
    id: GcpId
    create: bool = Field(
        default=True, description="Create the dataset when missing (false: it must exist and is never deleted)."
    )


class GcpNotification(_Model):
    pubsub_topic: PubsubTopic
    send_for_bulk_import: bool = False


class GcpDicomStore(_Model):
    id: GcpId
    labels: Annotated[
        dict[GcpLabelKey, GcpLabelValue],
        WithJsonSchema(
            {
                "type": "object",
                "maxProperties": 64,
                "propertyNames": {"pattern": v.GCP_LABEL_KEY_RE},
                "additionalProperties": {"type": "string", "pattern": v.GCP_LABEL_VALUE_RE},
            }
        ),
    ] = Field(default_factory=dict)
    notification: GcpNotification | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        if len(self.labels) > 64:
            _fail([(("labels",), f"has {len(self.labels)} labels; at most 64 are allowed")])
        return self


class GcpAccess(_Model):
    """One IAM binding on the dataset (or on one store)."""

    role: GcpRole = Field(
        description="viewer | editor (roles/healthcare.dicomViewer / dicomEditor) or a full role name;"
        " stored as the full name."
    )
    members: Annotated[
        tuple[GcpMember, ...],
        WithJsonSchema({"type": "array", "minItems": 1, "items": {"type": "string", "pattern": v.GCP_MEMBER_RE}}),
    ]
    """user:EMAIL, group:EMAIL, serviceAccount:EMAIL or domain:DOMAIN."""
    store: GcpId | None = Field(
        default=None, description="A store id from dicom_stores; omitted: the binding is on the dataset."
    )
    mode: Literal["additive", "authoritative"] = Field(
        default="additive", description="authoritative: this role's member list becomes exactly `members`."
    )
    state: Literal["present", "absent"] = Field(default="present", description="absent: revoke these members.")

    @model_validator(mode="after")
    def _check(self) -> Self:
        problems: list[tuple[Loc, str]] = []
        if not self.members:
            problems.append((("members",), "must list at least one member"))
        if self.mode == "authoritative" and self.state == "absent":
            problems.append(
                (("state",), "'absent' cannot be combined with mode 'authoritative' (use members to list who stays)")
            )
        problems += [(("members",), f"{m!r} is listed twice") for m in sorted(_duplicates(self.members))]
        _fail(problems)
        return self


class GcpSection(_Model):
    """Google Cloud Healthcare: a dataset, DICOM stores and IAM bindings."""

    project: GcpProject
    location: GcpLocation
    dataset: GcpDataset
    dicom_stores: tuple[GcpDicomStore, ...] = ()
    access: tuple[GcpAccess, ...] = ()
    oauth_client_id: GoogleOauthClientId | None = Field(
        default=None,
        description="The viewer's OAuth client (created by hand in the console; no public API creates one).",
    )
    dataset_browser: bool = Field(
        default=False, description="Let OHIF browse projects/datasets/stores (configurationAPI)."
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        problems: list[tuple[Loc, str]] = []
        ids = [store.id for store in self.dicom_stores]
        seen_ids: set[str] = set()
        for i, store_id in enumerate(ids):
            if store_id in seen_ids:
                problems.append((("dicom_stores", i, "id"), f"{store_id!r} is declared twice"))
            seen_ids.add(store_id)
        declared = ", ".join(map(repr, ids)) or "none"
        authoritative: set[tuple[str, str | None]] = set()
        granted: set[tuple[str, str | None, str]] = set()
        revoked: dict[tuple[str, str | None, str], int] = {}
        for i, entry in enumerate(self.access):
            if entry.store is not None and entry.store not in seen_ids:
                problems.append(
                    (
                        ("access", i, "store"),
                        f"{entry.store!r} is not a store in gcp.dicom_stores (declared: {declared})",
                    )
                )
            target = (entry.role, entry.store)
            if entry.mode == "authoritative":
                if target in authoritative:
                    problems.append(
                        (("access", i), f"a second authoritative entry for {entry.role} on the same resource")
                    )
                authoritative.add(target)
            for member in entry.members:
                key = (entry.role, entry.store, member)
                if entry.state == "present":
                    granted.add(key)
                else:
                    revoked.setdefault(key, i)
        for key, i in revoked.items():
            if key in granted:
                problems.append((("access", i, "members"), f"{key[2]!r} is both granted and revoked {key[0]}"))
        _fail(problems)
        return self

    @property
    def dataset_name(self) -> str:
        """`projects/{project}/locations/{location}/datasets/{dataset}`."""
        return f"projects/{self.project}/locations/{self.location}/datasets/{self.dataset.id}"


# --- the plan --------------------------------------------------------------------------------------------------


class Plan(_Model):
    """A provision plan: the declared end state of an OHIF viewer's cloud set-up."""

    model_config = ConfigDict(title="provision plan")

    version: Literal[1] = Field(description="Plan format version; only 1.")
    name: PlanName = Field(description="The plan's identity, recorded in ownership tags.")
    env: EnvName = Field(
        default="default", description='Environment name (e.g. "pr-${PR_NUMBER}"), recorded in ownership tags.'
    )
    ohif: OhifSection = Field(default_factory=lambda: OhifSection())
    azure: AzureSection | None = None
    gcp: GcpSection | None = None

    _source: Path | None = PrivateAttr(default=None)

    @property
    def source(self) -> Path | None:
        """The file the plan was loaded from (None when built in memory)."""
        return self._source

    @model_validator(mode="after")
    def _resolve_defaults(self) -> Self:
        """Fill defaults that derive from ohif.viewer_url into the azure section."""
        azure = self.azure
        if azure is None:
            return self
        problems: list[tuple[Loc, str]] = []
        callback, origin = self.ohif.callback_url, self.ohif.viewer_origin
        app, dicom = azure.app, azure.dicom
        if app is not None and not app.redirect_uris:
            if callback is None:
                problems.append((("azure", "app", "redirect_uris"), "is required when ohif.viewer_url is not set"))
            else:
                app = app.model_copy(update={"redirect_uris": (callback,)})
        if dicom is not None and dicom.cors is not None and dicom.cors.origins is None and origin is not None:
            dicom = dicom.model_copy(update={"cors": dicom.cors.model_copy(update={"origins": (origin,)})})
        _fail(problems)
        if app is not azure.app or dicom is not azure.dicom:
            # frozen models: the resolved section replaces the parsed one before anyone can see it
            object.__setattr__(self, "azure", azure.model_copy(update={"app": app, "dicom": dicom}))
        return self
