"""`provision gc` deletes only what carries an environment's exact marks, keeps containers that hold anything
else, and absorbs ARM throttling (429 + Retry-After) with the sandbox's token buckets switched on."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from provision.cli.target import connection_of
from provision.core import Engine
from provision.gcp.resources import datasets_api
from provision.gcp.session import open_session
from provision.plan import load_plan, parse_plan

GCP = Path(__file__).resolve().parents[2] / "playbooks/gcp-ephemeral.yaml"
API = "api-version=2024-03-31"


def sub(cli: Any) -> str:
    return f"/subscriptions/{cli.sandbox.info.subscription_id}"


def test_a_group_holding_someone_elses_workspace_is_kept(cli: Any, arm: httpx.Client) -> None:
    cli("azure", "apply", cli.azure_playbook, "--auto-approve", "--out", str(cli.out), pr="5")
    group = f"{sub(cli)}/resourceGroups/rg-ohif-pr-5"
    other = arm.put(f"{group}/providers/Microsoft.HealthcareApis/workspaces/otherws?{API}",
                    json={"location": "westeurope", "tags": {"owner": "someone"}})
    assert other.status_code == 201
    untagged = arm.put(f"{sub(cli)}/resourceGroups/rg-by-hand?api-version=2022-09-01", json={"location": "westeurope"})
    assert untagged.status_code == 201

    result = cli.gc("--older-than", "0s", "--yes", "--all-environments")

    [env] = result["environments"]
    assert (env["env"], env["status"], env["deleted"]) == ("pr-5", "deleted", 5)
    assert env["kept"] == ["resource group rg-ohif-pr-5: holds resources of others "
                           "(otherws (Microsoft.HealthcareApis/workspaces))"]
    arm_state = cli.sandbox.world.snapshot()["arm"]
    assert sorted(key.rsplit("/", 1)[-1] for key in arm_state) == ["otherws", "rg-by-hand", "rg-ohif-pr-5"]
    # the group still carries the marks: a later run finds it again, and keeps it again while otherws is there
    again = cli.gc("--older-than", "0s")["environments"]
    assert [(e["env"], [r["kind"] for r in e["resources"]]) for e in again] == [("pr-5", ["resource_group"])]


def run_plan(info: Any, plan: Any, action: str = "apply") -> None:
    async def go() -> None:
        session = await open_session(plan, connection_of(info))
        try:
            engine = Engine(session.resources)
            await (engine.apply() if action == "apply" else engine.destroy())
        finally:
            await session.aclose()

    asyncio.run(go())


def test_datasets_the_environment_does_not_own_stay(cli: Any) -> None:
    info = cli.sandbox.info
    text = GCP.read_text()
    # a dataset made by someone else (no stores of any environment), then pr-6 puts its store there (create: false)
    run_plan(info, parse_plan(
        "version: 1\nname: by-hand\ngcp:\n  project: sandbox-project\n  location: us-central1\n"
        "  dataset: {id: shared}\n", env={}))
    run_plan(info, parse_plan(text.replace("id: ohif-pr-${PR_NUMBER}\n    create: true",
                                           "id: shared\n    create: false"), env={"PR_NUMBER": "6"}))
    # pr-7 has its own dataset, where someone adds a store by hand
    run_plan(info, load_plan(GCP, env={"PR_NUMBER": "7"}))

    async def add_foreign_store() -> None:
        from provision.gcp.client import open_client

        client = open_client(connection_of(info))
        try:
            await client.call(lambda s: datasets_api(s).dicomStores().create(
                parent="projects/sandbox-project/locations/us-central1/datasets/ohif-pr-7", dicomStoreId="mine",
                body={"labels": {"owner": "someone"}}), "creating a store by hand")
        finally:
            client.close()

    asyncio.run(add_foreign_store())

    result = cli.gc("--older-than", "0s", "--yes", "--all-environments", "--cloud", "gcp")

    deleted = {(e["env"], r["kind"], r["name"]) for e in result["environments"] for r in e["resources"]}
    assert deleted == {("pr-6", "dicom_store", "main"), ("pr-7", "dicom_store", "main")}
    gcp = cli.sandbox.world.snapshot()["gcp"]
    assert sorted(name.rsplit("/", 1)[-1] for name in gcp["datasets"]) == ["ohif-pr-7", "shared"]
    assert [name.split("/datasets/", 1)[1] for name in gcp["dicomStores"]] == ["ohif-pr-7/dicomStores/mine"]


def test_gc_absorbs_arm_throttling(cli: Any, arm: httpx.Client) -> None:
    for pr in ("8", "9"):
        cli("azure", "apply", cli.azure_playbook, "--auto-approve", "--out", str(cli.out / pr), pr=pr)
    state = arm.post("/_sandbox/throttling", json={
        "enabled": True, "limits": {"deletes": {"burst": 2, "rate": 4}, "reads": {"burst": 10, "rate": 20}}})
    assert state.status_code == 200

    result = cli.gc("--older-than", "0s", "--yes", "--all-environments", "--concurrency", "2")

    assert [(e["env"], e["status"], e["deleted"]) for e in result["environments"]] == [
        ("pr-8", "deleted", 6), ("pr-9", "deleted", 6)]
    assert result["throttled_retries"] >= 1
    counts = arm.get("/_sandbox/throttling").json()
    assert counts["throttled"]["deletes"] >= 1
    assert counts["throttled"]["deletes"] + counts["throttled"]["reads"] >= result["throttled_retries"]
    assert cli.sandbox.world.snapshot()["arm"] == {}
