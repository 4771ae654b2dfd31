"""`open_session(plan, connection)`: the target directory's files as resources, and the OHIF configuration.

Everything is validated before a resource exists (the plan, the admin password in the environment), so bad
input never writes a file. The Orthanc target calls no cloud: `connection` only matters to the commands that
reach the running deployment (its `--ca-bundle`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources as package_files
from pathlib import Path
from typing import Any

from provision.core import Resource
from provision.core.target import Connection, OhifResult, PlanView, section_of
from provision.ohif import build
from provision.ohif import config as ohif_config
from provision.orthanc import credentials, deploy, render, sharetoken
from provision.orthanc.plan import OrthancSection
from provision.orthanc.resources import (
    DocumentFile,
    GivenCertificate,
    GivenDist,
    LocalCa,
    OhifBuild,
    ServerCertificate,
    TextFile,
    json_text,
)
from provision.orthanc.site import Site, admin_salt, site_of
from provision.orthanc.stack import refuse_while_running
from provision.plan import locate

APP_CONFIG_PREFIX = "window.config = "


def parse_app_config(text: str) -> Any:
    """The `window.config` object of an `app-config.js` that `render_app_config_js` wrote."""
    start = text.find(APP_CONFIG_PREFIX)
    if start < 0:
        raise ValueError(f"no '{APP_CONFIG_PREFIX.strip()}' in the file")
    # the object only: what follows it (a comment added by hand) is not a value
    return json.JSONDecoder().raw_decode(text, start + len(APP_CONFIG_PREFIX))[0]


@dataclass(frozen=True)
class Deployment:
    """The plan's `orthanc:` section with what derives from it; the admin password stays in memory only."""

    plan: PlanView
    section: OrthancSection
    site: Site
    admin_password: str

    def where(self, key: str) -> str:
        """`FILE:LINE:COL orthanc.KEY` for errors about a field of the section."""
        return locate(self.plan.source, ("orthanc", *key.split(".")))


def deployment(plan: PlanView, *, admin: bool = True, cwd: Path | None = None) -> Deployment:
    """The deployment of `plan`; `admin=False` for commands that only need its paths (no password read, no hash
    rendered)."""
    section = section_of(plan, "orthanc", OrthancSection)
    password = admin_hash = ""
    if admin:
        password = credentials.admin_password(plan, section)
        admin_hash = sharetoken.hash_password(password, admin_salt(plan.name, plan.env, section.admin.user))
    site = site_of(plan.name, plan.env, section, admin_hash=admin_hash, data_source_name=plan.ohif.data_source_name,
                   friendly_name=plan.ohif.friendly_name, cwd=cwd or Path.cwd())
    return Deployment(plan, section, site, password)


def _source(name: str) -> str:
    return package_files.files("provision.orthanc").joinpath(name).read_text(encoding="utf-8")


def _fetch(version: str, progress: Any) -> Path:
    return build.ohif_dist(version, progress=progress)


def build_resources(current: Deployment) -> list[Resource]:
    site = current.site
    layout = site.layout
    root = layout.root

    def guard() -> None:
        refuse_while_running(layout)

    def address(path: Path) -> str:
        return f"orthanc.file[{path.relative_to(root)}]"

    def text(path: Path, content: str, mode: int = 0o644) -> TextFile:
        return TextFile(address(path), path, root, content, mode=mode, guard=guard)

    def document(path: Path, content: dict[str, Any], *, mode: int = 0o644, js: bool = False) -> DocumentFile:
        return DocumentFile(address(path), path, root, content,
                            render=ohif_config.render_app_config_js if js else json_text,
                            parse=parse_app_config if js else json.loads, mode=mode,
                            sensitive=() if js else (f"{render.SHARES_SECTION}.Admins",), guard=guard)

    systemd = layout.deploy_dir / "systemd"
    compose = layout.deploy_dir / "compose"
    resources: list[Resource] = [
        document(layout.orthanc_json, render.orthanc_json(site), mode=0o600),
        text(layout.filter_script, _source("orthanc_filter.py")),
        text(layout.token_module, _source("sharetoken.py")),
        text(layout.nginx_conf, render.nginx_conf(site)),
        document(layout.app_config, render.app_config(site), js=True),
        text(systemd / f"{site.unit_prefix}-orthanc.service", deploy.orthanc_unit(site)),
        text(systemd / f"{site.unit_prefix}-nginx.service", deploy.nginx_unit(site)),
        text(layout.deploy_dir / "docker-compose.yaml", deploy.compose_file(site)),
        document(compose / "orthanc.json", render.orthanc_json(site, "compose"), mode=0o600),
        text(compose / "nginx.conf", render.nginx_conf(site, "compose")),
    ]
    tls = current.section.tls
    if tls is not None and tls.local_ca:
        ca = LocalCa(layout.tls_dir, root, f"{site.plan_name}/{site.env}", guard)
        assert site.certificate is not None and site.certificate_key is not None
        resources += [ca, ServerCertificate(site.certificate, site.certificate_key, ca, site.host, root, guard)]
    elif site.certificate is not None and site.certificate_key is not None:
        resources.append(GivenCertificate(site.certificate, site.certificate_key, site.host, current.where("tls")))
    if current.section.viewer.dist is None:
        resources.append(OhifBuild(site.dist, site.ohif_version, root, _fetch, guard))
    else:
        resources.append(GivenDist(site.dist))
    return resources


class OrthancSession:
    """Implements `provision.core.target.TargetSession` for the self-hosted target."""

    def __init__(self, current: Deployment) -> None:
        self.current = current
        self.resources = build_resources(current)

    def ohif(self, outputs: Mapping[str, Mapping[str, Any]]) -> OhifResult:
        site = self.current.site
        notes = [
            f"Configuration in {site.layout.root}; the viewer is served from it, with this app-config.js.",
            "Run it: `provision orthanc up PLAN` (or the systemd units / docker-compose file in deploy/).",
            "Share a study: `provision orthanc share PLAN --study <StudyInstanceUID>`.",
        ]
        return OhifResult(render.ohif_document(site), viewer_url=site.public_url, notes=notes,
                          app_config=render.app_config(site))

    async def aclose(self) -> None:
        pass


async def open_session(plan: PlanView, connection: Connection) -> OrthancSession:
    return OrthancSession(deployment(plan))


__all__ = ["Deployment", "OrthancSession", "build_resources", "deployment", "open_session", "parse_app_config"]
