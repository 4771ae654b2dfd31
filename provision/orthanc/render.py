"""The configuration files of the self-hosted target, as pure functions of a `Site`.

- `orthanc_json`: Orthanc with the DICOMweb and python plugins, the share filter as `PythonScript`, Orthanc's
  own Basic check off (the filter authenticates), HTTP on the loopback only;
- `nginx_conf`: one HTTPS server: OHIF's SPA (with `index.html` fallback) under cross-origin isolation
  (COOP/COEP/CORP), the DICOMweb root proxied to Orthanc with the `Forwarded` header its plugin needs, CORS for
  the allowed origins with preflights answered by nginx, and an access log without query strings;
- `app_config`: OHIF's `window.config` with one data source at the proxied DICOMweb root (same origin).

`runtime="compose"` renders the same deployment for the docker-compose alternative (`deploy.py`): the
orthancteam image's plugin paths, Orthanc reachable from the nginx container, nginx proxying to `orthanc`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from provision.dicom.orthanc_config import OrthancSettings, orthanc_config
from provision.ohif import config as ohif
from provision.orthanc.site import DEBIAN_PLUGINS, DICOMWEB_PLUGIN, PYTHON_PLUGIN, Site

Runtime = Literal["host", "compose"]
#: where the orthancteam/orthanc image keeps its plugins
IMAGE_PLUGINS = "/usr/share/orthanc/plugins-available"
#: the orthanc-python script's configuration section (read by orthanc_filter.py)
SHARES_SECTION = "ProvisionShares"
GENERATED = "Written by provision (orthanc target). Edit the plan and run `provision orthanc apply`, not this file."


def orthanc_settings(site: Site, runtime: Runtime = "host", *, admin_password: str = "") -> OrthancSettings:
    """The Orthanc of `site`. The admin password is only for clients (`provision.dicom.Orthanc`): the
    configuration holds its hash, read by the share filter."""
    plugin_dir = DEBIAN_PLUGINS if runtime == "host" else Path(IMAGE_PLUGINS)
    return OrthancSettings(
        storage_dir=site.layout.storage,
        http_port=site.http_port,
        plugins=(plugin_dir / DICOMWEB_PLUGIN, plugin_dir / PYTHON_PLUGIN),
        username=site.admin_user,
        password=admin_password,
        name=site.instance_name,
        # compose: nginx runs in another container; the port is published nowhere, and the filter guards it
        remote_access=runtime == "compose",
        stable_age=60,
        dicomweb_root=site.dicomweb_root,
        wado_uri=False,
        python_script=site.layout.filter_script,
        extra={
            SHARES_SECTION: {
                "SigningKeyEnv": site.signing_key_env,
                "RevocationFile": str(site.layout.revocations),
                "Admins": {site.admin_user: site.admin_hash},
                "Root": site.dicomweb_root,
                "LogRefusals": True,
            }
        },
    )


def orthanc_json(site: Site, runtime: Runtime = "host") -> dict[str, Any]:
    return orthanc_config(orthanc_settings(site, runtime))


def ohif_document(site: Site) -> dict[str, Any]:
    """`ohif.json`: one DICOMweb data source at the public DICOMweb root, no sign-in (share links carry tokens)."""
    source = ohif.dicomweb_source(
        source_name=site.data_source_name, friendly_name=site.friendly_name, root=site.dicomweb_url,
        extra={"dicomUploadEnabled": False, "supportsStow": False},
    )
    return ohif.ohif_document([], [source])


def app_config(site: Site) -> dict[str, Any]:
    """`window.config`: share links open `/viewer?StudyInstanceUIDs=...&token=...`; there is no study list (its
    search would be refused for a share token, and nothing else signs in)."""
    config = ohif.app_config(ohif_document(site), viewer_url=site.public_url)
    config.update(showStudyList=False, showWarningMessageForCrossOrigin=False)
    return config


def app_config_js(site: Site) -> str:
    return ohif.render_app_config_js(app_config(site))


# --- nginx ------------------------------------------------------------------------------------------------------

_ISOLATION = (
    'add_header Cross-Origin-Opener-Policy "same-origin" always;',
    'add_header Cross-Origin-Embedder-Policy "require-corp" always;',
    'add_header Cross-Origin-Resource-Policy "same-origin" always;',
)
_COMMON = (
    # share links carry their token in the URL: never send the URL on as a Referer
    'add_header Referrer-Policy "no-referrer" always;',
    'add_header X-Content-Type-Options "nosniff" always;',
)
_CORS = (
    "add_header Access-Control-Allow-Origin $cors_origin always;",
    'add_header Vary "Origin" always;',
    # readable by the allowed viewers on other origins, which run under COEP require-corp themselves
    'add_header Cross-Origin-Resource-Policy "cross-origin" always;',
)


def _lines(indent: int, lines: tuple[str, ...] | list[str]) -> str:
    return "\n".join(" " * indent + line for line in lines)


def nginx_conf(site: Site, runtime: Runtime = "host") -> str:
    layout = site.layout
    upstream = f"127.0.0.1:{site.http_port}" if runtime == "host" else f"orthanc:{site.http_port}"
    listen = site.listen if runtime == "host" else f"0.0.0.0:{site.listen_port}"
    scheme = "https" if site.https else "http"
    origins = _lines(8, [f'"{origin}" $http_origin;' for origin in site.allowed_origins])
    tls = ""
    if site.https:
        tls = f"""
        ssl_certificate {site.certificate};
        ssl_certificate_key {site.certificate_key};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:provision_tls:1m;"""
    viewer_headers = _lines(12, _ISOLATION + _COMMON)
    root = site.dicomweb_root
    return f"""# {GENERATED}
# Run: nginx -p {layout.root}/nginx -c {layout.nginx_conf} -e stderr -g 'daemon off;'
worker_processes auto;
pid {layout.run_dir}/nginx.pid;
error_log {layout.logs_dir}/nginx-error.log warn;

events {{
    worker_connections 1024;
}}

http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    # $uri, not $request: share links carry their token in the query string, which must not reach a log
    log_format provision '$remote_addr [$time_local] "$request_method $uri" $status $body_bytes_sent $request_time';
    access_log {layout.logs_dir}/access.log provision;
    client_body_temp_path {layout.tmp_dir}/client_body;
    proxy_temp_path {layout.tmp_dir}/proxy;
    fastcgi_temp_path {layout.tmp_dir}/fastcgi;
    uwsgi_temp_path {layout.tmp_dir}/uwsgi;
    scgi_temp_path {layout.tmp_dir}/scgi;
    sendfile on;
    server_tokens off;
    gzip on;
    gzip_types application/javascript application/json application/wasm text/css image/svg+xml;

    # the origins allowed to call DICOMweb (CORS); any other origin gets no Access-Control-Allow-Origin
    map $http_origin $cors_origin {{
        default "";
{origins}
    }}

    upstream orthanc {{
        server {upstream};
        keepalive 16;
    }}

    server {{
        listen {listen}{" ssl http2" if site.https else ""};
        server_name {site.host};{tls}
        # uploads (STOW-RS) by the admin have no size limit; set at server level so every location has it
        client_max_body_size 0;

        location {root} {{
            if ($request_method = OPTIONS) {{
                # the preflight an Authorization header always causes: answered here, Orthanc never sees it
                add_header Access-Control-Allow-Origin $cors_origin always;
                add_header Access-Control-Allow-Methods "GET, HEAD, POST, OPTIONS" always;
                add_header Access-Control-Allow-Headers "Authorization, Accept, Content-Type" always;
                add_header Access-Control-Max-Age 600 always;
                add_header Vary "Origin" always;
                return 204;
            }}
            proxy_pass http://orthanc;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            # Orthanc's DICOMweb plugin builds the URLs in its answers from RFC 7239 Forwarded (not X-Forwarded-*);
            # unquoted, since the plugin copies quotes into the URLs
            proxy_set_header Forwarded "host=$http_host;proto={scheme}";
            proxy_read_timeout 300s;
            proxy_request_buffering off;
{_lines(12, _CORS + _COMMON)}
        }}

        location = /app-config.js {{
            alias {layout.app_config};
            add_header Cache-Control "no-store" always;
{viewer_headers}
        }}

        location = /index.html {{
            root {site.dist};
            add_header Cache-Control "no-store" always;
{viewer_headers}
        }}

        # OHIF's single-page app: unknown paths (/viewer, ...) are index.html; Orthanc's REST API is not published
        location / {{
            root {site.dist};
            try_files $uri $uri/ /index.html;
{viewer_headers}
        }}
    }}
}}
"""
