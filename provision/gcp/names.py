"""Google Cloud Healthcare resource names: parse and validate them before any call is made."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from provision.errors import ConfigurationError
from provision.plan import validators as v

#: ownership labels written on every DICOM store a plan creates (datasets cannot carry labels)
PLAN_LABEL = "provision-plan"
ENV_LABEL = "provision-env"
#: written once when a store is created, never compared: its UTC creation time (`20250131t235959z`, as label
#: values allow only lower-case letters, digits, '_' and '-') and, when the plan creates and may delete the
#: dataset (`create: true`), `provision-dataset=owned` (so provision gc knows the dataset is the plan's to delete)
CREATED_LABEL = "provision-created"
DATASET_LABEL = "provision-dataset"

_SEGMENT = r"[^/]+"
_NAME_RE = re.compile(
    rf"^projects/(?P<project>{_SEGMENT})/locations/(?P<location>{_SEGMENT})/datasets/(?P<dataset>{_SEGMENT})"
    rf"(?:/dicomStores/(?P<store>{_SEGMENT}))?$"
)


@dataclass(frozen=True)
class HealthcareName:
    """A dataset (`store` is None) or a DICOM store."""

    project: str
    location: str
    dataset: str
    store: str | None = None

    @property
    def dataset_name(self) -> str:
        return f"projects/{self.project}/locations/{self.location}/datasets/{self.dataset}"

    @property
    def name(self) -> str:
        """The full resource name, as the API spells it."""
        return self.dataset_name if self.store is None else f"{self.dataset_name}/dicomStores/{self.store}"

    @property
    def kind(self) -> str:
        return "dataset" if self.store is None else "DICOM store"

    def __str__(self) -> str:
        return self.name


def parse_name(value: str, *, require_store: bool = False) -> HealthcareName:
    """Parse `projects/P/locations/L/datasets/D[/dicomStores/S]`; raise ConfigurationError naming the problem."""
    text = value.strip().strip("/")
    if text.startswith(("https://", "http://")):
        # accept a pasted DICOMweb or API URL: .../v1/projects/...[/dicomWeb]
        match = re.search(r"/v1(?:beta1)?/(projects/.*)$", text)
        text = match.group(1) if match else text
        text = re.sub(r"/dicomWeb(?:/.*)?$", "", text)
    match = _NAME_RE.match(text)
    expected = "projects/PROJECT/locations/LOCATION/datasets/DATASET" + (
        "/dicomStores/STORE" if require_store else "[/dicomStores/STORE]"
    )
    if match is None:
        raise ConfigurationError(f"{value!r} is not a Healthcare API resource name", hint=f"expected {expected}")
    if require_store and match.group("store") is None:
        raise ConfigurationError(f"{value!r} names a dataset, not a DICOM store", hint=f"expected {expected}")
    checks = (
        ("project", v.check_gcp_project),
        ("location", v.check_gcp_location),
        ("dataset", v.check_gcp_id),
        ("store", v.check_gcp_id),
    )
    for group, check in checks:
        part = match.group(group)
        if part is None:
            continue
        try:
            check(part)
        except ValueError as error:
            raise ConfigurationError(f"{value!r}: {group} {error}", hint=f"expected {expected}") from None
    return HealthcareName(match["project"], match["location"], match["dataset"], match["store"])


def ownership_labels(plan_name: str, env: str) -> dict[str, str]:
    """The labels that mark a DICOM store as belonging to one plan and environment."""
    return {PLAN_LABEL: plan_name, ENV_LABEL: env}


def carries_labels(labels: dict[str, str] | None, plan_name: str, env: str) -> bool:
    labels = labels or {}
    return labels.get(PLAN_LABEL) == plan_name and labels.get(ENV_LABEL) == env


def created_labels(*, dataset_owned: bool, now: datetime | None = None) -> dict[str, str]:
    """The labels a store gets once, on create (see CREATED_LABEL)."""
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dt%H%M%Sz")
    labels = {CREATED_LABEL: stamp}
    if dataset_owned:
        labels[DATASET_LABEL] = "owned"
    return labels
