"""destroy removes exactly what the plan owns, waits until it is gone, and leaves everyone else's alone;
an existing resource the plan does not own is refused unless --adopt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from provision.azure import AzureSession
from provision.azure.normalise import DICOM_API_APP_ID
from provision.core import ExecutionError
from provision.plan import parse_plan

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
EPHEMERAL = "azure-ephemeral.yaml"


def _arm(session: AzureSession, client_class: Any) -> Any:
    """An azure-mgmt client of the session's cloud and credential, for changes made "by someone else"."""
    return client_class(
        session.credential,
        str(session.azure.subscription_id),
        base_url=session.cloud.arm,
        credential_scopes=[session.cloud.arm_scope],
        transport=session.transport,
        polling_interval=0.1,
    )


def _ids(azure: Any, pr: str) -> dict[str, str]:
    sub = f"/subscriptions/{azure.info.subscription_id}"
    group = f"{sub}/resourceGroups/rg-ohif-pr-{pr}"
    workspace = f"{group}/providers/Microsoft.HealthcareApis/workspaces/ohifpr{pr}"
    return {"group": group, "workspace": workspace, "dicom": f"{workspace}/dicomservices/pr-{pr}"}


def _present(azure: Any, pr: str) -> dict[str, Any]:
    control = azure.control
    apps = control.apps(f"ohif-viewer-pr-{pr}")
    principals = [p for app in apps for p in control.service_principals(app["appId"])]
    ids = _ids(azure, pr)
    return {
        "apps": len(apps),
        "principals": len(principals),
        "grants": sum(len(control.grants(p["id"])) for p in principals),
        "assignments": len(control.assignments(ids["dicom"])),
        **{name: control.arm(resource_id) is not None for name, resource_id in ids.items()},
    }


EVERYTHING = {
    "apps": 1, "principals": 1, "grants": 1, "assignments": 2, "group": True, "workspace": True, "dicom": True,
}
NOTHING = {
    "apps": 0, "principals": 0, "grants": 0, "assignments": 0, "group": False, "workspace": False, "dicom": False,
}


def test_destroy_removes_this_environment_only(azure: Any) -> None:
    one, two = azure.playbook(EPHEMERAL, PR_NUMBER="1"), azure.playbook(EPHEMERAL, PR_NUMBER="2")
    azure.run(one)
    azure.run(two)
    assert _present(azure, "1") == _present(azure, "2") == EVERYTHING

    destroyed = azure.run(one, "destroy")

    assert _present(azure, "1") == NOTHING
    assert _present(azure, "2") == EVERYTHING
    kinds = {s.resource.address: s.action.kind for s in destroyed.plan.steps}
    assert kinds["azure.user[alice@contoso.com]"] == "no-op"
    # shared and referenced objects stay: the tenant's DICOM API principal, the user
    assert len(azure.control.service_principals(DICOM_API_APP_ID)) == 1
    assert azure.run(two, "plan").changes() == {}
    # a second destroy finds nothing of its own and sends no write
    azure.control.clear_log()
    again = azure.run(one, "destroy")
    assert again.outcome is not None
    # the DICOM API principal's "delete" keeps it (until the engine can plan "kept" for shared objects)
    assert {s.resource.address for s in again.outcome.done} <= {"azure.dicom_api_principal[Azure API for DICOM]"}
    assert azure.control.writes() == []


def test_a_resource_group_the_plan_does_not_create_is_never_deleted(azure: Any) -> None:
    text = (PLAYBOOKS / EPHEMERAL).read_text().replace("create: true", "create: false")
    plan = parse_plan(text, env={"PR_NUMBER": "3"})

    async def make_group(session: AzureSession) -> None:
        from azure.mgmt.resource.resources.aio import ResourceManagementClient

        async with _arm(session, ResourceManagementClient) as client:
            await client.resource_groups.create_or_update("rg-ohif-pr-3", {"location": "westeurope"})

    applied = azure.run(plan, inspect=make_group)
    assert "azure.resource_group[rg-ohif-pr-3]" not in applied.changes()
    assert azure.control.arm(_ids(azure, "3")["group"])["tags"] in (None, {})

    azure.run(plan, "destroy")

    assert _present(azure, "3") == {**NOTHING, "group": True}


def test_destroy_keeps_a_group_that_holds_someone_elses_resources(azure: Any) -> None:
    plan = azure.playbook(EPHEMERAL, PR_NUMBER="4")
    azure.run(plan)

    async def add_workspace(session: AzureSession) -> None:
        from azure.mgmt.healthcareapis import models
        from azure.mgmt.healthcareapis.aio import HealthcareApisManagementClient

        async with _arm(session, HealthcareApisManagementClient) as client:
            poller = await client.workspaces.begin_create_or_update(
                "rg-ohif-pr-4", "otherws", models.Workspace(location="westeurope")
            )
            await poller.result()

    with pytest.raises(ExecutionError, match="otherws") as raised:
        azure.run(plan, "destroy", inspect=add_workspace)

    assert "azure.resource_group[rg-ohif-pr-4]" in str(raised.value)
    assert _present(azure, "4") == {**NOTHING, "group": True}


def test_existing_resources_not_owned_are_refused_unless_adopted(azure: Any) -> None:
    plan = azure.playbook(EPHEMERAL, PR_NUMBER="5")

    async def make_group(session: AzureSession) -> None:
        from azure.mgmt.resource.resources.aio import ResourceManagementClient

        async with _arm(session, ResourceManagementClient) as client:
            await client.resource_groups.create_or_update(
                "rg-ohif-pr-5", {"location": "westeurope", "tags": {"owner": "someone"}}
            )

    planned = azure.run(plan, "plan", inspect=make_group)
    [blocked] = planned.plan.blocked
    assert blocked.resource.address == "azure.resource_group[rg-ohif-pr-5]"
    assert "--adopt" in (blocked.blocked or "")
    azure.control.clear_log()
    with pytest.raises(ExecutionError, match="--adopt"):
        azure.run(plan)
    assert azure.control.writes() == []

    adopted = azure.run(plan, adopt=True)

    assert adopted.changes()["azure.resource_group[rg-ohif-pr-5]"] == "update"
    tags = azure.control.arm(_ids(azure, "5")["group"])["tags"]
    assert tags["owner"] == "someone"  # foreign tags are kept
    assert (tags["provision-plan"], tags["provision-env"]) == ("ohif-preview", "pr-5")
    assert azure.run(plan, "plan").changes() == {}

    # destroy removes what the plan created in it, but never a resource group it did not create
    destroyed = azure.run(plan, "destroy")
    kept = destroyed.step("azure.resource_group[rg-ohif-pr-5]").action
    assert kept.kind == "no-op" and "adopted" in kept.reason
    assert _present(azure, "5") == {**NOTHING, "group": True}


def test_an_app_of_another_environment_is_not_taken_over(azure: Any) -> None:
    azure.run(azure.playbook(EPHEMERAL, PR_NUMBER="6"))
    text = (PLAYBOOKS / EPHEMERAL).read_text().replace("env: pr-${PR_NUMBER}", "env: other")
    other = parse_plan(text, env={"PR_NUMBER": "6"})

    planned = azure.run(other, "plan")
    blocked = {step.resource.address: step.blocked for step in planned.plan.blocked}
    assert {"azure.app[ohif-viewer-pr-6]", "azure.resource_group[rg-ohif-pr-6]"} <= set(blocked)
    # the refusal says whose they are
    assert "belongs to plan ohif-preview, env pr-6" in str(blocked["azure.app[ohif-viewer-pr-6]"])
    assert "belongs to plan ohif-preview, env pr-6" in str(blocked["azure.resource_group[rg-ohif-pr-6]"])

    # and its destroy leaves the first environment's resources alone
    azure.run(other, "destroy")
    assert _present(azure, "6") == EVERYTHING


def test_a_plan_with_extended_query_tags_and_the_tools_own_role_is_created_and_destroyed(azure: Any) -> None:
    """The tag step needs the tool's DICOM data role (an azure.access entry): it runs after the assignments and,
    on destroy, before them; otherwise the role could be gone before the tags are deleted (403), and the
    environment could not be destroyed any more."""
    from provision.azure.resources import query_tags

    tool = azure.control.running.world.identity.sp_object_id
    text = (PLAYBOOKS / EPHEMERAL).read_text()
    text = text.replace("  access:\n", f"  access:\n    - service_principal: {tool}\n      role: DICOM Data Owner\n")
    text = text.replace("      methods: [GET, POST, PUT, DELETE, OPTIONS]\n",
                        "      methods: [GET, POST, PUT, DELETE, OPTIONS]\n"
                        '    extended_query_tags:\n      - {path: "00080070", level: Series}\n', 1)
    plan = parse_plan(text, env={"PR_NUMBER": "7"})
    tags = "azure.extended_query_tags[pr-7]"
    original = query_tags.ExtendedQueryTags.poll_interval
    query_tags.ExtendedQueryTags.poll_interval = 0.05
    try:
        applied = azure.run(plan)
        assert applied.changes()[tags] == "create"
        assert azure.run(plan, "plan").changes() == {}

        destroyed = azure.run(plan, "destroy")
    finally:
        query_tags.ExtendedQueryTags.poll_interval = original

    assert destroyed.outcome is not None
    assert tags in {s.resource.address for s in destroyed.outcome.done}
    assert _present(azure, "7") == NOTHING


def test_destroy_reads_every_deleted_object_again_until_it_is_gone(azure: Any) -> None:
    plan = azure.playbook(EPHEMERAL, PR_NUMBER="8")
    azure.run(plan)
    azure.control.clear_log()

    destroyed = azure.run(plan, "destroy")

    # the plan created the group and everything in it is the plan's: one delete takes workspace and DICOM service
    group = "azure.resource_group[rg-ohif-pr-8]"
    covered = {s.resource.address for s in destroyed.plan.steps if getattr(s.action, "container", None) == group}
    assert covered == {"azure.workspace[ohifpr8]", "azure.dicom_service[pr-8]"}
    log = azure.control.api_log()
    deletes = [(i, e["path"]) for i, e in enumerate(log) if e["method"] == "DELETE"]
    assert len(deletes) == 6, deletes  # grant, 2 assignments, principal, app, group
    assert not any(path.lower().endswith(("/workspaces/ohifpr8", "/dicomservices/pr-8")) for _, path in deletes)
    for index, path in deletes:
        later = [e for e in log[index + 1:] if e["method"] == "GET"]
        if "/oauth2PermissionGrants/" in path:  # a grant is found again by listing its client's grants
            assert any(e["path"] == "/v1.0/oauth2PermissionGrants" for e in later), path
        else:
            assert any(e["path"].lower() == path.lower() and e["status"] == 404 for e in later), path
    assert _present(azure, "8") == NOTHING


def test_a_delete_whose_wait_is_throttled_is_not_sent_again_once_the_object_is_gone(azure: Any) -> None:
    """The group's DELETE went through; the read that waits for it to be gone got a 429. The retry reads the group
    again (gone: done) instead of deleting it again, whose first step, listing what the group holds, would now
    answer 404 (found by `bench/gc_bench.py` under ARM throttling)."""
    plan = azure.playbook(EPHEMERAL, PR_NUMBER="9")
    azure.run(plan)
    group = "/resourcegroups/rg-ohif-pr-9$"
    # the destroy's plan reads the group once; the second GET is the wait after its DELETE
    azure.control.add_fault(429, method="GET", path_regex=group, skip=1, count=1, retry_after=0)

    destroyed = azure.run(plan, "destroy")

    assert any("429" in m or "throttled" in m.lower() for m in destroyed.messages("retry")), destroyed.messages("retry")
    deletes = [e for e in azure.control.api_log() if e["method"] == "DELETE" and e["path"].lower().endswith(
        "/resourcegroups/rg-ohif-pr-9")]
    assert len(deletes) == 1
    assert _present(azure, "9") == NOTHING
