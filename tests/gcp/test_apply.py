"""`provision gcp plan | apply | destroy` against the sandbox with the real Google client over HTTPS."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest

from provision.core import Engine
from provision.errors import ConfigurationError, PlanError, ProvisionError
from provision.gcp.client import HealthcareClient
from provision.gcp.resources import datasets_api
from provision.gcp.session import build_resources, ohif_result, open_session
from provision.ohif.config import write_outputs
from provision.plan import Plan, parse_plan

V, E = "roles/healthcare.dicomViewer", "roles/healthcare.dicomEditor"
CLIENT_ID = "000000000000-sandbox.apps.googleusercontent.com"


def make_plan(dataset_id: str, **gcp: Any) -> Plan:
    section = {
        "project": "sandbox-project",
        "location": "us-central1",
        "dataset": {"id": dataset_id, "create": True},
        "dicom_stores": [{"id": "main", "labels": {"team": "imaging"},
                          "notification": {"pubsub_topic": "projects/sandbox-project/topics/dicom"}}],
        "access": [
            {"role": "viewer", "members": ["user:a@example.org"], "store": "main"},
            {"role": "editor", "members": ["group:b@example.org"]},
        ],
        "oauth_client_id": CLIENT_ID,
        **gcp,
    }
    return Plan.model_validate({"version": 1, "name": "ohif-demo", "env": "test",
                                "ohif": {"viewer_url": "http://localhost:3000"}, "gcp": section})


def run(plan: Plan, options: Any, what: str, *, adopt: bool = False) -> tuple[Any, Any, Any]:
    """(plan or destroy plan, outcome, OhifResult) of one engine run through the target session."""

    async def go() -> tuple[Any, Any, Any]:
        session = await open_session(plan, options)
        try:
            engine = Engine(session.resources, adopt=adopt)
            if what == "destroy":
                planned = await engine.destroy_plan()
                return planned, await engine.destroy(planned), None
            planned = await engine.plan()
            if what == "plan":
                return planned, None, session.ohif(planned.outputs)
            outcome = await engine.apply(planned)
            return planned, outcome, session.ohif(outcome.outputs)
        finally:
            await session.aclose()

    return asyncio.run(go())


def test_apply_creates_everything_writes_app_config_and_is_idempotent(
    options: Any, google: Any, observer: Any, dataset_id: str, tmp_path: Path
) -> None:
    plan = make_plan(dataset_id)
    observer.gcp_config(dataset_init_seconds=0.4)  # the new dataset answers "not initialized" for a while
    planned, outcome, ohif = run(plan, options, "apply")
    assert [s.action.kind for s in planned.steps] == ["create"] * 4
    assert {s.resource.address for s in outcome.done} == {
        f"gcp.dataset[{dataset_id}]", "gcp.dicom_store[main]", f"gcp.iam[{dataset_id}]", f"gcp.iam[{dataset_id}/main]"}

    dataset = google.dataset_name(dataset_id)
    store = f"{dataset}/dicomStores/main"
    body = google.call(lambda s: datasets_api(s).dicomStores().get(name=store))
    created = body["labels"].pop("provision-created")  # written once on create, for provision gc
    assert re.fullmatch(r"\d{8}t\d{6}z", created)
    assert body["labels"] == {
        "team": "imaging", "provision-plan": "ohif-demo", "provision-env": "test", "provision-dataset": "owned"}
    assert google.members(google.get_policy(store), V) == ["user:a@example.org"]
    assert google.members(google.get_policy(dataset), E) == ["group:b@example.org"]

    # the OHIF output: Google's OIDC settings and the store's DICOMweb root (the sandbox's, here)
    root = f"{options.sandbox.url}/v1/{store}/dicomWeb"
    written = write_outputs(tmp_path, ohif.document, viewer_url=ohif.viewer_url)
    app_config = (tmp_path / "app-config.js").read_text()
    config = json.loads(re.search(r"window\.config = (\{.*\});", app_config, re.S).group(1))  # type: ignore[union-attr]
    (source,) = config["dataSources"]
    assert source["configuration"]["qidoRoot"] == source["configuration"]["wadoRoot"] == root
    assert source["configuration"]["supportsWildcard"] is False
    assert source["configuration"]["omitQuotationForMultipartRequest"] is True
    assert "configurationAPI" not in source["configuration"]
    # against the sandbox, viewers sign in at its stand-in for accounts.google.com (ohif_result's default below)
    assert config["oidc"][0]["authority"] == f"{options.sandbox.url}/google"
    assert config["oidc"][0]["client_id"] == CLIENT_ID
    assert "https://www.googleapis.com/auth/cloud-healthcare" in config["oidc"][0]["scope"]
    assert len(written) == 2
    notes = "\n".join(ohif.notes)
    assert "Authorized JavaScript origins: http://localhost:3000" in notes
    assert "http://localhost:3000/callback" in notes and "http://localhost:3000/silent-refresh.html" in notes

    mark = observer.mark()
    planned, outcome, _ = run(plan, options, "apply")
    assert not planned.has_changes and outcome.done == []
    sent = observer.since(mark)
    assert sent and observer.writes(sent) == [], "a second apply sends no write"


def test_ohif_roots_are_healthcare_googleapis_com_outside_the_sandbox() -> None:
    """Against Google (the default endpoint; nothing is called here) the roots are the store's public DICOMweb URL."""
    from google.auth.credentials import AnonymousCredentials

    plan = make_plan("ohif")
    client = HealthcareClient(credentials=AnonymousCredentials())
    try:
        (store,) = [r for r in build_resources(client, plan, plan.gcp) if r.address == "gcp.dicom_store[main]"]
        result = ohif_result(plan, plan.gcp, {store.address: store.outputs({"labels": {}})})
    finally:
        client.close()
    assert result is not None
    (source,) = result.document["dataSources"]
    root = ("https://healthcare.googleapis.com/v1/projects/sandbox-project/locations/us-central1/datasets/ohif"
            "/dicomStores/main/dicomWeb")
    assert source["configuration"]["qidoRoot"] == source["configuration"]["wadoRoot"] == root
    (oidc,) = result.document["oidc"]
    assert oidc["authority"] == "https://accounts.google.com"
    assert oidc["revoke_uri"] == "https://accounts.google.com/o/oauth2/revoke?token="


def test_dataset_browser_and_several_stores(options: Any, observer: Any, dataset_id: str) -> None:
    plan = make_plan(dataset_id, dicom_stores=[{"id": "main"}, {"id": "research.v2"}], access=[],
                     dataset_browser=True, oauth_client_id=None)
    _, _, ohif = run(plan, options, "apply")
    names = [s["sourceName"] for s in ohif.document["dataSources"]]
    assert names == ["dicomweb", "dicomweb-research-v2"]
    assert all(s["configuration"]["configurationAPI"] == "ohif.dataSourceConfigurationAPI.google"
               for s in ohif.document["dataSources"])
    assert ohif.document["oidc"] == []
    assert "No gcp.oauth_client_id" in ohif.notes[0]
    run(plan, options, "destroy")


def test_plan_shows_binding_level_changes_and_store_updates(
    options: Any, google: Any, observer: Any, dataset_id: str
) -> None:
    run(make_plan(dataset_id), options, "apply")
    changed = make_plan(dataset_id, dicom_stores=[{"id": "main", "labels": {"team": "radiology"}}], access=[
        {"role": "viewer", "members": ["user:new@example.org"], "store": "main"},
        {"role": "viewer", "members": ["user:a@example.org"], "store": "main", "state": "absent"},
    ])
    planned, _, _ = run(changed, options, "plan")
    by_address = {s.resource.address: s for s in planned.steps}
    assert [(c.path, c.before, c.after) for c in by_address["gcp.dicom_store[main]"].action.changes] == [
        ("labels.team", "imaging", "radiology")]
    assert [(c.path, c.before, c.after) for c in by_address[f"gcp.iam[{dataset_id}/main]"].action.changes] == [
        ("bindings.roles/healthcare.dicomViewer", ["user:a@example.org"], ["user:new@example.org"])]
    assert f"gcp.iam[{dataset_id}]" not in by_address  # no access entry for the dataset any more
    mark = observer.mark()
    run(changed, options, "apply")
    patches = [e for e in observer.since(mark) if e["method"] == "PATCH"]
    assert len(patches) == 1
    store = f"{google.dataset_name(dataset_id)}/dicomStores/main"
    assert google.members(google.get_policy(store), V) == ["user:new@example.org"]


def test_destroy_removes_only_what_the_plan_owns(
    options: Any, google: Any, observer: Any, dataset_id: str
) -> None:
    plan = make_plan(dataset_id)
    run(plan, options, "apply")
    dataset = google.dataset_name(dataset_id)
    foreign = google.create_store(dataset_id, "someone-elses", labels={"team": "other"})
    planned, _, _ = run(plan, options, "destroy")
    kinds = {s.resource.address: s.action.kind for s in planned.steps}
    assert kinds["gcp.dicom_store[main]"] == "delete"
    assert kinds[f"gcp.dataset[{dataset_id}]"] == "no-op", "a dataset holding a foreign store is left alone"
    assert not google.exists(f"{dataset}/dicomStores/main")
    assert google.exists(foreign) and google.exists(dataset)
    # the plan's dataset-level grant was revoked, since the dataset stays
    assert google.members(google.get_policy(dataset), E) == []

    google.call(lambda s: datasets_api(s).dicomStores().delete(name=foreign))
    run(plan, options, "apply")
    run(plan, options, "destroy")
    assert not google.exists(dataset), "destroy leaves no dataset or store of the plan"


def test_destroy_checks_the_dataset_again_right_before_deleting_it(
    options: Any, google: Any, observer: Any, dataset_id: str
) -> None:
    """A store someone adds after the destroy was planned (while the user reads the plan) keeps the dataset."""
    plan = make_plan(dataset_id)
    run(plan, options, "apply")

    async def go() -> tuple[Any, str]:
        session = await open_session(plan, options)
        try:
            engine = Engine(session.resources)
            planned = await engine.destroy_plan()
            assert {s.resource.address: s.action.kind for s in planned.steps}[f"gcp.dataset[{dataset_id}]"] == "delete"
            late = await asyncio.to_thread(google.create_store, dataset_id, "arrived-late")
            with pytest.raises(ProvisionError, match="refusing to delete dataset") as refused:
                await engine.destroy(planned)
            assert "dicomStores/arrived-late" in refused.value.message
            return planned, late
        finally:
            await session.aclose()

    _, late = asyncio.run(go())
    assert google.exists(google.dataset_name(dataset_id)) and google.exists(late)
    assert not google.exists(f"{google.dataset_name(dataset_id)}/dicomStores/main"), "the plan's own store went"


def test_existing_store_without_our_labels_blocks_apply(
    options: Any, google: Any, observer: Any, dataset_id: str
) -> None:
    google.create_dataset(dataset_id)
    google.create_store(dataset_id, "main", labels={"team": "theirs"})
    planned, _, _ = run(make_plan(dataset_id, dataset={"id": dataset_id, "create": False}), options, "plan")
    assert [s.resource.address for s in planned.blocked] == ["gcp.dicom_store[main]"]
    mark = observer.mark()
    with pytest.raises(ProvisionError, match="ownership"):
        run(make_plan(dataset_id, dataset={"id": dataset_id, "create": False}), options, "apply")
    assert observer.writes(observer.since(mark)) == []


def test_adopt_takes_an_unlabelled_store_over_and_keeps_its_labels(
    options: Any, google: Any, observer: Any, dataset_id: str
) -> None:
    google.create_dataset(dataset_id)
    store = google.create_store(dataset_id, "main", labels={"owner": "someone"})
    plan = make_plan(dataset_id, dataset={"id": dataset_id, "create": False}, access=[])
    _, outcome, _ = run(plan, options, "apply", adopt=True)
    assert [s.resource.address for s in outcome.done] == ["gcp.dicom_store[main]"]
    labels = google.call(lambda s: datasets_api(s).dicomStores().get(name=store))["labels"]
    assert labels == {"owner": "someone", "team": "imaging", "provision-plan": "ohif-demo", "provision-env": "test"}
    assert not run(plan, options, "plan")[0].has_changes


def test_create_true_on_a_dataset_holding_foreign_stores_asks_for_adopt(
    options: Any, google: Any, observer: Any, dataset_id: str
) -> None:
    google.create_dataset(dataset_id)
    google.create_store(dataset_id, "theirs")
    planned, _, _ = run(make_plan(dataset_id, access=[]), options, "plan")
    (blocked,) = planned.blocked
    assert blocked.resource.address == f"gcp.dataset[{dataset_id}]" and "--adopt" in (blocked.blocked or "")
    run(make_plan(dataset_id, access=[]), options, "apply", adopt=True)  # adds our store next to theirs
    planned, _, _ = run(make_plan(dataset_id, access=[]), options, "destroy")
    assert {s.resource.address: s.action.kind for s in planned.steps} == {
        "gcp.dicom_store[main]": "delete", f"gcp.dataset[{dataset_id}]": "no-op"}
    assert google.exists(f"{google.dataset_name(dataset_id)}/dicomStores/theirs")


def test_referenced_dataset_must_exist(options: Any, dataset_id: str) -> None:
    planned, _, _ = run(make_plan(dataset_id, dataset={"id": dataset_id, "create": False}), options, "plan")
    assert [s.resource.address for s in planned.blocked] == [f"gcp.dataset[{dataset_id}]"]


def test_temporary_faults_are_retried(options: Any, google: Any, observer: Any, dataset_id: str) -> None:
    observer.faults([
        {"status": 503, "method": "POST", "path_regex": f"/datasets/{dataset_id}/dicomStores$", "count": 1},
        {"status": 429, "method": "GET", "path_regex": f"/datasets/{dataset_id}/dicomStores/main$", "count": 1,
         "retry_after": 0},
        {"status": "drop", "method": "GET", "path_regex": f"/datasets/{dataset_id}$", "count": 1},
    ])
    mark = observer.mark()
    _, outcome, _ = run(make_plan(dataset_id, access=[]), options, "apply")
    assert len(outcome.done) == 2
    statuses = [e["status"] for e in observer.since(mark)]
    assert {503, 429, "drop"} <= set(statuses)
    assert google.exists(f"{google.dataset_name(dataset_id)}/dicomStores/main")


PLAN_TEXT = """
version: 1
name: bad-input
gcp:
  project: sandbox-project
  location: us-central1
  dataset: {{id: x}}
  dicom_stores: [{{id: main}}]
  access:
    - {{role: {role}, members: [{member}], store: {store}}}
"""


@pytest.mark.parametrize(
    ("role", "member", "store", "message"),
    [
        ("viewer", "alice@example.org", "main", "not an accepted IAM member"),
        ("viewer", "user:alice", "main", "e-mail"),
        ("admin", "user:a@example.org", "main", "'viewer', 'editor' or a full role name"),
        ("viewer", "user:a@example.org", "other", "not a store in gcp.dicom_stores"),
    ],
)
def test_bad_plan_is_refused_by_the_loader(role: str, member: str, store: str, message: str) -> None:
    with pytest.raises(PlanError, match=message):
        parse_plan(PLAN_TEXT.format(role=role, member=member, store=store))


def test_bad_input_is_refused_before_any_call(options: Any, observer: Any) -> None:
    mark = observer.mark()
    typo = make_plan("x", access=[{"role": "roles/healthcare.dicomViewr", "members": ["user:a@example.org"]}])
    with pytest.raises(ConfigurationError, match="not a Cloud Healthcare DICOM role"):
        asyncio.run(open_session(typo, options))
    assert observer.since(mark, google_only=False) == []
