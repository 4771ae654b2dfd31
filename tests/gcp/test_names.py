"""Resource names are parsed and checked before any call."""

from __future__ import annotations

import pytest

from provision.errors import ConfigurationError
from provision.gcp.names import HealthcareName, carries_labels, ownership_labels, parse_name

STORE = "projects/my-project/locations/us-central1/datasets/ohif/dicomStores/main"


def test_parse_store_and_dataset() -> None:
    name = parse_name(STORE, require_store=True)
    assert name == HealthcareName("my-project", "us-central1", "ohif", "main")
    assert name.name == STORE
    assert name.dataset_name == "projects/my-project/locations/us-central1/datasets/ohif"
    assert parse_name(name.dataset_name).store is None


def test_parse_accepts_a_pasted_dicomweb_url() -> None:
    url = f"https://healthcare.googleapis.com/v1/{STORE}/dicomWeb/studies"
    assert parse_name(url, require_store=True).name == STORE


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("projects/my-project/locations/us-central1/datasets/ohif", "names a dataset"),
        ("projects/my-project/datasets/ohif/dicomStores/main", "not a Healthcare API resource name"),
        ("projects/My_Project/locations/us-central1/datasets/ohif/dicomStores/main", "project"),
        ("projects/my-project/locations/US Central/datasets/ohif/dicomStores/main", "location"),
        ("projects/my-project/locations/us-central1/datasets/oh!if/dicomStores/main", "dataset"),
        ("projects/my-project/locations/us-central1/datasets/ohif/fhirStores/main", "not a Healthcare"),
        ("main", "not a Healthcare"),
    ],
)
def test_parse_refuses(value: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_name(value, require_store=True)


def test_ownership_labels() -> None:
    labels = ownership_labels("ohif-demo", "pr-7")
    assert carries_labels({**labels, "team": "x"}, "ohif-demo", "pr-7")
    assert not carries_labels(labels, "ohif-demo", "default")
    assert not carries_labels(None, "ohif-demo", "pr-7")
