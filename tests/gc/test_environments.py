"""Pull-request environments end to end, through the commands a CI workflow runs, against the sandbox:
two environments from the same playbooks coexist; destroying one leaves every resource of the other untouched;
a second destroy is a no-op; `gc --older-than 0s` lists both and, with --yes, removes both."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from provision.cli.main import app

AZURE = str(Path(__file__).resolve().parents[2] / "playbooks/azure-ephemeral.yaml")


def environment(world: dict[str, Any], pr: str) -> dict[str, Any]:
    """Every record of one pull request's environment in the sandbox's world, as stored (etags, times and all)."""
    arm = {key: value for key, value in world["arm"].items() if f"pr-{pr}" in key or key.endswith(f"/ohifpr{pr}")}
    scopes = tuple(arm)
    directory = world["directory"]
    apps = {k: a for k, a in directory["applications"].items() if a.get("uniqueName") == f"ohif-viewer-pr-{pr}"}
    app_ids = {a["appId"] for a in apps.values()}
    principals = {k: p for k, p in directory["servicePrincipals"].items() if p["appId"] in app_ids}
    grants = {k: g for k, g in directory["oauth2PermissionGrants"].items() if g["clientId"] in principals}
    gcp = world.get("gcp") or {"datasets": {}, "dicomStores": {}, "policies": {}}
    dataset = f"datasets/ohif-pr-{pr}"
    return {
        "arm": arm,
        "assignments": {k: r for k, r in world["role_assignments"].items() if r["scope"].lower().startswith(scopes)},
        "apps": apps, "principals": principals, "grants": grants,
        **{kind: {k: v for k, v in gcp[kind].items() if dataset in k}
           for kind in ("datasets", "dicomStores", "policies")},
    }


def counts(snapshot: dict[str, Any]) -> dict[str, int]:
    return {kind: len(records) for kind, records in snapshot.items()}


FULL = {"arm": 3, "assignments": 2, "apps": 1, "principals": 1, "grants": 1, "datasets": 1, "dicomStores": 1,
        "policies": 1}
EMPTY = dict.fromkeys(FULL, 0)


def writes(control: Any) -> list[str]:
    return [f"{e['method']} {e['path']}" for e in control.log()
            if e["method"] not in ("GET", "HEAD") and "/oauth2/" not in e["path"]]


def test_two_pull_requests_coexist_and_go_their_own_ways(cli: Any, sandbox_control: Any) -> None:
    cli.apply("1")
    cli.apply("2")
    world = cli.sandbox.world
    one, two = environment(world.snapshot(), "1"), environment(world.snapshot(), "2")
    assert counts(one) == counts(two) == FULL
    assert json.loads((cli.out / "azure-2/ohif.json").read_text())["dataSources"][0]["configuration"]["qidoRoot"]

    listed = cli.gc("--older-than", "0s", "--env-prefix", "pr-")
    assert listed["dry_run"] is True
    assert sorted((e["cloud"], e["env"], e["status"]) for e in listed["environments"]) == [
        ("azure", "pr-1", "would delete"), ("azure", "pr-2", "would delete"),
        ("gcp", "pr-1", "would delete"), ("gcp", "pr-2", "would delete")]
    assert environment(world.snapshot(), "2") == two  # a dry run changes nothing

    cli.destroy("1")
    assert counts(environment(world.snapshot(), "1")) == EMPTY
    assert environment(world.snapshot(), "2") == two  # untouched: same records, same etags and times

    sandbox_control.clear_log()
    cli.destroy("1")  # a second destroy finds nothing of its own
    assert writes(sandbox_control) == []

    cli.apply("1")
    removed = cli.gc("--older-than", "0s", "--env-prefix", "pr-", "--yes")
    assert removed["dry_run"] is False and removed["failed"] == 0
    assert sorted((e["cloud"], e["env"], e["status"]) for e in removed["environments"]) == [
        ("azure", "pr-1", "deleted"), ("azure", "pr-2", "deleted"), ("gcp", "pr-1", "deleted"),
        ("gcp", "pr-2", "deleted")]
    for pr in ("1", "2"):
        assert counts(environment(world.snapshot(), pr)) == EMPTY
    assert cli.gc("--older-than", "0s")["environments"] == []


def test_gc_leaves_young_foreign_and_other_prefix_environments_alone(cli: Any) -> None:
    cli("azure", "apply", AZURE, "--auto-approve", "--out", str(cli.out / "a"), pr="3")
    young = cli.gc("--older-than", "1h", "--yes", "--all-environments")
    assert young["environments"] == []
    assert [(s["env"], s["reason"]) for s in young["skipped"]] == [("pr-3", "younger than the limit")]
    assert cli.gc("--older-than", "0s", "--env-prefix", "feature-", "--yes")["environments"] == []
    assert cli.gc("--older-than", "0s", "--plan", "another-plan", "--yes")["environments"] == []
    assert counts(environment(cli.sandbox.world.snapshot(), "3"))["arm"] == 3

    text = cli("gc", "--older-than", "0s", "--cloud", "azure")
    assert "ohif-preview  pr-3" in text and "Dry run: 1 environment(s) (6 resources) would be deleted" in text


def test_a_half_finished_destroy_can_be_run_again(cli: Any, sandbox_control: Any) -> None:
    cli("azure", "apply", AZURE, "--auto-approve", "--out", str(cli.out / "a"), pr="4")
    sandbox_control.add_fault(400, method="DELETE", path_regex="/resource[gG]roups/rg-ohif-pr-4$", count=1)
    cli("azure", "destroy", AZURE, "--auto-approve", pr="4", code=1)
    left = counts(environment(cli.sandbox.world.snapshot(), "4"))
    assert left["arm"] == 3 and left["assignments"] == 0  # the group (with workspace and DICOM service) stays
    cli("azure", "destroy", AZURE, "--auto-approve", pr="4")
    assert counts(environment(cli.sandbox.world.snapshot(), "4")) == EMPTY


def test_gc_input_errors_before_any_call(cli: Any, sandbox_control: Any) -> None:
    assert "not a duration" in cli("gc", "--older-than", "soon", code=1)
    assert "--cloud gcp: no location" in cli("gc", "--older-than", "1h", "--cloud", "gcp", code=1)
    # a malformed project or location is reported against its flag, not as a made-up resource name
    text = cli("gc", "--older-than", "1h", "--gcp-location", "us central", code=1)
    assert "--gcp-location: 'us central' must be a Google Cloud location" in text and "datasets/" not in text
    text = cli("gc", "--older-than", "1h", "--gcp-project", "Bad_Project", "--gcp-location", "us", code=1)
    assert "--gcp-project (or GOOGLE_CLOUD_PROJECT): 'Bad_Project' must be a Google Cloud project id" in text
    assert sandbox_control.log() == []
    nothing = CliRunner().invoke(app, ["gc", "--older-than", "1h"],
                                 env={"PROVISION_SANDBOX": "", "AZURE_SUBSCRIPTION_ID": "", "NO_COLOR": "1"})
    assert nothing.exit_code == 1 and "nothing to search" in nothing.output


def test_gc_refuses_to_delete_without_narrowing(cli: Any) -> None:
    cli("azure", "apply", AZURE, "--auto-approve", "--out", str(cli.out / "a"), pr="6")
    refused = cli("gc", "--older-than", "0s", "--yes", code=1)
    assert "--env-prefix" in refused and "--all-environments" in refused
    assert counts(environment(cli.sandbox.world.snapshot(), "6"))["arm"] == 3
