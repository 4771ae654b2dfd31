"""Table tests of the pure IAM merge (one scenario file per case) and of the plan's view of a policy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provision.core import diff
from provision.errors import ConfigurationError, PlanError
from provision.gcp.iam import (
    POLICY_VERSION,
    RoleGrant,
    binding_view,
    check_member,
    check_role,
    combine_grants,
    desired_view,
    merge_policy,
    nest_roles,
)
from provision.gcp.resources import IamPolicyResource

CASES = sorted((Path(__file__).parent / "iam_cases").glob("*.json"))
V, E = "roles/healthcare.dicomViewer", "roles/healthcare.dicomEditor"


def _grant(raw: dict) -> RoleGrant:
    return RoleGrant(raw["role"], tuple(raw.get("present", ())), tuple(raw.get("absent", ())),
                     raw.get("authoritative", False))


@pytest.mark.parametrize("case_file", CASES, ids=[p.stem for p in CASES])
def test_merge_scenario(case_file: Path) -> None:
    case = json.loads(case_file.read_text())
    before = json.loads(json.dumps(case["policy"]))
    result = merge_policy(case["policy"], [_grant(g) for g in case["grants"]])
    assert case["policy"] == before, "merge_policy must not modify its input"
    assert result.changed is case["expect"]["changed"]
    assert result.policy.get("bindings", []) == case["expect"]["bindings"]
    assert result.policy["etag"] == case["policy"]["etag"], "the etag read is the etag written"
    if result.changed:
        assert result.policy["version"] == POLICY_VERSION
        # merging again is a fixed point: the second run changes nothing
        assert not merge_policy(result.policy, [_grant(g) for g in case["grants"]]).changed


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 12


def test_merge_keeps_audit_configs_and_reports_changes() -> None:
    policy = {"etag": "BwX1", "auditConfigs": [{"service": "allServices"}],
              "bindings": [{"role": V, "members": ["user:x@example.org", "user:gone@example.org"]}]}
    result = merge_policy(policy, [RoleGrant(V, ("user:a@example.org",), ("user:gone@example.org",))])
    assert result.policy["auditConfigs"] == [{"service": "allServices"}]
    assert result.changes == {V: (("user:a@example.org",), ("user:gone@example.org",))}


def test_view_shows_only_mentioned_members_for_additive_roles() -> None:
    policy = {"bindings": [{"role": V, "members": ["user:x@example.org", "user:a@example.org"]},
                           {"role": E, "members": ["user:e@example.org"]}]}
    grants = [RoleGrant(V, ("user:a@example.org", "user:b@example.org")), RoleGrant(E, ("user:f@example.org",),
                                                                                    authoritative=True)]
    assert binding_view(policy, grants) == {V: ["user:a@example.org"], E: ["user:e@example.org"]}
    assert desired_view(grants) == {V: ["user:a@example.org", "user:b@example.org"], E: ["user:f@example.org"]}


def test_diff_of_views_is_binding_level_and_foreign_members_are_not_drift() -> None:
    grants = [RoleGrant(V, ("user:a@example.org",), ("user:z@example.org",))]
    desired = {"bindings": nest_roles(desired_view(grants))}
    satisfied = {"bindings": [{"role": V, "members": ["user:x@example.org", "user:A@example.org"]}]}
    actual = {"bindings": nest_roles(binding_view(satisfied, grants))}
    assert diff(desired, actual, IamPolicyResource.schema).kind == "no-op"
    stale = {"bindings": [{"role": V, "members": ["user:z@example.org", "user:x@example.org"]}]}
    action = diff(desired, {"bindings": nest_roles(binding_view(stale, grants))}, IamPolicyResource.schema)
    (change,) = action.changes
    assert (change.path, change.before, change.after) == (
        "bindings.roles/healthcare.dicomViewer", ["user:z@example.org"], ["user:a@example.org"])


def test_nest_roles_keeps_dotted_role_names_addressable() -> None:
    nested = nest_roles({V: [1], E: [2], "projects/p/roles/custom": [3]})
    assert nested == {"roles/healthcare": {"dicomViewer": [1], "dicomEditor": [2]}, "projects/p/roles/custom": [3]}
    with pytest.raises(ConfigurationError):
        nest_roles({"roles/a.b": [], "roles/a.b.c": []})


def test_combine_grants_folds_entries_per_role() -> None:
    grants = combine_grants([
        (V, ["user:a@example.org"], "additive", "present"),
        (V, ["user:b@example.org", "user:A@example.org"], "additive", "present"),
        (V, ["user:z@example.org"], "additive", "absent"),
        (E, ["group:g@example.org"], "authoritative", "present"),
    ])
    assert grants == [
        RoleGrant(V, ("user:a@example.org", "user:b@example.org"), ("user:z@example.org",)),
        RoleGrant(E, ("group:g@example.org",), (), True),
    ]
    with pytest.raises(PlanError, match="both granted and revoked"):
        combine_grants([(V, ["user:a@example.org"], "additive", "present"),
                        (V, ["user:A@example.org"], "additive", "absent")])


@pytest.mark.parametrize(
    ("role", "full"),
    [("viewer", V), ("editor", E), (V, V), ("roles/healthcare.dicomStoreAdmin", "roles/healthcare.dicomStoreAdmin"),
     ("projects/p-123456/roles/dicomReader", "projects/p-123456/roles/dicomReader")],
)
def test_check_role_accepts(role: str, full: str) -> None:
    assert check_role(role) == full


@pytest.mark.parametrize("role", ["admin", "roles/", "roles/owner", "roles/healthcare.dicomViewr", "dicomViewer", ""])
def test_check_role_refuses(role: str) -> None:
    with pytest.raises(ConfigurationError):
        check_role(role)


@pytest.mark.parametrize(
    "member",
    ["a@example.org", "user:", "user:not-an-email", "users:a@example.org", "domain:localhost", "allUsers",
     "group:b@@example.org"],
)
def test_check_member_refuses(member: str) -> None:
    with pytest.raises(ConfigurationError):
        check_member(member)


@pytest.mark.parametrize(
    "member",
    ["user:a@example.org", "group:b@example.org", "serviceAccount:sa@p-123456.iam.gserviceaccount.com",
     "domain:example.org"],
)
def test_check_member_accepts(member: str) -> None:
    assert check_member(member) == member


class _Resp(dict):
    def __init__(self, status: int) -> None:
        super().__init__()
        self.status = status
        self.reason = "reason"


class _HttpError(Exception):
    def __init__(self, status: int, content: bytes) -> None:
        self.resp = _Resp(status)
        self.content = content


@pytest.mark.parametrize(
    ("status", "content", "kind", "text"),
    [
        (409, b'{"error":{"code":409,"message":"There were concurrent policy changes.","status":"ABORTED"}}',
         "TemporaryError", "read-modify-write"),
        (404, b'{"error":{"code":404,"message":"dataset not initialized","status":"NOT_FOUND"}}',
         "TemporaryError", "to become usable"),
        (404, b'{"error":{"code":404,"message":"not found","status":"NOT_FOUND"}}', "NotFound", "not found"),
        (409, b'{"error":{"code":409,"message":"already exists","status":"ALREADY_EXISTS"}}', "AlreadyExists", ""),
        (503, b'{"error":{"code":"ServiceUnavailable","message":"try later"}}', "TemporaryError", "try later"),
        (502, b"<html>bad gateway</html>", "TemporaryError", "bad gateway"),
        (403, b'{"error":{"code":403,"message":"denied","status":"PERMISSION_DENIED"}}', "CloudError", "denied"),
        (400, b'{"error":{"code":400,"message":"bad","status":"INVALID_ARGUMENT"}}', "CloudError", "bad"),
    ],
)
def test_errors_are_classified_from_rpc_status(status: int, content: bytes, kind: str, text: str) -> None:
    from provision.gcp.client import classify

    error = classify(_HttpError(status, content), "doing it")
    assert type(error).__name__ == kind
    assert text in str(error)
