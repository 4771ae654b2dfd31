"""Every playbook shipped in playbooks/ loads, and resolves to the values its comments promise."""

from __future__ import annotations

from pathlib import Path

import pytest

from provision.azure.plan import AzureSection
from provision.gcp.plan import GcpSection
from provision.plan import Plan, load_plan

REPO = Path(__file__).resolve().parents[2]
PLAYBOOKS = sorted((REPO / "playbooks").glob("*.yaml"))

ENV = {"PR_NUMBER": "42"}


def test_there_are_playbooks() -> None:
    assert {p.name for p in PLAYBOOKS} >= {"azure-ohif.yaml", "azure-ephemeral.yaml", "gcp-ohif.yaml"}


@pytest.mark.parametrize("path", PLAYBOOKS, ids=[p.stem for p in PLAYBOOKS])
def test_playbook_loads(path: Path) -> None:
    plan = load_plan(path, env=ENV)
    assert isinstance(plan, Plan)
    assert plan.source == path


def test_azure_ohif() -> None:
    plan = load_plan(REPO / "playbooks/azure-ohif.yaml", env={})
    azure = plan.azure
    assert isinstance(azure, AzureSection)
    assert plan.name == "ohif-demo" and plan.env == "default"
    assert plan.ohif.viewer_url == "http://localhost:3000"
    assert plan.ohif.viewer_origin == "http://localhost:3000"
    assert azure.location == "westeurope"
    assert azure.app is not None and azure.app.flow == "spa" and azure.app.admin_consent
    assert azure.app.redirect_uris == ("http://localhost:3000/callback",)
    assert azure.app.logout_redirect_uri == "http://localhost:3000/"
    assert azure.resource_group is not None and azure.resource_group.create
    assert azure.workspace is not None and azure.workspace.name == "ohifws"
    assert azure.dicom is not None and azure.dicom.cors is not None
    assert azure.dicom.cors.origins == ("http://localhost:3000",)
    assert azure.dicom.cors.headers == ("*",)
    assert [(a.principal_kind, a.principal, a.role) for a in azure.access] == [
        ("user", "alice@contoso.com", "DICOM Data Owner"),
        ("viewer_app", None, "DICOM Data Owner"),
    ]
    assert azure.endpoints.dicom_audience == "https://dicom.healthcareapis.azure.com"


def test_azure_ohif_follows_the_viewer_url() -> None:
    plan = load_plan(REPO / "playbooks/azure-ohif.yaml", env={"OHIF_VIEWER_URL": "https://viewer.example.org/ohif/"})
    assert plan.azure is not None and plan.azure.app is not None and plan.azure.dicom is not None
    assert plan.ohif.viewer_url == "https://viewer.example.org/ohif"
    assert plan.azure.app.redirect_uris == ("https://viewer.example.org/ohif/callback",)
    assert plan.azure.dicom.cors is not None
    assert plan.azure.dicom.cors.origins == ("https://viewer.example.org",)


def test_azure_ephemeral_derives_names_from_the_pr_number() -> None:
    plan = load_plan(REPO / "playbooks/azure-ephemeral.yaml", env=ENV)
    azure = plan.azure
    assert azure is not None and azure.workspace is not None and azure.dicom is not None
    assert azure.resource_group is not None and azure.app is not None
    assert plan.env == "pr-42"
    assert azure.workspace.name == "ohifpr42"
    assert azure.dicom.name == "pr-42"
    assert azure.resource_group.name == "rg-ohif-pr-42"
    assert azure.app.unique_name == "ohif-viewer-pr-42"
    assert azure.tags == {"pull-request": "42"}


def test_gcp_ohif() -> None:
    plan = load_plan(REPO / "playbooks/gcp-ohif.yaml", env={})
    gcp = plan.gcp
    assert isinstance(gcp, GcpSection) and plan.azure is None
    assert gcp.project == "sandbox-project"
    assert gcp.dataset.id == "ohif"
    assert [s.id for s in gcp.dicom_stores] == ["main"]
    assert gcp.dataset_name == "projects/sandbox-project/locations/us-central1/datasets/ohif"
    assert [(a.role, a.store, a.mode, a.state) for a in gcp.access] == [
        ("roles/healthcare.dicomViewer", None, "additive", "present"),
        ("roles/healthcare.dicomEditor", "main", "additive", "present"),
    ]
    assert gcp.oauth_client_id == "000000000000-sandbox.apps.googleusercontent.com"


def test_orthanc_share() -> None:
    from provision.orthanc.plan import OrthancSection

    plan = load_plan(REPO / "playbooks/orthanc-share.yaml", env={})
    orthanc = plan.section("orthanc")
    assert isinstance(orthanc, OrthancSection) and plan.azure is None
    assert orthanc.directory == ".provision/orthanc"
    assert orthanc.public_url == "https://localhost:8443" and orthanc.listen_address() == "127.0.0.1:8443"
    assert orthanc.http_port == 8042 and orthanc.dicomweb_root == "/dicom-web/"
    assert orthanc.tls is not None and orthanc.tls.local_ca
    assert orthanc.viewer.ohif_version == "3.13.2"
    assert (orthanc.admin.password_env, orthanc.shares.signing_key_env) == ("ORTHANC_ADMIN_PASSWORD",
                                                                            "PROVISION_SHARE_KEY")
    assert (orthanc.shares.lifetime, orthanc.shares.max_lifetime) == ("7d", "90d")
