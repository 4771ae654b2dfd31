"""apply against the sandbox with the real SDKs over HTTPS: create everything, converge, repair drift."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from provision.azure import AzureSession
from provision.azure.normalise import DICOM_API_APP_ID
from provision.errors import ProvisionError
from provision.ohif.config import write_outputs

OHIF = "azure-ohif.yaml"


def test_fresh_apply_creates_everything(azure: Any, tmp_path: Path) -> None:
    plan = azure.playbook(OHIF)
    result = azure.run(plan)
    control = azure.control

    assert result.changes() == {
        "azure.app[ohif-viewer]": "create",
        "azure.app_principal[ohif-viewer]": "create",
        "azure.admin_consent[ohif-viewer]": "create",
        "azure.resource_group[rg-ohif-demo]": "create",
        "azure.workspace[ohifws]": "create",
        "azure.dicom_service[ohif-dicom]": "create",
        "azure.role_assignment[alice@contoso.com:DICOM Data Owner]": "create",
        "azure.role_assignment[viewer-app:DICOM Data Owner]": "create",
    }
    # the app: one, found by uniqueName, SPA redirect URI, the DICOM scope, marked as the plan's
    [app] = control.apps("ohif-viewer")
    assert app["spa"]["redirectUris"] == ["http://localhost:3000/callback"]
    assert app["web"]["redirectUris"] == []
    dicom_api = control.service_principals(DICOM_API_APP_ID)[0]
    scope_id = next(s["id"] for s in dicom_api["oauth2PermissionScopes"] if s["value"] == "Dicom.ReadWrite")
    assert app["requiredResourceAccess"] == [
        {"resourceAppId": DICOM_API_APP_ID, "resourceAccess": [{"id": scope_id, "type": "Scope"}]}
    ]
    assert {"provision-plan:ohif-demo", "provision-env:default"} <= set(app["tags"])
    # its service principal and the tenant-wide consent
    [principal] = control.service_principals(app["appId"])
    [grant] = control.grants(principal["id"])
    assert (grant["consentType"], grant["resourceId"], grant["scope"]) == (
        "AllPrincipals", dicom_api["id"], "Dicom.ReadWrite"
    )
    # the DICOM service with its CORS and ownership tags
    sub = azure.info.subscription_id
    dicom_id = (
        f"/subscriptions/{sub}/resourceGroups/rg-ohif-demo/providers/Microsoft.HealthcareApis/workspaces/ohifws"
        "/dicomservices/ohif-dicom"
    )
    dicom = control.arm(dicom_id)
    assert dicom is not None
    cors = dicom["properties"]["corsConfiguration"]
    assert cors["origins"] == ["http://localhost:3000"]
    assert sorted(cors["methods"]) == ["DELETE", "GET", "OPTIONS", "POST", "PUT"]
    assert (cors["headers"], cors["maxAge"], cors["allowCredentials"]) == (["*"], 1440, False)
    assert dicom["tags"]["provision-plan"] == "ohif-demo"
    assert dicom["tags"]["provision-env"] == "default"
    assert dicom["tags"]["purpose"] == "ohif-demo"
    assert "provision-created" in dicom["tags"]
    # the role assignments: principalType set, DICOM Data Owner, described as the plan's
    assignments = control.assignments(dicom_id)
    assert {(ra["principalId"], ra["principalType"]) for ra in assignments} == {
        (principal["id"], "ServicePrincipal"),
        (next(u["id"] for u in control.state()["directory"]["users"].values() if u["mail"] == "alice@contoso.com"),
         "User"),
    }
    assert {ra["roleDefinition"] for ra in assignments} == {"58a3b984-7adf-4c20-983a-32417c86fbc8"}

    # OHIF: the real client id, tenant and service URL; app-config.js is valid JavaScript OHIF can load
    assert result.ohif is not None
    [oidc] = result.ohif.document["oidc"]
    assert oidc["client_id"] == app["appId"]
    assert oidc["authority"] == f"{azure.info.url}/{azure.info.tenant_id}/v2.0/"
    assert oidc["response_type"] == "code"
    assert oidc["scope"] == "openid https://dicom.healthcareapis.azure.com/Dicom.ReadWrite"
    [source] = result.ohif.document["dataSources"]
    # the sandbox's stand-in for https://ohifws-ohif-dicom.dicom.azurehealthcareapis.com
    service_url = f"{azure.info.url}/dicom/ohifws-ohif-dicom"
    assert source["configuration"]["qidoRoot"] == f"{service_url}/v2"
    assert "secret" not in json.dumps(result.ohif.document).lower()
    write_outputs(tmp_path, result.ohif.document, viewer_url=result.ohif.viewer_url)
    config = _evaluate_app_config(tmp_path / "app-config.js")
    assert config["oidc"][0]["client_id"] == app["appId"]
    assert azure.info.tenant_id in config["oidc"][0]["authority"]
    assert config["dataSources"][0]["configuration"]["wadoRoot"] == f"{service_url}/v2"


def _evaluate_app_config(path: Path) -> dict[str, Any]:
    script = f"const window = {{}}; {path.read_text()}; console.log(JSON.stringify(window.config));"
    done = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=30, check=True)
    return dict(json.loads(done.stdout))


def test_second_apply_changes_nothing_and_sends_no_write(azure: Any) -> None:
    plan = azure.playbook(OHIF)
    azure.run(plan)
    azure.control.clear_log()

    again = azure.run(plan)

    assert again.changes() == {}
    assert again.outcome is not None and again.outcome.done == []
    assert azure.control.writes() == []
    log = azure.control.api_log()
    reads = [e for e in log if not azure.control.is_token(e)]
    # one read per resource, one listing of the assignments at the DICOM service (to find those the plan no
    # longer declares), plus one token per API (ARM, Graph)
    assert len(reads) == len(again.plan.steps) + 1
    assert len([e for e in log if azure.control.is_token(e)]) == 2


def test_output_reads_the_live_state_without_writing(azure: Any) -> None:
    plan = azure.playbook(OHIF)
    applied = azure.run(plan)
    azure.control.clear_log()

    output = azure.run(plan, "output")

    assert output.ohif is not None and applied.ohif is not None
    assert output.ohif.document == applied.ohif.document
    assert azure.control.writes() == []


def test_output_before_apply_says_what_is_missing(azure: Any) -> None:
    with pytest.raises(ProvisionError, match="URL of DICOM service ohif-dicom") as raised:
        azure.run(azure.playbook(OHIF), "output")
    assert raised.value.hint == "run apply first"


def _healthcare(session: AzureSession) -> Any:
    """azure-mgmt-healthcareapis on the session's credential and transport: changes made outside the tool."""
    from azure.mgmt.healthcareapis.aio import HealthcareApisManagementClient

    return HealthcareApisManagementClient(
        session.credential,
        str(session.azure.subscription_id),
        base_url=session.cloud.arm,
        credential_scopes=[session.cloud.arm_scope],
        transport=session.transport,
    )


async def _change_cors_out_of_band(session: AzureSession) -> None:
    """What someone does in the portal: GET, change the origins, full PUT, straight through azure-mgmt."""
    client = _healthcare(session)
    service = await client.dicom_services.get("rg-ohif-demo", "ohifws", "ohif-dicom")
    assert service.cors_configuration is not None
    service.cors_configuration.origins = ["https://elsewhere.example"]
    service.cors_configuration.max_age = 60
    poller = await client.dicom_services.begin_create_or_update(
        "rg-ohif-demo", "ohifws", "ohif-dicom", service, polling_interval=0.1
    )
    await poller.result()
    await client.close()


def test_cors_drift_shows_in_plan_and_apply_repairs_it(azure: Any) -> None:
    plan = azure.playbook(OHIF)
    azure.run(plan)

    drifted = azure.run(plan, "plan", inspect=_change_cors_out_of_band)

    assert drifted.changes() == {"azure.dicom_service[ohif-dicom]": "update"}
    fields = {c.path: (c.before, c.after) for c in drifted.step("azure.dicom_service[ohif-dicom]").action.changes}
    assert fields == {
        "cors.origins": (["https://elsewhere.example"], ["http://localhost:3000"]),
        "cors.max_age": (60, 1440),
    }

    azure.control.clear_log()
    repaired = azure.run(plan)
    assert repaired.changes() == {"azure.dicom_service[ohif-dicom]": "update"}
    # GET, modify, full PUT (the PATCH body cannot carry CORS)
    writes = azure.control.writes()
    assert [(w["method"], w["path"].rsplit("/", 1)[-1]) for w in writes] == [("PUT", "ohif-dicom")]
    assert azure.run(plan, "plan").changes() == {}


async def _start_a_put_out_of_band(session: AzureSession) -> None:
    """Someone else's change is still running (the service is 'Updating') when apply wants to write."""
    client = _healthcare(session)
    service = await client.dicom_services.get("rg-ohif-demo", "ohifws", "ohif-dicom")
    assert service.cors_configuration is not None
    service.cors_configuration.max_age = 60
    await client.dicom_services.begin_create_or_update(
        "rg-ohif-demo", "ohifws", "ohif-dicom", service, polling=False
    )
    await client.close()


def test_apply_waits_for_an_operation_already_running_on_the_service(azure: Any) -> None:
    azure.control.configure(lro_seconds=2.0)
    plan = azure.playbook(OHIF)
    azure.run(plan)

    repaired = azure.run(plan, inspect=_start_a_put_out_of_band)

    # the plan says what the service is doing, and what follows: our max_age back
    step = repaired.step("azure.dicom_service[ohif-dicom]")
    assert (step.action.kind, step.action.state, step.action.then) == ("wait", "updating", "update")
    assert [(c.path, c.before, c.after) for c in step.action.changes] == [("cors.max_age", 60, 1440)]
    assert step.action.since is not None  # systemData.lastModifiedAt of the other PUT
    phases = [(e.phase.value, e.action) for e in repaired.events
              if e.address == "azure.dicom_service[ohif-dicom]" and e.phase.value != "read"]
    assert phases[:2] == [("started", "wait"), ("done", "wait")] and ("done", "update") in phases
    # no PUT was sent while the other one ran: ours came after it had finished
    assert not [e for e in azure.control.log() if e["status"] == 409]
    assert repaired.outcome is not None and [s.action.kind for s in repaired.outcome.done] == ["update"]
    assert azure.run(plan, "plan").changes() == {}


def test_first_party_dicom_principal_is_created_when_the_tenant_lacks_it(azure: Any) -> None:
    azure.control.configure(dicom_sp=False)
    plan = azure.playbook(OHIF)

    planned = azure.run(plan, "plan")
    assert planned.changes()["azure.dicom_api_principal[Azure API for DICOM]"] == "create"
    # the app's permission needs the scope id, which only the created principal can tell
    app_changes = {c.path: c.after for c in planned.step("azure.app[ohif-viewer]").action.changes}
    assert repr(app_changes["permissions"]) == "(known after apply)"

    azure.run(plan)
    assert len(azure.control.service_principals(DICOM_API_APP_ID)) == 1
    assert azure.run(plan, "plan").changes() == {}


def _user_id(control: Any, mail: str) -> str:
    return str(next(u["id"] for u in control.state()["directory"]["users"].values() if u["mail"] == mail))
