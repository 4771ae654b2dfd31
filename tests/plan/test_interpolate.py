"""`${VAR}` interpolation: the function itself, and how the loader reports its failures."""

from __future__ import annotations

import pytest

from provision.errors import PlanError
from provision.plan import parse_plan
from provision.plan.loader import interpolate


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("plain", {}, "plain"),
        ("${A}", {"A": "x"}, "x"),
        ("pr-${PR}-${PR}", {"PR": "7"}, "pr-7-7"),
        ("${A:-dflt}", {}, "dflt"),
        ("${A:-dflt}", {"A": ""}, "dflt"),  # unset or empty, as in a shell
        ("${A:-dflt}", {"A": "set"}, "set"),
        ("${A:-}", {}, ""),
        ("${A:-http://localhost:3000}", {}, "http://localhost:3000"),
        ("${A:-}", {"A": ""}, ""),  # empty allowed explicitly
        ("$${A}", {"A": "x"}, "${A}"),  # escape
        ("$$${A}", {"A": "x"}, "$${A}"),  # '$' then the escape
        ("cost: $5 or $", {}, "cost: $5 or $"),  # a lone '$' is literal
        ("${A}", {"A": "${B}"}, "${B}"),  # values are not interpolated again
        ("a $${ b ${C:-c}", {}, "a ${ b c"),
    ],
)
def test_interpolate(text: str, env: dict[str, str], expected: str) -> None:
    assert interpolate(text, env) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("${MISSING}", "${MISSING} is not set and has no default"),
        ("${lower-case}", "malformed '${'"),
        ("${UNCLOSED", "malformed '${'"),
        ("${}", "malformed '${'"),
        ("${A:-${B}}", "nested '${' in the default of ${A}"),
    ],
)
def test_interpolate_rejects(text: str, fragment: str) -> None:
    with pytest.raises(ValueError) as caught:
        interpolate(text, {})
    assert fragment in str(caught.value)


def test_keys_are_not_interpolated_and_values_of_any_depth_are() -> None:
    plan = parse_plan(
        "version: 1\nname: ${NAME}\ngcp:\n  project: sandbox-project\n  location: us-central1\n"
        "  dataset: {id: ohif}\n  dicom_stores:\n    - id: main\n      labels:\n        team: ${TEAM:-imaging}\n",
        env={"NAME": "from-env"},
    )
    assert plan.name == "from-env"
    assert plan.gcp is not None and plan.gcp.dicom_stores[0].labels == {"team": "imaging"}


def test_interpolated_numbers_and_booleans_are_coerced() -> None:
    text = (
        "version: 1\nname: x\nazure:\n  location: westeurope\n  resource_group: {name: rg}\n"
        "  workspace: {name: ohifws}\n  dicom:\n    name: ohif-dicom\n    cors:\n"
        "      max_age: ${AGE}\n      allow_credentials: ${CREDS:-false}\n"
    )
    plan = parse_plan(text, env={"AGE": "600"})
    assert plan.azure is not None and plan.azure.dicom is not None and plan.azure.dicom.cors is not None
    assert plan.azure.dicom.cors.max_age == 600
    assert plan.azure.dicom.cors.allow_credentials is False


def test_missing_variable_is_located_and_hinted() -> None:
    with pytest.raises(PlanError) as caught:
        parse_plan("version: 1\nname: x\nenv: 'pr-${PR_NUMBER}'\n", source="p.yaml", env={})
    assert caught.value.message == "p.yaml:3:10 env: ${PR_NUMBER} is not set and has no default"
    assert caught.value.hint == (
        "set PR_NUMBER in the environment, or give a default: ${PR_NUMBER:-value} (${PR_NUMBER:-} allows empty)"
    )


def test_set_but_empty_variable_is_refused() -> None:
    """An empty PR_NUMBER must not quietly name a shared environment `pr-`."""
    with pytest.raises(PlanError) as caught:
        parse_plan("version: 1\nname: x\nenv: 'pr-${PR_NUMBER}'\n", source="p.yaml", env={"PR_NUMBER": ""})
    assert caught.value.message == "p.yaml:3:10 env: ${PR_NUMBER} is empty and has no default"


def test_loader_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVISION_TEST_ENV_NAME", "from-os")
    assert parse_plan("version: 1\nname: x\nenv: ${PROVISION_TEST_ENV_NAME}\n").env == "from-os"
