"""Resolved defaults, helper properties and cross-field rules of the plan models."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from provision.azure.plan import AZURE_CLOUDS, AzureCloudEndpoints
from provision.errors import PlanError
from provision.plan import OhifSection, Plan, parse_plan, plan_model

AZURE_CORE = "  location: westeurope\n  resource_group: {name: rg}\n  workspace: {name: ohifws}\n"


def _plan(body: str, env: dict[str, str] | None = None) -> Plan:
    return parse_plan("version: 1\nname: test\n" + body, source="t.yaml", env=env or {})


def _problems(body: str) -> list[str]:
    with pytest.raises(PlanError) as caught:
        _plan(body)
    return caught.value.message.splitlines()


def test_minimal_plan_has_defaults() -> None:
    plan = _plan("")
    assert plan.env == "default"
    assert plan.ohif == OhifSection()
    assert plan.ohif.data_source_name == "dicomweb" and plan.ohif.friendly_name == "DICOM server"
    assert plan.ohif.viewer_url is None and plan.ohif.viewer_origin is None and plan.ohif.callback_url is None
    assert plan.azure is None and plan.gcp is None
    assert plan.source is None


@pytest.mark.parametrize(
    ("url", "stored", "origin"),
    [
        ("https://viewer.example.org", "https://viewer.example.org", "https://viewer.example.org"),
        ("https://viewer.example.org/", "https://viewer.example.org", "https://viewer.example.org"),
        ("https://Viewer.Example.org:443/ohif/", "https://Viewer.Example.org:443/ohif", "https://viewer.example.org"),
        ("https://viewer.example.org:8443/a", "https://viewer.example.org:8443/a", "https://viewer.example.org:8443"),
        ("http://localhost:3000", "http://localhost:3000", "http://localhost:3000"),
        ("http://127.0.0.1:80/", "http://127.0.0.1:80", "http://127.0.0.1"),
    ],
)
def test_viewer_origin(url: str, stored: str, origin: str) -> None:
    ohif = _plan(f"ohif: {{viewer_url: '{url}'}}\n").ohif
    assert ohif.viewer_url == stored
    assert ohif.viewer_origin == origin
    assert ohif.callback_url == stored + "/callback"


def test_redirect_uris_and_cors_origins_default_from_the_viewer() -> None:
    plan = _plan(
        "ohif: {viewer_url: 'https://viewer.example.org:8443/ohif'}\nazure:\n"
        + AZURE_CORE
        + "  app: {unique_name: ohif, display_name: OHIF}\n  dicom:\n    name: ohif-dicom\n    cors: {max_age: 5}\n"
    )
    assert plan.azure is not None and plan.azure.app is not None and plan.azure.dicom is not None
    assert plan.azure.app.redirect_uris == ("https://viewer.example.org:8443/ohif/callback",)
    assert plan.azure.dicom.cors is not None
    assert plan.azure.dicom.cors.origins == ("https://viewer.example.org:8443",)
    assert plan.azure.dicom.cors.headers is None  # undeclared: not managed


def test_declared_values_win_over_defaults() -> None:
    plan = _plan(
        "ohif: {viewer_url: 'https://viewer.example.org'}\nazure:\n"
        + AZURE_CORE
        + "  app: {unique_name: ohif, display_name: OHIF, redirect_uris: ['https://other.example.org/cb']}\n"
        + "  dicom: {name: ohif-dicom, cors: {origins: ['*']}}\n"
    )
    assert plan.azure is not None and plan.azure.app is not None and plan.azure.dicom is not None
    assert plan.azure.app.redirect_uris == ("https://other.example.org/cb",)
    assert plan.azure.dicom.cors is not None and plan.azure.dicom.cors.origins == ("*",)


def test_cors_is_not_managed_unless_declared() -> None:
    plan = _plan("ohif: {viewer_url: 'https://v.example.org'}\nazure:\n" + AZURE_CORE + "  dicom: {name: ohif-dicom}\n")
    assert plan.azure is not None and plan.azure.dicom is not None and plan.azure.dicom.cors is None


def test_cors_origins_stay_undeclared_without_a_viewer() -> None:
    plan = _plan("azure:\n" + AZURE_CORE + "  dicom: {name: ohif-dicom, cors: {headers: ['*']}}\n")
    assert plan.azure is not None and plan.azure.dicom is not None and plan.azure.dicom.cors is not None
    assert plan.azure.dicom.cors.origins is None


def test_ids_are_normalised() -> None:
    plan = _plan("azure:\n  location: westeurope\n  tenant_id: 72F988BF-86F1-41AF-91AB-2D7CD011DB47\n")
    assert plan.azure is not None and plan.azure.tenant_id == "72f988bf-86f1-41af-91ab-2d7cd011db47"


def test_gcp_roles_resolve_to_full_names() -> None:
    plan = _plan(
        "gcp:\n  project: sandbox-project\n  location: us\n  dataset: {id: ohif}\n  access:\n"
        "    - {role: viewer, members: ['user:a@example.org']}\n"
        "    - {role: editor, members: ['user:a@example.org']}\n"
        "    - {role: roles/healthcare.dicomStoreAdmin, members: ['domain:example.org']}\n"
        "    - {role: projects/sandbox-project/roles/custom.viewer, members: ['group:g@example.org']}\n"
    )
    assert plan.gcp is not None
    assert [a.role for a in plan.gcp.access] == [
        "roles/healthcare.dicomViewer",
        "roles/healthcare.dicomEditor",
        "roles/healthcare.dicomStoreAdmin",
        "projects/sandbox-project/roles/custom.viewer",
    ]


def test_cloud_names_and_custom_endpoints() -> None:
    named = _plan("azure: {location: westeurope, cloud: usgov}\n").azure
    assert named is not None and named.endpoints is AZURE_CLOUDS["usgov"]
    custom = _plan(
        "azure:\n  location: westeurope\n  cloud:\n    login: https://127.0.0.1:8443\n"
        "    arm: https://127.0.0.1:8443\n    graph: https://127.0.0.1:8443\n    dicom_audience: https://dicom.example\n"
    ).azure
    assert custom is not None and isinstance(custom.cloud, AzureCloudEndpoints)
    assert custom.endpoints.arm == "https://127.0.0.1:8443"
    assert _problems("azure: {location: westeurope, cloud: mooncake}\n") == [
        "t.yaml:3:38 azure.cloud: expected 'public', 'usgov' or 'china'; got 'mooncake'"
    ]


def test_numbers_are_read_as_strings_where_strings_are_expected() -> None:
    plan = _plan("env: 42\ngcp:\n  project: sandbox-project\n  location: us\n  dataset: {id: 2024}\n")
    assert plan.env == "42"
    assert plan.gcp is not None and plan.gcp.dataset.id == "2024"


def test_models_are_frozen() -> None:
    plan = _plan("")
    with pytest.raises(ValidationError):
        plan.name = "other"


def test_sections_depend_on_each_other() -> None:
    assert _problems(
        "azure:\n  location: westeurope\n  dicom: {name: ohif-dicom}\n  access: [{user: a@contoso.com}]\n"
        "  workspace: {name: ohifws}\n"
    ) == ["t.yaml:3:1 azure.resource_group: is required when azure.workspace is declared"]  # at its parent
    assert _problems("azure:\n  location: westeurope\n  access: [{user: a@contoso.com}]\n") == [
        "t.yaml:3:1 azure.dicom: is required when azure.access is declared"
    ]


def test_repeated_entries_are_rejected() -> None:
    problems = _problems(
        "azure:\n" + AZURE_CORE + "  dicom: {name: ohif-dicom}\n  access:\n"
        "    - {user: a@contoso.com}\n    - {user: A@Contoso.com, role: dicom data owner}\n"
        "gcp:\n  project: sandbox-project\n  location: us\n  dataset: {id: ohif}\n  access:\n"
        "    - {role: viewer, members: ['user:a@example.org', 'user:a@example.org']}\n"
    )
    assert problems == [
        "t.yaml:10:7 azure.access[1]: repeats an earlier entry (same principal and role)",
        "t.yaml:16:22 gcp.access[0].members: 'user:a@example.org' is listed twice",
    ]


def test_contradicting_gcp_bindings_are_rejected() -> None:
    problems = _problems(
        "gcp:\n  project: sandbox-project\n  location: us\n  dataset: {id: ohif}\n  access:\n"
        "    - {role: viewer, members: ['user:a@example.org']}\n"
        "    - {role: viewer, members: ['user:a@example.org'], state: absent}\n"
        "    - {role: editor, members: ['user:a@example.org'], mode: authoritative}\n"
        "    - {role: editor, members: ['user:b@example.org'], mode: authoritative}\n"
        "    - {role: editor, members: ['user:c@example.org'], mode: authoritative, store: main}\n"
    )
    assert problems == [
        "t.yaml:9:22 gcp.access[1].members: 'user:a@example.org' is both granted and revoked "
        "roles/healthcare.dicomViewer",
        "t.yaml:11:7 gcp.access[3]: a second authoritative entry for roles/healthcare.dicomEditor on the same resource",
        "t.yaml:12:83 gcp.access[4].store: 'main' is not a store in gcp.dicom_stores (declared: none)",
    ]


def test_direct_validation_reports_rules_readably() -> None:
    with pytest.raises(ValidationError) as caught:
        plan_model().model_validate(
            {
                "version": 1,
                "name": "x",
                "gcp": {
                    "project": "sandbox-project",
                    "location": "us",
                    "dataset": {"id": "d"},
                    "access": [{"role": "viewer", "members": ["user:a@b.org"], "store": "s"}],
                },
            }
        )
    assert "'s' is not a store in gcp.dicom_stores (declared: none)" in str(caught.value)


def test_seed_paths_are_relative_to_the_plan_file_and_must_exist(tmp_path: Path) -> None:
    from provision.plan import load_plan
    from provision.plan.base import resolve_path

    (tmp_path / "studies").mkdir()
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text("version: 1\nname: seeded\ngcp:\n  project: sandbox-project\n  location: us\n"
                         "  dataset: {id: d}\n  dicom_stores:\n    - {id: s, seed: [studies]}\n")
    plan = load_plan(plan_file)
    assert resolve_path(plan.gcp.dicom_stores[0].seed[0], plan.source) == tmp_path / "studies"  # type: ignore[union-attr]
    plan_file.write_text(plan_file.read_text().replace("[studies]", "[studies, missing, studies]"))
    with pytest.raises(PlanError) as caught:
        load_plan(plan_file)
    assert "gcp.dicom_stores[0].seed[1]: 'missing' does not exist" in caught.value.message
    # in memory (no plan file) the paths are not checked; repeats are refused anyway
    with pytest.raises(PlanError, match="'studies' is listed twice"):
        parse_plan(plan_file.read_text().replace(", missing", ""))
