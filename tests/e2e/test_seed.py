"""`azure.dicom.seed`: test studies a plan uploads at the end of apply. Plan tells the truth about them (a create
on a fresh service, an update when some went missing, nothing when all are there), a second apply sends no
STOW, and destroy sends nothing for them (they go with the DICOM service)."""

from __future__ import annotations

import asyncio
import zipfile
from pathlib import Path

import pytest
from conftest import DataStore
from e2e_http import client

from provision.dicom.synthetic import synthetic_study
from provision.sandbox import SandboxControl

SEEDED = [synthetic_study(seed="seed-a", instances=3, study_description="seed study a"),
          synthetic_study(seed="seed-b", instances=2, study_description="seed study b")]


def seed_plan(store: DataStore, folder: Path, seed: str = "[studies, more.zip]") -> Path:
    studies = folder / "studies"
    studies.mkdir(parents=True, exist_ok=True)
    for instance in SEEDED[0]:
        (studies / f"{instance.sop_instance_uid}.dcm").write_bytes(instance.data)
    (studies / "index.html").write_text("<p>not DICOM: skipped</p>")
    with zipfile.ZipFile(folder / "more.zip", "w") as archive:
        for instance in SEEDED[1]:
            archive.writestr(f"b/{instance.sop_instance_uid}.dcm", instance.data)
    text = store.plan.read_text().replace("    name: data-dicom\n", f"    name: data-dicom\n    seed: {seed}\n")
    plan = folder / "seeded.yaml"
    plan.write_text(text)
    return plan


def stow_requests(control: SandboxControl, mark: int) -> int:
    return sum(1 for e in control.log(since=mark) if e["method"] == "POST" and "/dataws-data-dicom/" in e["path"])


@pytest.fixture
def store(data_store: DataStore) -> DataStore:
    data_store.clear()
    return data_store


def test_seed_is_planned_uploaded_once_and_repaired(store: DataStore, tmp_path: Path) -> None:
    plan = seed_plan(store, tmp_path)
    planned = store.provision("azure", "plan", str(plan), "--detailed-exitcode")
    assert planned.exit_code == 2, planned.output
    assert "+ azure.dicom_seed[data-dicom]  create" in planned.stdout
    assert "instances = 5" in planned.stdout and "studies = 2" in planned.stdout
    assert "Plan: 1 to create, 0 to update" in planned.stdout

    applied = store.provision("azure", "apply", str(plan), "--auto-approve", "--out", str(tmp_path / "out"))
    assert applied.exit_code == 0, applied.output
    assert sorted(store.study_uids()) == sorted(s[0].study_uid for s in SEEDED)

    with SandboxControl(store.deployment.info) as control:
        mark = control.log()[-1]["seq"]
        again = store.provision("azure", "plan", str(plan), "--detailed-exitcode")
        assert again.exit_code == 0, again.output  # nothing to do, and --detailed-exitcode says so
        reapplied = store.provision("azure", "apply", str(plan), "--auto-approve", "--out", str(tmp_path / "out"))
        assert reapplied.exit_code == 0 and "Apply complete: no changes." in reapplied.stdout
        assert stow_requests(control, mark) == 0

        with client(store.deployment.info, headers=store.headers()) as http:
            assert http.delete(f"{store.root}/studies/{SEEDED[1][0].study_uid}").status_code == 204
        drifted = store.provision("azure", "plan", str(plan), "--detailed-exitcode")
        assert drifted.exit_code == 2
        assert "~ azure.dicom_seed[data-dicom]  update" in drifted.stdout and "instances: 3 -> 5" in drifted.stdout
        mark = control.log()[-1]["seq"]
        repaired = store.provision("azure", "apply", str(plan), "--auto-approve", "--out", str(tmp_path / "out"))
        assert repaired.exit_code == 0, repaired.output
        assert stow_requests(control, mark) == 1  # the two missing instances, in one batch
    assert len(store.study_uids()) == 2


def test_destroy_sends_nothing_for_the_seed(store: DataStore, tmp_path: Path) -> None:
    from provision.azure.session import open_session
    from provision.cli.target import connection_of
    from provision.core import Engine
    from provision.plan import load_plan

    plan = seed_plan(store, tmp_path)
    applied = store.provision("azure", "apply", str(plan), "--auto-approve", "--out", str(tmp_path / "out"))
    assert applied.exit_code == 0, applied.output

    async def destroy_plan() -> dict[str, str]:
        session = await open_session(load_plan(plan), connection_of(store.deployment.info))
        try:
            planned = await Engine(session.resources).destroy_plan()
        finally:
            await session.aclose()
        return {s.resource.address: f"{s.action.kind} {getattr(s.action, 'reason', '')}".strip()
                for s in planned.steps}

    steps = asyncio.run(destroy_plan())
    assert steps["azure.dicom_seed[data-dicom]"] == "no-op goes with azure.dicom_service[data-dicom]"
    assert steps["azure.dicom_service[data-dicom]"].startswith("delete")


def test_seed_paths_are_checked_when_the_plan_is_loaded(store: DataStore, tmp_path: Path) -> None:
    plan = seed_plan(store, tmp_path, seed="[studies, absent]")
    result = store.provision("azure", "plan", str(plan))
    assert result.exit_code == 1
    assert f"{plan}:" in result.stderr and "azure.dicom.seed[1]: 'absent' does not exist" in result.stderr
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("nothing")
    plan = seed_plan(store, tmp_path, seed="[empty]")
    result = store.provision("azure", "plan", str(plan))
    assert result.exit_code == 1 and f"{plan}: azure.dicom.seed: no DICOM files in" in result.stderr
