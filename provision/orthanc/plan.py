"""The plan's `orthanc:` section: a self-hosted Orthanc and the OHIF build behind one nginx, with share links.

Secrets never appear in the plan: it names the environment variables that hold the admin password and the
share signing key (`admin.password_env`, `shares.signing_key_env`), which are read only by the commands that
need them (`up`, `share`, `verify`).
"""

from __future__ import annotations

import re
from typing import Annotated, Self
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from provision.core.durations import parse_duration
from provision.plan import validators as v
from provision.plan.base import Loc, Model, OhifSection, Rule, Section, fail

__all__ = ["OrthancAdmin", "OrthancSection", "OrthancShares", "OrthancTls", "OrthancViewer"]

ENV_VAR_RE = r"^[A-Za-z_][A-Za-z0-9_]*$"
ADMIN_USER_RE = r"^[A-Za-z0-9._-]{1,64}$"
INSTANCE_NAME_RE = r"^[A-Za-z0-9 ._-]{1,64}$"
DICOMWEB_ROOT_RE = r"^/[a-z0-9][a-z0-9-]*/$"
OHIF_VERSION_RE = r"^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$"
LISTEN_RE = r"^(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3}|\[[0-9A-Fa-f:]+\]):[0-9]{1,5}$"
#: paths the viewer itself serves: the DICOMweb root must not shadow them
VIEWER_PATHS = frozenset({"/viewer/", "/assets/", "/ort/", "/callback/"})


def check_public_url(value: str) -> str:
    """Accept the origin the browser uses (`https://host[:port]`; `http` only on localhost), without a path."""
    scheme, host, _ = v.split_http_url(value, "public URL")
    if scheme == "http" and host not in v.LOCAL_HTTP_HOSTS:
        raise ValueError(f"{value!r} must use https: off localhost a browser gives OHIF no secure context over "
                         "http (no SharedArrayBuffer, so the viewer stops with 'SharedArrayBuffer is not defined')")
    parts = urlsplit(value)
    if parts.path not in ("", "/") or parts.query or parts.fragment or value.endswith(("?", "#")):
        raise ValueError(f"{value!r} must be an origin (scheme://host[:port]) without a path: the viewer is "
                         "served at its root")
    return v.origin_of(value)


def check_viewer_origin(value: str) -> str:
    """Accept another viewer's origin allowed to read this archive (https, or http on localhost; no `*`)."""
    if value == "*":
        raise ValueError("'*' would let any web site read shared studies with a token: list the viewers' origins")
    v.check_cors_origin(value)
    scheme, host, _ = v.split_http_url(value, "origin")
    if scheme == "http" and host not in v.LOCAL_HTTP_HOSTS:
        raise ValueError(f"{value!r} must use https (http only on localhost and 127.0.0.1)")
    return v.origin_of(value)


def check_duration(value: str) -> str:
    if parse_duration(value) <= 0:
        raise ValueError(f"{value!r} must be longer than 0s")
    return value


def _pattern(pattern: str, expected: str) -> Rule:
    def check(value: str) -> str:
        if re.fullmatch(pattern, value) is None:
            raise ValueError(f"{value!r} must be {expected}")
        return value

    return Rule(check, pattern)


EnvVarName = Annotated[str, _pattern(ENV_VAR_RE, "an environment variable name (letters, digits, '_')")]
AdminUser = Annotated[str, _pattern(ADMIN_USER_RE, "1-64 letters, digits, '.', '_' or '-'")]
InstanceName = Annotated[str, _pattern(INSTANCE_NAME_RE, "1-64 letters, digits, spaces, '.', '_' or '-'")]
DicomwebRoot = Annotated[str, _pattern(DICOMWEB_ROOT_RE, "one path segment between slashes, e.g. /dicom-web/")]
OhifVersion = Annotated[str, _pattern(OHIF_VERSION_RE, "an exact @ohif/app version such as 3.13.2")]
ListenAddress = Annotated[str, _pattern(LISTEN_RE, "ADDRESS:PORT, e.g. 0.0.0.0:443 or [::]:443")]
PublicUrl = Annotated[str, Rule(check_public_url, format="uri")]
ViewerOrigin = Annotated[str, Rule(check_viewer_origin, v.CORS_ORIGIN_RE)]
Duration = Annotated[str, Rule(check_duration, r"^([0-9]+(\.[0-9]+)?[smhdw])+$")]


class OrthancAdmin(Model):
    """The admin account: uploads, `share` and `verify` use it; its password is never written anywhere."""

    user: AdminUser = "admin"
    password_env: EnvVarName = Field(
        default="ORTHANC_ADMIN_PASSWORD",
        description="Environment variable holding the admin password (only a PBKDF2 hash reaches the configuration).",
    )


class OrthancTls(Model):
    """The certificate nginx presents: a given one, or one issued by a local CA made for development."""

    local_ca: bool = Field(default=False, description="Make a local CA (tls/ca.pem) and a certificate for the host.")
    certificate: str | None = Field(default=None, description="PEM certificate chain to serve (never written).")
    key: str | None = Field(default=None, description="Its PEM private key.")

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        given = self.certificate is not None or self.key is not None
        if self.local_ca and given:
            fail([(("local_ca",), "give either local_ca: true or certificate and key, not both")])
        if not self.local_ca and not given:
            fail([((), "needs local_ca: true, or certificate and key")])
        if given and (self.certificate is None or self.key is None):
            missing = "key" if self.key is None else "certificate"
            fail([((missing,), f"required with {'certificate' if missing == 'key' else 'key'}")])
        return self


class OrthancViewer(Model):
    """The OHIF build nginx serves."""

    ohif_version: OhifVersion = Field(default="3.13.2", description="The npm @ohif/app version (fetched with npm).")
    dist: str | None = Field(default=None, description="A built OHIF dist/ directory to serve instead of the npm one.")


class OrthancShares(Model):
    """Share links: who signs them and how long they live."""

    signing_key_env: EnvVarName = Field(
        default="PROVISION_SHARE_KEY",
        description="Environment variable holding the HS256 signing key (at least 32 bytes).",
    )
    lifetime: Duration = Field(default="7d", description="Default lifetime of a share link (`--expires`).")
    max_lifetime: Duration = Field(default="90d", description="The longest `--expires` accepted.")

    @model_validator(mode="after")
    def _lifetimes(self) -> Self:
        if parse_duration(self.lifetime) > parse_duration(self.max_lifetime):
            fail([(("lifetime",), f"{self.lifetime!r} is longer than max_lifetime {self.max_lifetime!r}")])
        return self


class OrthancSection(Section):
    """Self-hosted Orthanc (Debian packages), its DICOMweb and the OHIF build behind nginx, with share links."""

    directory: str = Field(description="Where apply writes the configuration (relative: to the current directory).")
    name: InstanceName | None = Field(default=None, description="Orthanc's Name; default: the plan's name.")
    storage: str | None = Field(default=None, description="Orthanc's storage and index; default DIRECTORY/storage.")
    public_url: PublicUrl | None = Field(
        default=None, description="The origin browsers use, e.g. https://viewer.example.org; default: ohif.viewer_url."
    )
    listen: ListenAddress | None = Field(
        default=None, description="nginx's address: default 127.0.0.1:PORT on localhost, else 0.0.0.0:PORT."
    )
    http_port: int = Field(default=8042, ge=1024, le=65535, description="Orthanc's HTTP port (loopback only).")
    dicomweb_root: DicomwebRoot = Field(default="/dicom-web/", description="DICOMweb path, in Orthanc and on nginx.")
    tls: OrthancTls | None = Field(default=None, description="Required for an https public_url.")
    viewer: OrthancViewer = Field(default_factory=lambda: OrthancViewer())
    cors_origins: tuple[ViewerOrigin, ...] = Field(
        default=(), description="Other viewers' origins allowed to read this archive with a token (CORS)."
    )
    admin: OrthancAdmin = Field(default_factory=lambda: OrthancAdmin())
    shares: OrthancShares = Field(default_factory=lambda: OrthancShares())

    @model_validator(mode="after")
    def _check(self) -> Self:
        problems: list[tuple[Loc, str]] = []
        if self.dicomweb_root in VIEWER_PATHS:
            problems.append((("dicomweb_root",), f"{self.dicomweb_root!r} is a path of the viewer itself"))
        for index, origin in enumerate(self.cors_origins):
            if origin in self.cors_origins[:index]:
                problems.append((("cors_origins", index), f"{origin!r} is listed twice"))
        fail(problems)
        return self

    def resolved(self, ohif: OhifSection) -> Self:
        problems: list[tuple[Loc, str]] = []
        public_url = self.public_url
        if public_url is None and ohif.viewer_url is not None:
            try:
                public_url = check_public_url(ohif.viewer_url)
            except ValueError as error:
                problems.append((("public_url",), f"required: ohif.viewer_url cannot be used ({error})"))
        elif public_url is not None and ohif.viewer_url is not None and ohif.viewer_origin != public_url:
            problems.append((("public_url",), f"{public_url!r} differs from ohif.viewer_url {ohif.viewer_url!r}"))
        if public_url is None and not problems:
            problems.append((("public_url",), "required: the origin browsers use (or set ohif.viewer_url)"))
        if public_url is not None:
            https = public_url.startswith("https://")
            if https and self.tls is None:
                problems.append((("tls",), "required for an https public_url: local_ca: true, or certificate and key"))
            if not https and self.tls is not None:
                problems.append((("tls",), f"not used with the http public_url {public_url!r}"))
            listen_port = int(self.listen_address(public_url).rsplit(":", 1)[1])
            if listen_port == self.http_port and self.listen_address(public_url).startswith(("127.0.0.1:", "0.0.0.0:")):
                problems.append((("http_port",), f"{self.http_port} is nginx's port too"))
        fail(problems)
        return self.model_copy(update={"public_url": public_url}) if public_url != self.public_url else self

    def listen_address(self, public_url: str | None = None) -> str:
        """nginx's `listen`: as declared, else the public URL's port on 127.0.0.1 (local host) or 0.0.0.0."""
        if self.listen is not None:
            return self.listen
        url = public_url or self.public_url or ""
        scheme, host, port = v.split_http_url(url, "public URL")
        port = port or (443 if scheme == "https" else 80)
        return f"{'127.0.0.1' if host in v.LOCAL_HTTP_HOSTS else '0.0.0.0'}:{port}"
