"""The `orthanc:` section: its defaults and its rules (more located cases are in tests/plan/broken/)."""

from __future__ import annotations

import pytest

from provision.errors import PlanError
from provision.orthanc.plan import OrthancSection
from provision.plan import parse_plan


def section(body: str, ohif: str = "") -> OrthancSection:
    plan = parse_plan(f"version: 1\nname: t\n{ohif}orthanc:\n  directory: site\n{body}", "plan.yaml")
    found = plan.section("orthanc")
    assert isinstance(found, OrthancSection)
    return found


def refused(body: str, ohif: str = "") -> str:
    with pytest.raises(PlanError) as caught:
        section(body, ohif)
    return caught.value.message


def test_defaults() -> None:
    found = section("  public_url: https://viewer.example.org\n  tls: {local_ca: true}\n")
    assert found.listen_address() == "0.0.0.0:443"
    assert (found.http_port, found.dicomweb_root, found.viewer.ohif_version) == (8042, "/dicom-web/", "3.13.2")
    assert found.admin.user == "admin" and found.shares.lifetime == "7d"


def test_the_public_url_is_an_origin_and_may_come_from_the_viewer_url() -> None:
    found = section("  tls: {local_ca: true}\n", ohif="ohif: {viewer_url: 'https://Viewer.Example.org:8443/'}\n")
    assert found.public_url == "https://viewer.example.org:8443"
    assert found.listen_address() == "0.0.0.0:8443"
    assert "without a path" in refused("  public_url: https://viewer.example.org/ohif\n  tls: {local_ca: true}\n")
    assert "cannot be used" in refused("  tls: {local_ca: true}\n",
                                       ohif="ohif: {viewer_url: 'https://viewer.example.org/ohif'}\n")
    assert "differs from ohif.viewer_url" in refused("  public_url: https://a.example.org\n  tls: {local_ca: true}\n",
                                                     ohif="ohif: {viewer_url: 'https://b.example.org'}\n")
    assert "plan.yaml:3:1 orthanc.public_url: required" in refused("")


def test_http_only_on_localhost_and_then_without_tls() -> None:
    local = section("  public_url: http://localhost:8080\n")
    assert local.listen_address() == "127.0.0.1:8080" and local.tls is None
    assert "must use https" in refused("  public_url: http://10.0.0.5:8080\n")
    assert "not used with the http public_url" in refused("  public_url: http://localhost:8080\n"
                                                          "  tls: {local_ca: true}\n")


def test_other_rules() -> None:
    tls = "  public_url: https://localhost:9443\n  tls: {local_ca: true}\n"
    assert "is nginx's port too" in refused(tls + "  http_port: 9443\n")
    assert "longer than max_lifetime" in refused(tls + "  shares: {lifetime: 100d}\n")
    assert "must be longer than 0s" in refused(tls + "  shares: {lifetime: 0s}\n")
    assert "a path of the viewer itself" in refused(tls + "  dicomweb_root: /viewer/\n")
    assert "listed twice" in refused(tls + "  cors_origins: [https://a.org, https://a.org]\n")
    assert "must use https" in refused(tls + "  cors_origins: [http://a.org]\n")
    assert "required with certificate" in refused("  public_url: https://localhost:9443\n"
                                                  "  tls: {certificate: c.pem}\n")
    assert "an environment variable name" in refused(tls + "  admin: {password_env: 'not a name'}\n")
    assert "ADDRESS:PORT" in refused(tls + "  listen: localhost:443\n")
