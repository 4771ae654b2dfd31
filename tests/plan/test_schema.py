"""The JSON Schema of plan files: well-formed, complete, and agreeing with the loader on sample documents."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from provision.errors import PlanError
from provision.plan import load_plan, parse_plan, plan_json_schema

REPO = Path(__file__).resolve().parents[2]


def test_schema_shape() -> None:
    schema = plan_json_schema()
    json.dumps(schema)  # plain JSON
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert {"version", "name", "env", "ohif", "azure", "gcp"} <= set(schema["properties"])
    assert set(schema["required"]) == {"version", "name"}
    defs = schema["$defs"]
    assert defs["AzureWorkspace"]["properties"]["name"]["pattern"] == "^[a-z0-9]{3,24}$"
    assert all(d.get("additionalProperties") is False for d in defs.values() if d.get("type") == "object")


def test_schema_is_valid_json_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(plan_json_schema())


# documents without ${...}: the schema and the loader must agree on them
ACCEPTED = [
    "version: 1\nname: minimal\n",
    "version: 1\nname: a\nazure:\n  location: westeurope\n  tenant_id: 3f2504e0-4f89-11d3-9a0c-0305e82c3301\n"
    "  resource_group: {name: rg}\n  workspace: {name: ohifws}\n  dicom:\n    name: ohif-dicom\n"
    "    cors: {origins: ['https://a.org', '*'], methods: [GET], max_age: 0}\n"
    "  access:\n    - user: a@contoso.com\n    - group: 3f2504e0-4f89-11d3-9a0c-0305e82c3301\n"
    "      role: DICOM Data Reader\n  tags: {team: imaging}\n",
    "version: 1\nname: g\ngcp:\n  project: sandbox-project\n  location: us-central1\n  dataset: {id: ohif}\n"
    "  dicom_stores: [{id: main, labels: {team: x}}]\n"
    "  access: [{role: viewer, members: ['user:a@example.org', 'domain:example.org'], store: main}]\n",
]
REJECTED = [
    "version: 2\nname: future\n",
    "version: 1\n",
    "version: 1\nname: Bad_Name\n",
    "version: 1\nname: a\nextra: 1\n",
    "version: 1\nname: a\nazure: {location: westeurope, resource_group: {name: rg}, workspace: {name: ohif-ws}}\n",
    "version: 1\nname: a\nazure:\n  location: westeurope\n  access:\n    - {user: a@contoso.com,"
    " group: 3f2504e0-4f89-11d3-9a0c-0305e82c3301}\n",
    "version: 1\nname: a\nazure:\n  location: westeurope\n  access:\n    - {role: DICOM Data Owner}\n",
    "version: 1\nname: a\nazure: {location: westeurope, dicom: {name: d1d, cors: {origins: ['https://a.org/']}}}\n",
    "version: 1\nname: a\nazure: {location: westeurope, cloud: mooncake}\n",
    "version: 1\nname: g\ngcp: {project: sandbox-project, location: us, dataset: {id: d},"
    " access: [{role: viewer, members: [allUsers]}]}\n",
    "version: 1\nname: g\ngcp: {project: sandbox-project, location: us, dataset: {id: d},"
    " access: [{role: viewer, members: []}]}\n",
    "version: 1\nname: g\ngcp: {project: sandbox-project, location: us, dataset: {id: d},"
    " dicom_stores: [{id: s, labels: {Team: x}}]}\n",
]


@pytest.mark.parametrize(("text", "ok"), [(t, True) for t in ACCEPTED] + [(t, False) for t in REJECTED])
def test_schema_agrees_with_the_loader(text: str, ok: bool) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(plan_json_schema())
    schema_ok = validator.is_valid(YAML(typ="safe").load(text))
    try:
        parse_plan(text, env={})
        loader_ok = True
    except PlanError:
        loader_ok = False
    assert (schema_ok, loader_ok) == (ok, ok)


@pytest.mark.parametrize("path", sorted((REPO / "playbooks").glob("*.yaml")), ids=lambda p: p.stem)
def test_loaded_playbooks_round_trip_through_the_schema(path: Path) -> None:
    """What the models produce (defaults resolved) is itself a valid plan."""
    jsonschema = pytest.importorskip("jsonschema")
    plan = load_plan(path, env={"PR_NUMBER": "7"})
    dumped = plan.model_dump(mode="json", exclude_none=True)
    jsonschema.Draft202012Validator(plan_json_schema()).validate(dumped)
    assert parse_plan(json.dumps(dumped), env={}).model_dump() == plan.model_dump()


def test_the_committed_schema_is_current_and_every_playbook_points_editors_at_it() -> None:
    """docs/plan.schema.json is what `provision schema` prints (regenerate: `provision schema >
    docs/plan.schema.json`), and each playbook's first line wires it into yaml-language-server."""
    import json
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    assert json.loads((repo / "docs/plan.schema.json").read_text()) == plan_json_schema()
    for playbook in sorted((repo / "playbooks").glob("*.yaml")):
        first = playbook.read_text().splitlines()[0]
        assert first == "# yaml-language-server: $schema=../docs/plan.schema.json", playbook
