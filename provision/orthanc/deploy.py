"""How a production host runs the rendered configuration, rendered from the same plan (pure functions):

- two systemd units (`deploy/systemd/`): Orthanc as Debian's `orthanc` user with the signing key from an
  `EnvironmentFile` that the administrator writes (provision never writes a secret), and nginx (master as root
  for port 443 and the TLS key, workers as `www-data`);
- a docker-compose file (`deploy/docker-compose.yaml`) using the public orthancteam/orthanc image (with PyJWT
  added) and nginx's, plus its own `orthanc.json` and `nginx.conf` (`deploy/compose/`), which differ from the
  host ones only where containers differ: plugin paths, Orthanc reachable from the nginx container, nginx
  proxying to the `orthanc` service. The target directory is mounted at the same path in the containers, so
  every other path in the files holds there too.

`provision orthanc up` is the third way, for development and tests: the same host files, run from the shell.
"""

from __future__ import annotations

import json
from pathlib import Path

from provision.orthanc.render import GENERATED
from provision.orthanc.site import Site

#: the images of the compose alternative (pinned: the same plan renders the same file)
ORTHANC_IMAGE = "orthancteam/orthanc:25.2.0"
NGINX_IMAGE = "nginx:1.27"
ORTHANC_BINARY = "/usr/sbin/Orthanc"
NGINX_BINARY = "/usr/sbin/nginx"


def environment_file(site: Site) -> Path:
    """Where the systemd unit reads the signing key from (written by the administrator, mode 0600)."""
    return Path("/etc/provision") / f"{site.unit_prefix}.env"


def orthanc_unit(site: Site) -> str:
    layout = site.layout
    return f"""# {GENERATED}
# Install: sudo cp {layout.deploy_dir}/systemd/{site.unit_prefix}-orthanc.service /etc/systemd/system/
#          sudo systemctl daemon-reload && sudo systemctl enable --now {site.unit_prefix}-orthanc
[Unit]
Description=Orthanc with share links (provision plan {site.plan_name}, environment {site.env})
After=network.target

[Service]
Type=simple
User=orthanc
Group=orthanc
# {site.signing_key_env}=<the share signing key>, in a file only root can read; the plan only names the variable
EnvironmentFile={environment_file(site)}
ExecStart={ORTHANC_BINARY} {layout.orthanc_json}
Restart=on-failure
TimeoutStopSec=30
NoNewPrivileges=true
PrivateTmp=true
ProtectSystem=strict
ProtectHome=read-only
ReadWritePaths={layout.storage}

[Install]
WantedBy=multi-user.target
"""


def nginx_unit(site: Site) -> str:
    layout = site.layout
    arguments = f"-p {layout.root}/nginx -c {layout.nginx_conf} -e stderr -g \"daemon off; user www-data;\""
    return f"""# {GENERATED}
# Install: sudo cp {layout.deploy_dir}/systemd/{site.unit_prefix}-nginx.service /etc/systemd/system/
#          sudo systemctl daemon-reload && sudo systemctl enable --now {site.unit_prefix}-nginx
[Unit]
Description=nginx in front of Orthanc and OHIF (provision plan {site.plan_name}, environment {site.env})
After=network.target {site.unit_prefix}-orthanc.service
Wants={site.unit_prefix}-orthanc.service

[Service]
Type=simple
ExecStartPre={NGINX_BINARY} -t -q {arguments}
ExecStart={NGINX_BINARY} {arguments}
ExecReload=/bin/kill -HUP $MAINPID
KillSignal=SIGQUIT
TimeoutStopSec=10
Restart=on-failure

[Install]
WantedBy=multi-user.target
"""


def compose_file(site: Site) -> str:
    layout = site.layout
    compose = layout.deploy_dir / "compose"
    address, _, port = site.listen.rpartition(":")
    nginx_mounts = [f"{layout.root}:{layout.root}"]
    for outside in (site.dist, site.certificate, site.certificate_key):
        if outside is not None and not outside.is_relative_to(layout.root):
            nginx_mounts.append(f"{outside}:{outside}:ro")
    orthanc_mounts = [f"{layout.root}:{layout.root}:ro", f"{layout.storage}:{layout.storage}"]

    def items(values: list[str], indent: int = 6) -> str:
        return "\n".join(" " * indent + "- " + json.dumps(value) for value in values)

    dockerfile = (f"FROM {ORTHANC_IMAGE}\n"
                  'RUN pip install --no-cache-dir --break-system-packages "pyjwt>=2.6,<3"\n')
    entrypoint = json.dumps(["Orthanc", str(compose / "orthanc.json")])
    command = json.dumps(["nginx", "-p", f"{layout.root}/nginx", "-c", str(compose / "nginx.conf"), "-e", "stderr",
                          "-g", "daemon off;"])
    return f"""# {GENERATED}
# The same deployment in containers, instead of the systemd units:
#   {site.signing_key_env}=... docker compose -f {layout.deploy_dir}/docker-compose.yaml up -d
# The target directory is mounted at the same path inside the containers, so the rendered paths hold there.
name: {json.dumps(site.unit_prefix)}
services:
  orthanc:
    build:
      context: {json.dumps(str(layout.deploy_dir))}
      dockerfile_inline: {json.dumps(dockerfile)}
    entrypoint: {entrypoint}
    environment:
      {site.signing_key_env}: "${{{site.signing_key_env}:?set the share signing key}}"
    volumes:
{items(orthanc_mounts)}
    restart: unless-stopped
  nginx:
    image: {json.dumps(NGINX_IMAGE)}
    command: {command}
    ports:
      - {json.dumps(f"{address.strip('[]')}:{port}:{port}")}
    volumes:
{items(nginx_mounts)}
    depends_on:
      - orthanc
    restart: unless-stopped
"""
