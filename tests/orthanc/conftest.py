"""Fixtures of the self-hosted target's tests: a deployment per test (files only), and one running deployment
per module (real Orthanc + nginx) holding two studies of the same patient."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from orthanc_stack import Deployment, new_deployment, required_programs, running, two_studies_of_one_patient

from provision.dicom.synthetic import SyntheticInstance


@pytest.fixture
def deployment(tmp_path: Path) -> Deployment:
    return new_deployment(tmp_path / "work")


@dataclass
class Shared:
    """A running deployment with study A (shared) and study B (a prior of the same patient)."""

    site: Deployment
    a: list[SyntheticInstance]
    b: list[SyntheticInstance]

    @property
    def uid_a(self) -> str:
        return self.a[0].study_uid

    @property
    def uid_b(self) -> str:
        return self.b[0].study_uid


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    missing = required_programs()
    if missing:
        pytest.fail(f"missing system programs: {', '.join(missing)}; run scripts/install-system-deps.sh",
                    pytrace=False)
    site = new_deployment(tmp_path_factory.mktemp("orthanc") / "work")
    a, b = two_studies_of_one_patient()
    with running(site):
        site.store(a)
        site.store(b)
        yield Shared(site, a, b)
