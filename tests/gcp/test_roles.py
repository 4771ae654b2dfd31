"""`provision gcp roles` against the sandbox with the real Google client: additive, idempotent, race-proof."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from provision.cli.main import app
from provision.core import Engine
from provision.errors import ProvisionError
from provision.gcp.roles import open_roles_session, requests_from_flags

V, E = "roles/healthcare.dicomViewer", "roles/healthcare.dicomEditor"
ADMIN = "roles/healthcare.dicomStoreAdmin"
COND = {"title": "until-2030", "expression": 'request.time < timestamp("2030-01-01T00:00:00Z")'}


def roles(options: Any, **flags: Any) -> tuple[Any, Any, int]:
    """Plan and apply one `gcp roles` request; returns (plan, outcome, IAM policies written)."""

    async def run() -> tuple[Any, Any, int]:
        session = await open_roles_session(requests_from_flags(**flags), options)
        try:
            engine = Engine(session.resources)
            planned = await engine.plan()
            outcome = await engine.apply(planned)
            return planned, outcome, session.writes
        finally:
            await session.aclose()

    return asyncio.run(run())


@pytest.fixture
def store(google: Any, dataset_id: str) -> str:
    """A store whose policy already holds a foreign binding, a foreign viewer and a conditional viewer."""
    google.create_dataset(dataset_id)
    name = google.create_store(dataset_id, "main")
    google.set_policy(name, {
        "version": 3,
        "bindings": [
            {"role": ADMIN, "members": ["group:admins@example.org"]},
            {"role": V, "members": ["user:x@example.org"]},
            {"role": V, "members": ["user:c@example.org"], "condition": COND},
        ],
    })
    return name


def test_additive_grant_keeps_foreign_bindings_and_conditions(
    options: Any, google: Any, observer: Any, store: str
) -> None:
    planned, _, writes = roles(options, store=store, viewers=["user:a@example.org"], editors=["group:b@example.org"])
    (iam,) = [s for s in planned.steps if s.resource.address.startswith("gcp.iam")]
    assert [(c.path, c.before, c.after) for c in iam.action.changes] == [
        ("bindings.roles/healthcare.dicomViewer", [], ["user:a@example.org"]),
        ("bindings.roles/healthcare.dicomEditor", [], ["group:b@example.org"]),
    ]
    assert writes == 1
    policy = google.get_policy(store)
    assert google.members(policy, ADMIN) == ["group:admins@example.org"]
    assert google.members(policy, V) == ["user:a@example.org", "user:x@example.org"]
    assert google.members(policy, V, conditional=True) == ["user:c@example.org"]
    assert [b["condition"] for b in policy["bindings"] if b.get("condition")] == [COND]
    assert google.members(policy, E) == ["group:b@example.org"]
    assert policy["version"] == 3


def test_second_run_sends_no_set_iam_policy(options: Any, google: Any, observer: Any, store: str) -> None:
    roles(options, store=store, viewers=["user:a@example.org"])
    mark = observer.mark()
    planned, outcome, writes = roles(options, store=store, viewers=["user:a@example.org"])
    assert not planned.has_changes and outcome.done == [] and writes == 0
    sent = observer.since(mark)
    assert sent and observer.writes(sent) == []
    assert not [e for e in sent if e["path"].endswith(":setIamPolicy")]


def test_concurrent_change_between_read_and_write_is_survived(
    options: Any, google: Any, observer: Any, store: str
) -> None:
    # right after the tool's getIamPolicy, "someone else" adds a member: the tool's write carries a stale etag
    observer.gcp_config(iam_races=[{"resource": store, "member": "user:racer@example.org", "role": E, "count": 1}])
    mark = observer.mark()
    _, outcome, writes = roles(options, store=store, viewers=["user:a@example.org"])
    assert len(outcome.done) == 1
    sets = [(e["method"], e["status"]) for e in observer.since(mark) if e["path"].endswith(":setIamPolicy")]
    assert sets == [("POST", 409), ("POST", 200)]
    assert writes == 1, "the write refused with 409 ABORTED is not reported as a policy written"
    policy = google.get_policy(store)
    assert google.members(policy, E) == ["user:racer@example.org"], "the concurrent change was kept"
    assert google.members(policy, V) == ["user:a@example.org", "user:x@example.org"]
    assert google.members(policy, V, conditional=True) == ["user:c@example.org"]


def test_revoke_and_authoritative(options: Any, google: Any, observer: Any, store: str) -> None:
    roles(options, store=store, viewers=["user:a@example.org", "user:b@example.org"], editors=["user:e@example.org"])
    roles(options, store=store, revoke_viewers=["user:b@example.org", "user:nobody@example.org"])
    policy = google.get_policy(store)
    assert google.members(policy, V) == ["user:a@example.org", "user:x@example.org"]
    roles(options, store=store, editors=["group:team@example.org"], authoritative=["editor"])
    policy = google.get_policy(store)
    assert google.members(policy, E) == ["group:team@example.org"]
    assert google.members(policy, V) == ["user:a@example.org", "user:x@example.org"], "other roles untouched"
    assert google.members(policy, V, conditional=True) == ["user:c@example.org"]


def test_dataset_level_grant(options: Any, google: Any, observer: Any, dataset_id: str) -> None:
    google.create_dataset(dataset_id)
    roles(options, dataset=google.dataset_name(dataset_id), editors=["domain:example.org"])
    assert google.members(google.get_policy(google.dataset_name(dataset_id)), E) == ["domain:example.org"]


def test_missing_store_blocks_instead_of_failing_half_way(options: Any, google: Any, dataset_id: str) -> None:
    google.create_dataset(dataset_id)
    with pytest.raises(ProvisionError, match="does not exist"):
        roles(options, store=f"{google.dataset_name(dataset_id)}/dicomStores/nope", viewers=["user:a@example.org"])


STORE = "projects/sandbox-project/locations/us-central1/datasets/d/dicomStores/s"
FLAG = {"viewers": "--viewer", "editors": "--editor", "revoke_viewers": "--revoke-viewer",
        "revoke_editors": "--revoke-editor", "authoritative": "--authoritative", "store": "--store",
        "dataset": "--dataset"}


def run_roles(sandbox: Any, *args: str, **flags: Any) -> Result:
    """`provision gcp roles` as a user runs it, against the session sandbox (PROVISION_SANDBOX)."""
    argv = ["gcp", "roles", *args]
    for key, value in flags.items():
        for item in value if isinstance(value, list) else [value]:
            argv += [FLAG[key], item]
    env = {"PROVISION_SANDBOX": str(Path(sandbox.info.state_dir) / "sandbox.json"), "NO_COLOR": "1"}
    return CliRunner().invoke(app, argv, env=env)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"store": STORE, "viewers": ["a@example.org"]}, "not an accepted IAM member"),
        ({"store": STORE, "viewers": ["user:not-an-email"]}, "must be an e-mail"),
        ({"store": STORE, "editors": ["serviceaccount:x@example.org"]}, "not an accepted IAM member"),
        ({"store": STORE, "viewers": ["user:a@example.org"], "authoritative": ["admin"]}, "expected 'viewer'"),
        ({"store": STORE, "viewers": ["user:a@example.org"], "authoritative": ["editor"]},
         "--authoritative editor needs at least one --editor"),
        ({"store": "projects/p/datasets/d/dicomStores/s", "viewers": ["user:a@example.org"]}, "resource name"),
        ({"store": STORE.rsplit("/dicomStores", 1)[0], "viewers": ["user:a@example.org"]}, "names a dataset"),
        ({"dataset": STORE, "viewers": ["user:a@example.org"]}, "names a DICOM store"),
        ({"store": STORE}, "nothing to grant"),
        ({"viewers": ["user:a@example.org"]}, "exactly one of --store or --dataset"),
        ({"store": STORE, "viewers": ["user:a@example.org"], "revoke_viewers": ["user:A@example.org"]},
         "both granted and revoked"),
    ],
)
def test_bad_input_is_refused_before_any_call(
    sandbox: Any, observer: Any, flags: dict[str, Any], message: str
) -> None:
    mark = observer.mark()
    result = run_roles(sandbox, "--auto-approve", **flags)
    assert result.exit_code == 1 and re.search(message, " ".join(result.output.split())), result.output
    assert observer.since(mark, google_only=False) == []


def test_bad_plan_role_is_refused_before_any_call(sandbox: Any, observer: Any, tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "version: 1\nname: roles-test\ngcp:\n  project: sandbox-project\n  location: us-central1\n"
        "  dataset: {id: d}\n  access:\n    - {role: roles/healthcare.dicomViewr, members: [user:a@example.org]}\n"
    )
    mark = observer.mark()
    result = run_roles(sandbox, str(plan), "--auto-approve")
    assert result.exit_code == 1 and "dicomViewr" in result.output
    assert observer.since(mark, google_only=False) == []


def test_cli_dry_run_exit_codes_then_apply(sandbox: Any, observer: Any, google: Any, store: str) -> None:
    flags = {"store": store, "viewers": ["user:cli@example.org"]}
    mark = observer.mark()
    dry = run_roles(sandbox, "--dry-run", "--detailed-exitcode", **flags)
    assert dry.exit_code == 2, dry.output
    assert observer.writes(observer.since(mark)) == []
    assert "roles/healthcare.dicomViewer" in dry.output and "user:cli@example.org" in dry.output
    applied = run_roles(sandbox, "--output", "json", "--auto-approve", **flags)
    assert applied.exit_code == 0 and '"writes": 1' in applied.output, applied.output
    assert run_roles(sandbox, "--dry-run", "--detailed-exitcode", **flags).exit_code == 0
    refused = run_roles(sandbox, revoke_viewers=["user:cli@example.org"], store=store)  # no terminal to ask
    assert refused.exit_code == 1 and "auto-approve" in refused.output
