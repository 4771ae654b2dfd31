"""Extended query tags reconciled through the DICOM data plane: the pure change planner as a table, then the
resource driven by the real engine against the sandbox's DICOM service (add -> reindex -> Ready, status update,
replacement of a changed tag, deletion of undeclared ones, no-op second run)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import PLAYBOOK, Deployment

from provision.azure.resources.query_tags import DicomDataPlane, ExtendedQueryTags, QueryTag, normalise, plan_changes
from provision.errors import PlanError
from provision.sandbox.azure.authorization import DICOM_DATA_OWNER

MODEL = QueryTag("00081090", "Series")
SEX = QueryTag("00100040", "Study", vr="CS")
MAKER = QueryTag("00080070", "Series")  # Manufacturer (ManufacturerModelName is searchable already: 409)


def live(*items: dict[str, Any]) -> dict[str, Any]:
    return normalise(list(items))


@pytest.mark.parametrize(
    ("declared", "actual", "delete", "add", "status"),
    [
        ([MODEL], live(), [], ["00081090"], []),
        ([MODEL], live({"path": "00081090", "level": "Series", "vr": "LO", "queryStatus": "Enabled"}), [], [], []),
        ([QueryTag("00081090", "Series", query_status="Disabled")],
         live({"path": "00081090", "level": "series", "vr": "LO", "queryStatus": "Enabled"}), [], [], ["00081090"]),
        ([QueryTag("00081090", "Study")],
         live({"path": "00081090", "level": "Series", "vr": "LO", "queryStatus": "Enabled"}),
         ["00081090"], ["00081090"], []),
        ([SEX], live({"path": "00100040", "level": "Study", "vr": "SH", "queryStatus": "Enabled"}),
         ["00100040"], ["00100040"], []),
        ([], live({"path": "00081090", "level": "Series", "vr": "LO", "queryStatus": "Enabled"}),
         ["00081090"], [], []),
        ([QueryTag("00100040", "Study", query_status="Disabled")], live(), [], ["00100040"], ["00100040"]),
    ],
    ids=["add", "same", "status", "level-changed", "vr-changed", "undeclared", "added-disabled"],
)
def test_plan_changes(declared: list[QueryTag], actual: dict[str, Any], delete: list[str], add: list[str],
                      status: list[str]) -> None:
    changes = plan_changes(declared, actual)
    assert changes.delete == delete
    assert [t.path for t in changes.add] == add
    assert [t.path for t in changes.set_status] == status


@pytest.mark.parametrize(
    "entry",
    [{"path": "ManufacturerModelName", "level": "Series"}, {"path": "00081090", "level": "Patient"},
     {"path": "00081090", "level": "Series", "query_status": "Maybe"}],
)
def test_plan_entries_are_checked(entry: dict[str, Any]) -> None:
    with pytest.raises(PlanError):
        QueryTag.of(entry)


def test_plan_entry_is_normalised() -> None:
    assert QueryTag.of({"path": "0008109a", "level": "series", "vr": "lo"}) == QueryTag("0008109A", "Series", "LO")


@pytest.fixture(autouse=True)
def plan_environment(deployment: Deployment, monkeypatch: pytest.MonkeyPatch) -> None:
    """The playbook as the deployment applied it (OHIF_VIEWER_URL decides the CORS origin)."""
    for key, value in deployment.env.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def deployer_is_owner(deployment: Deployment) -> Iterator[None]:
    """Managing tags needs DICOM Data Owner; the sandbox's own principal (the tool's identity) has none."""
    principal = deployment.sandbox.world.identity.sp_object_id
    deployment.arm.assign(deployment.dicom_id, principal, DICOM_DATA_OWNER, "ServicePrincipal")
    try:
        yield
    finally:
        deployment.arm.delete_role_assignments(deployment.dicom_id, principal)


def reconcile(deployment: Deployment, tags: list[QueryTag]) -> tuple[str, dict[str, Any]]:
    """Plan and apply the playbook's resources plus the tag set; the tag resource's planned action and the
    service's tags afterwards."""
    from provision.azure.session import open_session
    from provision.azure.verify import client_context
    from provision.cli.target import connection_of
    from provision.core import Engine
    from provision.plan import load_plan

    async def run() -> tuple[str, dict[str, Any]]:
        options = connection_of(deployment.info)
        session = await open_session(load_plan(PLAYBOOK), options)
        try:
            data_plane = DicomDataPlane(session.credential, session.cloud.dicom_audience, client_context(options))
            resource = ExtendedQueryTags(session.azure, "ohif-dicom", tags, data_plane=data_plane,
                                         dicom_address="azure.dicom_service[ohif-dicom]")
            resource.poll_interval = 0.05
            engine = Engine([*session.resources, resource])
            planned = await engine.plan()
            (step,) = [s for s in planned.steps if s.resource is resource]
            outcome = await engine.apply(planned)
            return step.action.kind, outcome.outputs[resource.address]
        finally:
            await session.aclose()

    return asyncio.run(run())


def service_tags(deployment: Deployment) -> dict[str, Any]:
    from e2e_http import client

    with client(deployment.info) as http:
        response = http.get(f"{deployment.dicomweb_root}/extendedquerytags",
                            headers={"Authorization": f"Bearer {deployment.user_token()}"})
    return {t["path"]: t for t in response.json()}


@pytest.mark.usefixtures("deployer_is_owner")
def test_apply_reconciles_extended_query_tags(deployment: Deployment) -> None:
    assert reconcile(deployment, [MAKER, SEX]) == ("update", {"paths": ["00080070", "00100040"]})  # from none
    tags = service_tags(deployment)
    assert {p: (t["status"], t["level"], t["queryStatus"]) for p, t in tags.items()} == {
        "00080070": ("Ready", "Series", "Enabled"), "00100040": ("Ready", "Study", "Enabled")}
    assert reconcile(deployment, [MAKER, SEX])[0] == "no-op"

    disabled = QueryTag("00100040", "Study", vr="CS", query_status="Disabled")
    assert reconcile(deployment, [MAKER, disabled])[0] == "update"
    assert service_tags(deployment)["00100040"]["queryStatus"] == "Disabled"

    moved = QueryTag("00080070", "Instance")
    assert reconcile(deployment, [moved])[0] == "update"  # level changed: deleted and added again; SEX removed
    assert {p: t["level"] for p, t in service_tags(deployment).items()} == {"00080070": "Instance"}

    assert reconcile(deployment, [])[0] == "update"
    assert service_tags(deployment) == {}
    assert reconcile(deployment, [])[0] == "no-op"


def test_without_a_data_role_the_error_names_the_fix(deployment: Deployment) -> None:
    from provision.core.engine import ExecutionError

    with pytest.raises(ExecutionError) as caught:
        reconcile(deployment, [MAKER])
    assert "403" in caught.value.message
    assert caught.value.hint is not None and "DICOM Data Owner" in caught.value.hint


@pytest.mark.usefixtures("deployer_is_owner")
def test_a_plan_file_declares_extended_query_tags(deployment: Deployment, tmp_path: Any) -> None:
    """The plan field `azure.dicom.extended_query_tags` becomes the resource, through open_session."""
    from provision.azure.session import open_session
    from provision.cli.target import connection_of
    from provision.core import Engine
    from provision.plan import load_plan

    declared = '    extended_query_tags:\n      - {path: "00080070", level: Series}\n'
    text = PLAYBOOK.read_text()
    assert "    name: ohif-dicom\n" in text
    plan_file = tmp_path / "plan.yaml"

    async def apply(tags_yaml: str) -> str:
        plan_file.write_text(text.replace("    name: ohif-dicom\n", "    name: ohif-dicom\n" + tags_yaml, 1))
        session = await open_session(load_plan(plan_file), connection_of(deployment.info))
        try:
            (resource,) = [r for r in session.resources if r.address.startswith("azure.extended_query_tags")]
            resource.poll_interval = 0.05  # type: ignore[attr-defined]
            engine = Engine(session.resources)
            planned = await engine.plan()
            (step,) = [s for s in planned.steps if s.resource is resource]
            await engine.apply(planned)
            return step.action.kind
        finally:
            await session.aclose()

    assert asyncio.run(apply(declared)) == "update"
    assert set(service_tags(deployment)) == {"00080070"}
    assert asyncio.run(apply(declared)) == "no-op"
    assert asyncio.run(apply("    extended_query_tags: []\n")) == "update"
    assert service_tags(deployment) == {}
