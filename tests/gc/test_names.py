"""Names derived from `${PR_NUMBER}` (or a branch name) fit each cloud's rule for any input, deterministically,
and never collide across pull requests."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from provision.errors import PlanError
from provision.plan import load_plan, parse_plan
from provision.plan import validators as v
from provision.plan.names import HASH_LENGTH, NAME_RULES, fit_name, short_hash

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
RULES = {rule.what: rule for _, rule in NAME_RULES}


def azure_names(pr: str) -> tuple[str, ...]:
    plan = load_plan(PLAYBOOKS / "azure-ephemeral.yaml", env={"PR_NUMBER": pr})
    azure = plan.azure
    assert azure is not None and azure.resource_group and azure.app and azure.workspace and azure.dicom
    return (plan.env, azure.resource_group.name, azure.app.unique_name, azure.workspace.name, azure.dicom.name)


def gcp_names(pr: str) -> tuple[str, ...]:
    plan = load_plan(PLAYBOOKS / "gcp-ephemeral.yaml", env={"PR_NUMBER": pr})
    assert plan.gcp is not None
    return (plan.env, plan.gcp.dataset.id, *(store.id for store in plan.gcp.dicom_stores))


def test_short_pr_numbers_keep_the_names_as_written() -> None:
    assert azure_names("42") == ("pr-42", "rg-ohif-pr-42", "ohif-viewer-pr-42", "ohifpr42", "pr-42")
    assert gcp_names("42") == ("pr-42", "ohif-pr-42", "main")


PR_NUMBERS = ["1", "9", "10", "99999", "123456789012345678", "1234567890123456789", "12345678901234567890123",
              "1" * 29, "1" * 30, "1" * 40, "2" * 300]


@pytest.mark.parametrize("pr", PR_NUMBERS, ids=lambda pr: f"{len(pr)}-digits")
def test_any_pr_number_gives_valid_names(pr: str) -> None:
    env, group, unique_name, workspace, dicom = azure_names(pr)
    assert re.fullmatch(v.ENV_NAME_RE, env)
    assert re.fullmatch(v.RESOURCE_GROUP_RE, group) and len(group) <= 90
    assert re.fullmatch(v.APP_UNIQUE_NAME_RE, unique_name)
    assert re.fullmatch(v.WORKSPACE_NAME_RE, workspace)
    assert re.fullmatch(v.DICOM_SERVICE_NAME_RE, dicom)
    # the DICOM service's host name {workspace}-{dicom} is one DNS label (at most 63 characters)
    assert len(f"{workspace}-{dicom}") <= 63
    assert all(re.fullmatch(v.GCP_ID_RE, name) for name in gcp_names(pr)[1:])


#: the playbooks' templates, per rule (what loading the playbook does to each name, without the YAML)
TEMPLATES = {
    "environment name": "pr-{}",
    "resource group name": "rg-ohif-pr-{}",
    "app uniqueName": "ohif-viewer-pr-{}",
    "workspace name": "ohifpr{}",
    "DICOM service name": "pr-{}",
    "dataset id": "ohif-pr-{}",
}


def test_names_are_deterministic_and_never_collide() -> None:
    numbers = [str(n) for n in range(1, 3000)] + [p + str(n) for p in ("1" * 17, "9" * 30) for n in range(3000)]
    for what, template in TEMPLATES.items():
        names = {fit_name(template.format(pr), RULES[what]) for pr in numbers}
        assert len(names) == len(numbers), what
    # the playbook gives the same names, and the same names again on the next load (destroy finds apply's)
    for pr in (numbers[5], numbers[-1]):
        expected = tuple(fit_name(TEMPLATES[what].format(pr), RULES[what]) for what in list(TEMPLATES)[:5])
        assert azure_names(pr) == azure_names(pr) == expected


def test_a_fitted_name_shows_where_it_came_from() -> None:
    pr = "1" * 30
    env, _, _, workspace, dicom = azure_names(pr)
    digest = short_hash(f"pr-{pr}")
    assert env == f"pr-{'1' * (32 - 1 - HASH_LENGTH - 3)}-{digest}"
    assert workspace.startswith("ohifpr1111") and len(workspace) == 24
    assert dicom.startswith("pr-111") and dicom.endswith(short_hash(f"pr-{pr}")) and len(dicom) == 24


@pytest.mark.parametrize(
    ("rule", "value", "expected"),
    [
        ("workspace name", "ohifpr42", "ohifpr42"),
        ("workspace name", "ohif-Feature/X", "ohiffeaturex" + short_hash("ohif-Feature/X")),
        ("workspace name", "", short_hash("")),
        ("DICOM service name", "pr--", "pr-" + short_hash("pr--")),
        ("DICOM service name", "-x", "x-" + short_hash("-x")),
        ("environment name", "pr-Feature/Login_Page", "pr-feature-login-page-" + short_hash("pr-Feature/Login_Page")),
        ("label value", "Feature/X", "feature-x-" + short_hash("Feature/X")),
        ("resource group name", "rg-" + "x" * 100, "rg-" + "x" * 80 + "-" + short_hash("rg-" + "x" * 100)),
    ],
)
def test_fit_name(rule: str, value: str, expected: str) -> None:
    fitted = fit_name(value, RULES[rule])
    assert fitted == expected
    assert RULES[rule].accepts(fitted)


def test_literal_names_are_never_rewritten() -> None:
    text = "version: 1\nname: x\nazure:\n  location: westeurope\n  resource_group:\n    name: rg\n" \
           "  workspace:\n    name: Not-Valid\n"
    with pytest.raises(PlanError, match=r"8:11 azure\.workspace\.name"):
        parse_plan(text, source="p.yaml", env={})


def test_a_branch_name_can_name_an_environment() -> None:
    plan = parse_plan("version: 1\nname: x\nenv: ${BRANCH}\n", env={"BRANCH": "feature/Login_Page"})
    assert plan.env == "feature-login-page-" + short_hash("feature/Login_Page")
