"""The rendered files as pure functions of the plan: what each one must say, that the same plan renders the same
bytes, that no secret is ever in one, and that the real nginx accepts the configuration (`nginx -t`)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from provision.orthanc import deploy, render, sharetoken, tls
from provision.orthanc.plan import OrthancSection
from provision.orthanc.session import parse_app_config
from provision.orthanc.site import Site, admin_salt, site_of
from provision.plan import parse_plan

PASSWORD = "the-admin-password-123"
SIGNING_KEY = "the-signing-key-is-never-rendered-0123456789"


def make_site(tmp_path: Path, body: str = "", *, public_url: str = "https://viewer.example.org") -> Site:
    tls_block = "  tls: {local_ca: true}\n" if public_url.startswith("https") else ""
    plan = parse_plan(f"version: 1\nname: demo\nenv: pr-7\nohif: {{data_source_name: orthanc}}\northanc:\n"
                      f"  directory: site\n  public_url: {public_url}\n{tls_block}"
                      f"  cors_origins: [https://other.example.org]\n{body}")
    section = plan.section("orthanc")
    assert isinstance(section, OrthancSection)
    admin_hash = sharetoken.hash_password(PASSWORD, admin_salt(plan.name, plan.env, section.admin.user), rounds=1000)
    return site_of(plan.name, plan.env, section, admin_hash=admin_hash, data_source_name="orthanc",
                   friendly_name="Orthanc", cwd=tmp_path)


def every_file(site: Site) -> dict[str, str]:
    return {
        "orthanc.json": json.dumps(render.orthanc_json(site)),
        "compose/orthanc.json": json.dumps(render.orthanc_json(site, "compose")),
        "nginx.conf": render.nginx_conf(site),
        "compose/nginx.conf": render.nginx_conf(site, "compose"),
        "app-config.js": render.app_config_js(site),
        "orthanc.service": deploy.orthanc_unit(site),
        "nginx.service": deploy.nginx_unit(site),
        "docker-compose.yaml": deploy.compose_file(site),
    }


def test_orthanc_configuration(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    config = render.orthanc_json(site)
    root = tmp_path / "site"
    assert config["AuthenticationEnabled"] is False and "RegisteredUsers" not in config
    assert config["RemoteAccessAllowed"] is False and config["DicomServerEnabled"] is False
    assert config["PythonScript"] == str(root / "orthanc/python/share_filter.py")
    assert config["Plugins"] == ["/usr/share/orthanc/plugins/libOrthancDicomWeb.so",
                                 "/usr/share/orthanc/plugins/libOrthancPython.so"]
    assert config["StorageDirectory"] == config["IndexDirectory"] == str(root / "storage")
    assert config["DicomWeb"] == {"Enable": True, "Root": "/dicom-web/", "EnableWado": False, "Ssl": False,
                                  "StudiesMetadata": "Full", "SeriesMetadata": "Full"}
    shares = config["ProvisionShares"]
    assert shares["SigningKeyEnv"] == "PROVISION_SHARE_KEY"
    assert shares["RevocationFile"] == str(root / "shares/revoked.txt")
    assert sharetoken.password_matches(PASSWORD, shares["Admins"]["admin"])
    container = render.orthanc_json(site, "compose")
    differing = {key for key in config if config[key] != container[key]}
    assert differing == {"RemoteAccessAllowed", "Plugins"}
    assert container["Plugins"][1] == "/usr/share/orthanc/plugins-available/libOrthancPython.so"


def test_viewer_configuration(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    config = parse_app_config(render.app_config_js(site))
    assert config == render.app_config(site)
    assert config["showStudyList"] is False and "oidc" not in config
    source = config["dataSources"][0]
    assert source["sourceName"] == config["defaultDataSourceName"] == "orthanc"
    assert source["configuration"]["qidoRoot"] == source["configuration"]["wadoRoot"] == \
        "https://viewer.example.org/dicom-web"
    assert source["configuration"]["dicomUploadEnabled"] is False


def test_nginx_configuration(tmp_path: Path) -> None:
    site = make_site(tmp_path, "  listen: 0.0.0.0:8443\n")
    conf = render.nginx_conf(site)
    assert "listen 0.0.0.0:8443 ssl http2;" in conf and "server_name viewer.example.org;" in conf
    # cross-origin isolation on every location serving the viewer, CORP cross-origin on DICOMweb
    assert conf.count('Cross-Origin-Opener-Policy "same-origin" always') == 3
    assert conf.count('Cross-Origin-Embedder-Policy "require-corp" always') == 3
    assert 'Cross-Origin-Resource-Policy "cross-origin" always' in conf
    assert 'Referrer-Policy "no-referrer" always' in conf
    assert "try_files $uri $uri/ /index.html;" in conf
    # CORS for exactly the allowed origins, preflight answered by nginx
    assert '"https://viewer.example.org" $http_origin;' in conf and '"https://other.example.org" $http_origin;' in conf
    assert 'default "";' in conf and "Access-Control-Allow-Headers \"Authorization, Accept, Content-Type\"" in conf
    # Orthanc: only the DICOMweb root is proxied, with an unquoted Forwarded header
    assert conf.count("proxy_pass") == 1 and "location /dicom-web/ {" in conf
    assert 'proxy_set_header Forwarded "host=$http_host;proto=https";' in conf
    assert f"server 127.0.0.1:{site.http_port};" in conf
    # tokens travel in query strings and Referers: neither reaches the access log
    log_format = next(line for line in conf.splitlines() if "log_format" in line)
    assert "$uri" in log_format
    assert not any(word in log_format for word in ("$request ", "$request_uri", "$args", "$query_string", "referer"))
    compose = render.nginx_conf(site, "compose")
    assert f"server orthanc:{site.http_port};" in compose and "listen 0.0.0.0:8443 ssl http2;" in compose


def test_an_http_localhost_deployment_has_no_tls(tmp_path: Path) -> None:
    site = make_site(tmp_path, public_url="http://localhost:8080")
    conf = render.nginx_conf(site)
    assert "listen 127.0.0.1:8080;" in conf and "ssl_certificate" not in conf
    assert 'proto=http";' in conf


def test_deployment_files(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    root = tmp_path / "site"
    orthanc_unit = deploy.orthanc_unit(site)
    assert f"ExecStart=/usr/sbin/Orthanc {root}/orthanc/orthanc.json" in orthanc_unit
    assert "User=orthanc" in orthanc_unit and f"ReadWritePaths={root}/storage" in orthanc_unit
    assert "EnvironmentFile=/etc/provision/provision-demo-pr-7.env" in orthanc_unit
    nginx_unit = deploy.nginx_unit(site)
    assert f"-c {root}/nginx/nginx.conf" in nginx_unit and 'user www-data;"' in nginx_unit
    assert "KillSignal=SIGQUIT" in nginx_unit and "ExecReload=/bin/kill -HUP $MAINPID" in nginx_unit
    compose = YAML(typ="safe").load(deploy.compose_file(site))
    assert compose["name"] == "provision-demo-pr-7"
    orthanc, nginx = compose["services"]["orthanc"], compose["services"]["nginx"]
    assert deploy.ORTHANC_IMAGE in orthanc["build"]["dockerfile_inline"]
    assert "pyjwt" in orthanc["build"]["dockerfile_inline"]
    assert orthanc["entrypoint"] == ["Orthanc", f"{root}/deploy/compose/orthanc.json"]
    assert orthanc["environment"] == {"PROVISION_SHARE_KEY": "${PROVISION_SHARE_KEY:?set the share signing key}"}
    assert f"{root}:{root}:ro" in orthanc["volumes"] and f"{root}/storage:{root}/storage" in orthanc["volumes"]
    assert nginx["image"] == deploy.NGINX_IMAGE and nginx["ports"] == ["0.0.0.0:443:443"]
    assert nginx["command"][:5] == ["nginx", "-p", f"{root}/nginx", "-c", f"{root}/deploy/compose/nginx.conf"]


def test_rendering_is_pure_and_never_holds_a_secret(tmp_path: Path) -> None:
    first, second = every_file(make_site(tmp_path)), every_file(make_site(tmp_path))
    assert first == second
    for name, text in first.items():
        assert PASSWORD not in text and SIGNING_KEY not in text, name


def test_the_real_nginx_accepts_the_configuration(tmp_path: Path) -> None:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    assert Path(nginx).is_file(), "nginx is not installed: run scripts/install-system-deps.sh"
    site = make_site(tmp_path, "  listen: 127.0.0.1:8443\n")
    ca, ca_key = tls.new_ca("test")
    chain, key = tls.issue(ca, ca_key, tls.server_names(site.host))
    assert site.certificate is not None and site.certificate_key is not None
    site.certificate.parent.mkdir(parents=True)
    site.certificate.write_bytes(chain)
    site.certificate_key.write_bytes(key)
    for directory in (site.layout.logs_dir, site.layout.run_dir, site.layout.tmp_dir, site.layout.root / "nginx"):
        directory.mkdir(parents=True, exist_ok=True)
    site.layout.nginx_conf.write_text(render.nginx_conf(site))
    done = subprocess.run([nginx, "-t", "-p", str(site.layout.root / "nginx"), "-c", str(site.layout.nginx_conf),
                           "-e", "stderr", "-g", "daemon off;"], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert "syntax is ok" in done.stderr


def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None, "systemd-analyze is not installed: run scripts/install-system-deps.sh"
    site = make_site(tmp_path)
    units = []
    for name, text in (("orthanc.service", deploy.orthanc_unit(site)), ("nginx.service", deploy.nginx_unit(site))):
        unit = tmp_path / f"{site.unit_prefix}-{name}"
        unit.write_text(text)
        units.append(str(unit))
    done = subprocess.run([analyze, "verify", "--man=no", *units], capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0 and site.unit_prefix not in done.stderr, done.stderr


@pytest.mark.parametrize(("names", "host", "covered"), [
    (("viewer.example.org",), "viewer.example.org", True),
    (("*.example.org",), "viewer.example.org", True),
    (("*.example.org",), "a.b.example.org", False),
    (("*.example.org",), "example.org", False),
    (("localhost", "127.0.0.1"), "127.0.0.1", True),
    (("other.org",), "viewer.example.org", False),
])
def test_certificate_names(names: tuple[str, ...], host: str, covered: bool) -> None:
    assert tls.covers(names, host) is covered
