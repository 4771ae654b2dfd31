"""The plan's `gcp:` section: a Cloud Healthcare dataset, DICOM stores and IAM bindings."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, WithJsonSchema, model_validator

from provision.plan import validators as v
from provision.plan.base import Loc, LocalPath, Model, Rule, Section, duplicates, fail

__all__ = ["GcpAccess", "GcpDataset", "GcpDicomStore", "GcpNotification", "GcpSection"]

GcpProject = Annotated[str, Rule(v.check_gcp_project, v.GCP_PROJECT_RE)]
GcpLocation = Annotated[str, Rule(v.check_gcp_location, v.GCP_LOCATION_RE)]
GcpId = Annotated[str, Rule(v.check_gcp_id, v.GCP_ID_RE)]
GcpLabelKey = Annotated[str, Rule(v.check_gcp_label_key, v.GCP_LABEL_KEY_RE)]
GcpLabelValue = Annotated[str, Rule(v.check_gcp_label_value, v.GCP_LABEL_VALUE_RE)]
GcpMember = Annotated[str, Rule(v.check_gcp_member, v.GCP_MEMBER_RE)]
GcpRole = Annotated[str, Rule(v.check_gcp_role, v.GCP_ROLE_OR_SHORT_RE)]
PubsubTopic = Annotated[str, Rule(v.check_pubsub_topic, v.PUBSUB_TOPIC_RE)]
GoogleOauthClientId = Annotated[str, Rule(v.check_google_oauth_client_id, v.GOOGLE_OAUTH_CLIENT_ID_RE)]


class GcpDataset(Model):
    id: GcpId
    create: bool = Field(
        default=True, description="Create the dataset when missing (false: it must exist and is never deleted)."
    )


class GcpNotification(Model):
    pubsub_topic: PubsubTopic
    send_for_bulk_import: bool = False


class GcpDicomStore(Model):
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
    seed: tuple[LocalPath, ...] = Field(
        default=(),
        description="Test studies uploaded into this store at the end of apply (only the missing instances): DICOM"
        " files, folders and .zip archives, relative to the plan file.",
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        problems: list[tuple[Loc, str]] = []
        if len(self.labels) > 64:
            problems.append((("labels",), f"has {len(self.labels)} labels; at most 64 are allowed"))
        problems += [(("seed",), f"{path!r} is listed twice") for path in sorted(duplicates(self.seed))]
        fail(problems)
        return self


class GcpAccess(Model):
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
        problems += [(("members",), f"{m!r} is listed twice") for m in sorted(duplicates(self.members))]
        fail(problems)
        return self


class GcpSection(Section):
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
        fail(problems)
        return self

    @property
    def dataset_name(self) -> str:
        """`projects/{project}/locations/{location}/datasets/{dataset}`."""
        return f"projects/{self.project}/locations/{self.location}/datasets/{self.dataset.id}"
