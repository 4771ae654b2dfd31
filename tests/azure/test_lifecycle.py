"""Lifecycle states against the sandbox: a DICOM service still being created is waited for (never "up to date"),
a failed one is repaired with the service's error shown, a resource group being deleted is waited for and made
again; Entra ID being unavailable is reported as such; a Graph replication delay converges without duplicates."""

from __future__ import annotations

import time
from typing import Any

import pytest

from provision.azure import AzureSession
from provision.azure.resources import AdminConsent, Application, AppPrincipal, DicomApiPrincipal
from provision.core import ExecutionError, Timeouts
from provision.plan import parse_plan

OHIF = "azure-ohif.yaml"
DICOM = "azure.dicom_service[ohif-dicom]"
GROUP = "azure.resource_group[rg-ohif-demo]"
ALICE = "azure.role_assignment[alice@contoso.com:DICOM Data Owner]"
VIEWER = "azure.role_assignment[viewer-app:DICOM Data Owner]"
APP_ONLY = """
version: 1
name: entra-only
ohif: {viewer_url: "http://localhost:3000"}
azure:
  location: westeurope
  app: {unique_name: entra-only, display_name: Entra only, flow: spa, admin_consent: true}
"""


def _healthcare(session: AzureSession) -> Any:
    from azure.mgmt.healthcareapis.aio import HealthcareApisManagementClient

    return HealthcareApisManagementClient(
        session.credential, str(session.azure.subscription_id), base_url=session.cloud.arm,
        credential_scopes=[session.cloud.arm_scope], transport=session.transport, polling_interval=0.1,
    )


async def _recreate_dicom_and_leave_it_creating(session: AzureSession) -> None:
    """What an apply killed during the DICOM service's create leaves: the service, with the plan's tags, in
    `Creating` (the PUT was accepted, nobody waits for it)."""
    client = _healthcare(session)
    service = await client.dicom_services.get("rg-ohif-demo", "ohifws", "ohif-dicom")
    poller = await client.dicom_services.begin_delete("rg-ohif-demo", "ohif-dicom", "ohifws")
    await poller.result()
    service.provisioning_state = None
    await client.dicom_services.begin_create_or_update("rg-ohif-demo", "ohifws", "ohif-dicom", service,
                                                        polling=False)
    await client.close()


def test_a_dicom_service_still_being_created_is_waited_for(azure: Any) -> None:
    plan = azure.playbook(OHIF)
    azure.run(plan)
    azure.control.configure(lro_seconds=2.0)

    planned = azure.run(plan, "plan", inspect=_recreate_dicom_and_leave_it_creating)

    # the role assignments at its scope went with the service: they come after it, as in the killed apply
    assert planned.changes() == {DICOM: "wait", ALICE: "create", VIEWER: "create"}
    step = planned.step(DICOM)
    assert (step.action.state, step.action.then) == ("creating", "no-op")
    assert 0 <= time.time() - step.action.since < 30
    with pytest.raises(Exception, match="URL of DICOM service ohif-dicom"):
        azure.run(plan, "output")  # no serviceUrl yet: nothing claims the service is ready

    azure.control.clear_log()
    applied = azure.run(plan)

    assert applied.outcome is not None
    assert sorted(s.action.kind for s in applied.outcome.done) == ["create", "create", "wait"]
    puts = [w["path"] for w in azure.control.writes()]
    assert len(puts) == 2 and all("roleAssignments" in p for p in puts), "the create that was running did the rest"
    assert applied.ohif is not None
    assert applied.ohif.document["dataSources"][0]["configuration"]["qidoRoot"].endswith("/dicom/ohifws-ohif-dicom/v2")
    assert azure.run(plan, "plan").changes() == {}


def test_a_failed_create_is_reported_then_repaired_never_up_to_date(azure: Any) -> None:
    control = azure.control
    control.fail_operations("/dicomservices/ohif-dicom$", code="QuotaExceeded",
                            message="The region has no capacity for DICOM services.")
    plan = azure.playbook(OHIF)

    with pytest.raises(ExecutionError, match="no capacity for DICOM services") as failed:
        azure.run(plan)
    assert DICOM in str(failed.value)

    planned = azure.run(plan, "plan")
    assert planned.changes() == {DICOM: "repair", ALICE: "create", VIEWER: "create"}  # skipped after the failure
    assert planned.step(DICOM).action.error == "provisioningState is Failed"

    control.clear_log()
    repaired = azure.run(plan)
    puts = [w["path"] for w in control.writes()]
    assert [p for p in puts if p.endswith("/dicomservices/ohif-dicom")] == [puts[0]]  # one PUT, declared state
    assert len(puts) == 3  # and the two role assignments; nothing else was touched
    assert repaired.outcome is not None
    assert sorted(s.action.kind for s in repaired.outcome.done) == ["create", "create", "repair"]
    assert repaired.ohif is not None
    assert azure.run(plan, "plan").changes() == {}


async def _delete_the_group_without_waiting(session: AzureSession) -> None:
    from azure.mgmt.resource.resources.aio import ResourceManagementClient

    async with ResourceManagementClient(session.credential, str(session.azure.subscription_id),
                                        base_url=session.cloud.arm, credential_scopes=[session.cloud.arm_scope],
                                        transport=session.transport) as client:
        await client.resource_groups.begin_delete("rg-ohif-demo", polling=False)


def test_a_resource_group_being_deleted_is_waited_for_then_made_again(azure: Any) -> None:
    plan = azure.playbook(OHIF)
    azure.run(plan)
    azure.control.configure(lro_seconds=1.5)

    planned = azure.run(plan, "plan", inspect=_delete_the_group_without_waiting)

    changes = planned.changes()
    assert changes[GROUP] == "wait" and planned.step(GROUP).action.then == "create"
    assert planned.step(GROUP).action.state == "deleting"
    applied = azure.run(plan)
    assert applied.outcome is not None
    kinds = {s.resource.address: s.action.kind for s in applied.outcome.done}
    assert kinds[GROUP] == "create" and kinds[DICOM] == "create"
    assert azure.run(plan, "plan").changes() == {}


def test_entra_id_unavailable_is_a_transient_error_never_a_sign_in_hint(
        azure: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # azure-identity tries 4 times (Retry-After kept short so that its own backoff does not take 5 s)
    azure.control.add_fault(503, method="POST", path_regex="/oauth2/v2.0/token$", retry_after=0.01)
    short = Timeouts(read=2.0, create=2.0, update=2.0, delete=2.0)
    for resource in (DicomApiPrincipal, Application, AppPrincipal, AdminConsent):
        monkeypatch.setattr(resource, "timeouts", short)
    plan = parse_plan(APP_ONLY)

    with pytest.raises(ExecutionError) as raised:
        azure.run(plan, "plan")

    message = str(raised.value)
    assert "Entra ID is unavailable" in message and "AADSTS90033" in message
    assert "retried" in message and "times over" in message
    assert "az login" not in message and "sign in (" not in message
    assert "status.azure.com" in (raised.value.hint or "")


def test_apply_during_a_graph_replication_delay_converges_without_duplicates(azure: Any) -> None:
    control = azure.control
    control.configure(graph_replication_seconds=1.0, principal_delay_seconds=2.0, principal_delay_strict=True)
    plan = azure.playbook(OHIF)

    result = azure.run(plan)

    assert any("not visible yet" in m for m in result.messages("retry")), result.messages("retry")
    [app] = control.apps("ohif-viewer")
    [principal] = control.service_principals(app["appId"])
    assert len(control.grants(principal["id"])) == 1
    time.sleep(1.0)
    assert azure.run(plan, "plan").changes() == {}
