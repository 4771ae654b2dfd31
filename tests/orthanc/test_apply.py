"""`provision orthanc plan | apply | destroy | output` on real files: a second apply changes nothing, a hand edit
is drift shown field by field (JSON) or line by line (text), bad input writes nothing, destroy keeps the data."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from orthanc_stack import ADMIN_PASSWORD, SIGNING_KEY, Deployment


def plan(site: Deployment, *args: str) -> tuple[int, str]:
    result = site.provision("orthanc", "plan", str(site.plan), "--detailed-exitcode", *args)
    return result.exit_code, result.output


def test_apply_twice_changes_nothing_the_second_time(deployment: Deployment) -> None:
    site = deployment
    code, out = plan(site)
    assert code == 2 and "Plan: 13 to create" in out, out
    out = site.ok("orthanc", "apply", str(site.plan), "--auto-approve")
    assert "Apply complete: 13 created." in out
    root = site.root
    for path in ("orthanc/orthanc.json", "orthanc/python/share_filter.py", "orthanc/python/sharetoken.py",
                 "nginx/nginx.conf", "viewer/app-config.js", "viewer/ohif-3.13.2/index.html", "tls/ca.pem",
                 "tls/server.pem", "deploy/docker-compose.yaml", "deploy/systemd/provision-share-test-nginx.service"):
        assert (root / path).is_file(), path
    assert (root / "orthanc/orthanc.json").stat().st_mode & 0o777 == 0o600
    assert (root / "tls/server.key").stat().st_mode & 0o777 == 0o600
    # the filter's module is provision's own, byte for byte
    from provision.orthanc import sharetoken

    assert (root / "orthanc/python/sharetoken.py").read_text() == Path(sharetoken.__file__).read_text()
    # the served app-config.js is the one written to provision-out/orthanc/
    served = (root / "viewer/app-config.js").read_text()
    assert (site.workdir / "provision-out/orthanc/app-config.js").read_text() == served
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file() and "ohif-3.13.2" not in p.parts}
    assert plan(site)[0] == 0
    assert "No changes" in site.ok("orthanc", "apply", str(site.plan), "--auto-approve")
    after = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file() and "ohif-3.13.2" not in p.parts}
    assert before == after  # nothing rewritten


def test_hand_edits_are_drift_and_apply_puts_them_back(deployment: Deployment) -> None:
    site = deployment
    site.ok("orthanc", "apply", str(site.plan), "--auto-approve")
    root = site.root
    nginx = root / "nginx/nginx.conf"
    nginx.write_text(nginx.read_text().replace("worker_connections 1024;", "worker_connections 16;"))
    config_path = root / "orthanc/orthanc.json"
    config = json.loads(config_path.read_text())
    config["HttpPort"] = 9999
    config["RemoteAccessAllowed"] = True
    config["LuaScripts"] = ["/tmp/evil.lua"]
    config["RegisteredUsers"] = {"someone": "x"}
    config_path.write_text(json.dumps(config))
    app_config = root / "viewer/app-config.js"
    app_config.write_text(app_config.read_text() + "// a comment\n")
    (root / "deploy/docker-compose.yaml").unlink()
    os.chmod(root / "tls/server.key", 0o644)
    code, out = plan(site)
    assert code == 2
    # text: the changed lines only
    assert "-    worker_connections 16;" in out and "+    worker_connections 1024;" in out
    assert out.count("worker_processes auto;") == 0
    # JSON: key by key, keys added by hand named
    assert f"document.HttpPort: 9999 -> {site.http_port}" in out
    assert "document.RemoteAccessAllowed: true -> false" in out
    assert 'document.LuaScripts: ["/tmp/evil.lua"] -> []' in out
    assert 'unexpected_keys: ["RegisteredUsers.someone"] -> []' in out
    assert 'formatting: "edited by hand (no value changed)" -> "as rendered"' in out
    assert re.search(r"\+ orthanc.file\[deploy/docker-compose.yaml\]\s+create", out)
    assert "orthanc.file[orthanc/python/share_filter.py]" in out and "Plan: 1 to create, 3 to update" in out
    site.ok("orthanc", "apply", str(site.plan), "--auto-approve")
    assert plan(site)[0] == 0
    assert json.loads(config_path.read_text())["HttpPort"] == site.http_port


def test_key_permissions_and_certificates_are_reconciled(deployment: Deployment) -> None:
    site = deployment
    site.ok("orthanc", "apply", str(site.plan), "--auto-approve")
    os.chmod(site.root / "orthanc/orthanc.json", 0o644)
    code, out = plan(site)
    assert code == 2 and 'mode: "0644" -> "0600"' in out
    ca_before = (site.root / "tls/ca.pem").read_bytes()
    # another host: the server certificate is issued again by the same CA (a browser trusting it keeps working)
    site.plan.write_text(site.plan.read_text().replace("https://localhost:", "https://viewer.test:"))
    code, out = plan(site)
    assert code == 2 and "orthanc.tls_certificate  update" in out
    assert 'names: ["127.0.0.1", "localhost"] -> ["viewer.test"]' in out
    site.ok("orthanc", "apply", str(site.plan), "--auto-approve")
    assert (site.root / "tls/ca.pem").read_bytes() == ca_before
    assert plan(site)[0] == 0


def test_a_changed_plan_shows_field_level_changes(deployment: Deployment) -> None:
    site = deployment
    site.ok("orthanc", "apply", str(site.plan), "--auto-approve")
    site.plan.write_text(site.plan.read_text().replace("cors_origins: [https://viewer.example.org]",
                                                       "cors_origins: [https://viewer.example.org, https://b.org]"))
    code, out = plan(site)
    assert code == 2
    assert '+        "https://b.org" $http_origin;' in out
    assert "orthanc.file[orthanc/orthanc.json]  no-op" in out


def test_missing_admin_password_is_refused_before_anything_is_written(deployment: Deployment) -> None:
    site = deployment
    site.env.pop("ORTHANC_ADMIN_PASSWORD")
    result = site.provision("orthanc", "apply", str(site.plan), "--auto-approve")
    assert result.exit_code == 1
    assert f"{site.plan}:5:1 orthanc.admin.password_env: the environment variable ORTHANC_ADMIN_PASSWORD" \
        in result.output
    assert "Traceback" not in result.output and not site.root.exists()
    site.env["ORTHANC_ADMIN_PASSWORD"] = "short"
    result = site.provision("orthanc", "plan", str(site.plan))
    assert result.exit_code == 1 and "at least 12 are needed" in result.output


def test_a_bad_plan_is_located_and_writes_nothing(deployment: Deployment) -> None:
    site = deployment
    site.plan.write_text(site.plan.read_text().replace("https://localhost:", "http://viewer.example.org:"))
    result = site.provision("orthanc", "apply", str(site.plan), "--auto-approve")
    assert result.exit_code == 1
    assert f"{site.plan}:7:15 orthanc.public_url: 'http://viewer.example.org:" in result.output
    assert "no secure context" in result.output and not site.root.exists()


def test_output_and_destroy(deployment: Deployment) -> None:
    site = deployment
    site.ok("orthanc", "apply", str(site.plan), "--auto-approve")
    document = json.loads(site.ok("orthanc", "output", str(site.plan)))
    assert document["dataSources"][0]["configuration"]["qidoRoot"] == f"{site.url}/dicom-web"
    (site.root / "storage").mkdir()
    (site.root / "storage" / "index").write_text("data")
    (site.root / "shares").mkdir()
    (site.root / "shares" / "revoked.txt").write_text("abc\n")
    out = site.ok("orthanc", "destroy", str(site.plan), "--auto-approve")
    assert "Destroy complete: 13 deleted." in out
    left = sorted(str(p.relative_to(site.root)) for p in site.root.rglob("*"))
    assert left == ["shares", "shares/revoked.txt", "storage", "storage/index"]  # data and revocations stay
    assert "Nothing to destroy" in site.ok("orthanc", "destroy", str(site.plan), "--auto-approve")


def test_no_secret_in_any_file_or_output(deployment: Deployment) -> None:
    site = deployment
    outputs = [site.ok("orthanc", "apply", str(site.plan), "--auto-approve"),
               site.ok("orthanc", "plan", str(site.plan), "--output", "json")]
    for path in site.workdir.rglob("*"):
        if path.is_file() and "ohif-3.13.2" not in path.parts:
            outputs.append(path.read_text(errors="replace"))
    for text in outputs:
        assert ADMIN_PASSWORD not in text and SIGNING_KEY not in text


def test_a_given_certificate_and_build_are_checked_never_written(deployment: Deployment, tmp_path: Path) -> None:
    from orthanc_stack import OHIF_CACHE

    from provision.orthanc import tls

    site = deployment
    ca, ca_key = tls.new_ca("given")
    chain, key = tls.issue(ca, ca_key, ("localhost",))
    certificate, key_file = tmp_path / "given.pem", tmp_path / "given.key"
    certificate.write_bytes(chain)
    key_file.write_bytes(key)
    dist = OHIF_CACHE / "app-3.13.2" / "dist"
    given = f"    certificate: {certificate}\n    key: {key_file}\n"
    text = site.plan.read_text().replace("    local_ca: true\n", given)
    site.plan.write_text(text + f"  viewer: {{dist: {dist}}}\n")
    code, out = plan(site)
    assert code == 2 and "= orthanc.tls_certificate  no-op (not managed by this plan)" in out, out
    assert f"= orthanc.ohif_build ({dist})  no-op (not managed by this plan)" in out
    out = site.ok("orthanc", "apply", str(site.plan), "--auto-approve")
    assert "Apply complete: 10 created." in out  # the files; not the certificate nor the build
    nginx = (site.root / "nginx/nginx.conf").read_text()
    assert f"ssl_certificate {certificate};" in nginx and f"root {dist};" in nginx
    assert not (site.root / "tls").exists() and not (site.root / "viewer/ohif-3.13.2").exists()
    assert certificate.read_bytes() == chain  # never touched
    # a certificate for another host, or a missing build, stop the plan with the file named
    other, other_key = tls.issue(ca, ca_key, ("other.example.org",))
    certificate.write_bytes(other)
    key_file.write_bytes(other_key)
    result = site.provision("orthanc", "plan", str(site.plan))
    assert result.exit_code == 1 and f"{certificate} is for other.example.org, not localhost" in result.output
    certificate.write_bytes(chain)  # the right certificate, another key
    result = site.provision("orthanc", "plan", str(site.plan))
    assert result.exit_code == 1 and f"{key_file} is not the private key of {certificate}" in result.output
    assert f"{site.plan}:" in result.output and "orthanc.tls" in result.output
    key_file.write_bytes(key)
    site.plan.write_text(site.plan.read_text().replace(f"dist: {dist}", f"dist: {tmp_path / 'no-build'}"))
    result = site.provision("orthanc", "plan", str(site.plan))
    assert result.exit_code == 1 and "does not exist and the plan does not create it" in result.output
    assert site.provision("orthanc", "destroy", str(site.plan), "--auto-approve").exit_code == 0
    assert certificate.is_file() and (dist / "index.html").is_file()  # destroy leaves what the plan only names


def test_an_http_deployment_on_localhost_has_no_tls(deployment: Deployment) -> None:
    site = deployment
    site.plan.write_text(site.plan.read_text().replace("https://localhost", "http://localhost")
                         .replace("  tls:\n    local_ca: true\n", ""))
    out = site.ok("orthanc", "apply", str(site.plan), "--auto-approve")
    assert "Apply complete: 11 created." in out
    nginx = (site.root / "nginx/nginx.conf").read_text()
    assert f"listen 127.0.0.1:{site.https_port};" in nginx and "ssl_certificate" not in nginx


def test_a_saved_plan_applies_as_reviewed_and_is_refused_after_a_hand_edit(deployment: Deployment) -> None:
    """`plan --save` then `apply FILE` for a target of files: a file edited in between refuses the apply."""
    site = deployment
    saved = site.workdir / "orthanc-plan.json"
    assert "Saved the plan to" in site.ok("orthanc", "plan", str(site.plan), "--save", str(saved))
    assert "Apply complete: 13 created." in site.ok("orthanc", "apply", str(saved))
    site.ok("orthanc", "plan", str(site.plan), "--save", str(saved))  # nothing to do: saved as such
    nginx = site.root / "nginx/nginx.conf"
    nginx.write_text(nginx.read_text().replace("worker_connections 1024;", "worker_connections 16;"))
    result = site.provision("orthanc", "apply", str(saved))
    assert result.exit_code == 1 and "nginx.conf]: was to no-op, now would update" in result.output, result.output
    assert "worker_connections 16;" in nginx.read_text()  # refused: nothing written
