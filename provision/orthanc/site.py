"""What rendering needs, as plain data: where every file lives (`Layout`) and the facts of one deployment (`Site`).

`site_of(plan, section, admin_hash)` is the only place that turns the plan into these facts (relative paths are
resolved against the current directory, like `--out`); every renderer is a pure function of a `Site`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from provision.orthanc.plan import OrthancSection

#: where Debian's packages put the plugins the rendered configuration loads
DEBIAN_PLUGINS = Path("/usr/share/orthanc/plugins")
DICOMWEB_PLUGIN = "libOrthancDicomWeb.so"
PYTHON_PLUGIN = "libOrthancPython.so"


@dataclass(frozen=True)
class Layout:
    """The target directory: what apply writes (configuration), what up/down and share keep (run state)."""

    root: Path
    storage: Path

    @property
    def orthanc_json(self) -> Path:
        return self.root / "orthanc" / "orthanc.json"

    @property
    def python_dir(self) -> Path:
        return self.root / "orthanc" / "python"

    @property
    def filter_script(self) -> Path:
        return self.python_dir / "share_filter.py"

    @property
    def token_module(self) -> Path:
        return self.python_dir / "sharetoken.py"

    @property
    def nginx_conf(self) -> Path:
        return self.root / "nginx" / "nginx.conf"

    @property
    def app_config(self) -> Path:
        return self.root / "viewer" / "app-config.js"

    def dist(self, version: str) -> Path:
        return self.root / "viewer" / f"ohif-{version}"

    @property
    def tls_dir(self) -> Path:
        return self.root / "tls"

    @property
    def deploy_dir(self) -> Path:
        return self.root / "deploy"

    @property
    def shares_dir(self) -> Path:
        return self.root / "shares"

    @property
    def ledger(self) -> Path:
        """The shares issued (ids, studies, dates: never a token)."""
        return self.shares_dir / "issued.jsonl"

    @property
    def revocations(self) -> Path:
        return self.shares_dir / "revoked.txt"

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def tmp_dir(self) -> Path:
        return self.root / "tmp"


@dataclass(frozen=True)
class Site:
    """One deployment, as every renderer sees it."""

    plan_name: str
    env: str
    instance_name: str
    layout: Layout
    #: `scheme://host[:port]`, what the browser uses
    public_url: str
    #: nginx's `listen` address, `ADDRESS:PORT`
    listen: str
    http_port: int
    dicomweb_root: str
    #: the certificate and key nginx serves (None for an http public URL)
    certificate: Path | None
    certificate_key: Path | None
    #: the development CA's certificate (`tls.local_ca`), which clients must trust
    local_ca: Path | None
    ohif_version: str
    #: the OHIF dist directory nginx serves
    dist: Path
    #: other viewers allowed to read the archive (CORS); the public origin is always allowed
    cors_origins: tuple[str, ...]
    admin_user: str
    #: `sharetoken.hash_password(...)` of the admin password
    admin_hash: str
    signing_key_env: str
    data_source_name: str
    friendly_name: str

    @property
    def host(self) -> str:
        return urlsplit(self.public_url).hostname or "localhost"

    @property
    def https(self) -> bool:
        return self.public_url.startswith("https://")

    @property
    def listen_port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])

    @property
    def dicomweb_url(self) -> str:
        """The DICOMweb root as the browser reaches it, without a trailing '/'."""
        return self.public_url + self.dicomweb_root.rstrip("/")

    @property
    def allowed_origins(self) -> tuple[str, ...]:
        return (self.public_url, *[origin for origin in self.cors_origins if origin != self.public_url])

    @property
    def unit_prefix(self) -> str:
        """The systemd unit names' stem, one per plan and environment."""
        return f"provision-{self.plan_name}" + ("" if self.env == "default" else f"-{self.env}")


def admin_salt(plan_name: str, env: str, user: str) -> bytes:
    """The admin hash's salt: fixed per deployment, so that the rendered configuration is the same on every apply
    (a random salt would change the file each time), and different between deployments."""
    return hashlib.sha256(f"provision-orthanc/{plan_name}/{env}/{user}".encode()).digest()[:16]


def site_of(plan_name: str, env: str, section: OrthancSection, *, admin_hash: str, data_source_name: str,
            friendly_name: str, cwd: Path) -> Site:
    root = (cwd / section.directory).resolve()
    storage = (cwd / section.storage).resolve() if section.storage else root / "storage"
    layout = Layout(root=root, storage=storage)
    public_url = section.public_url or ""
    certificate = key = local_ca = None
    if section.tls is not None and section.tls.local_ca:
        certificate, key = layout.tls_dir / "server.pem", layout.tls_dir / "server.key"
        local_ca = layout.tls_dir / "ca.pem"
    elif section.tls is not None and section.tls.certificate and section.tls.key:
        certificate, key = (cwd / section.tls.certificate).resolve(), (cwd / section.tls.key).resolve()
    version = section.viewer.ohif_version
    dist = (cwd / section.viewer.dist).resolve() if section.viewer.dist else layout.dist(version)
    return Site(
        plan_name=plan_name, env=env, instance_name=section.name or plan_name, layout=layout, public_url=public_url,
        listen=section.listen_address(), http_port=section.http_port, dicomweb_root=section.dicomweb_root,
        certificate=certificate, certificate_key=key, local_ca=local_ca, ohif_version=version, dist=dist,
        cors_origins=tuple(section.cors_origins), admin_user=section.admin.user, admin_hash=admin_hash,
        signing_key_env=section.shares.signing_key_env, data_source_name=data_source_name,
        friendly_name=friendly_name,
    )
