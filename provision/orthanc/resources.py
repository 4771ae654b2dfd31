"""The files `provision orthanc apply` reconciles in the target directory, one engine resource each.

- `TextFile`: compared by content (the plan shows a unified diff of the changed lines) and permissions;
- `DocumentFile`: a JSON document (Orthanc's configuration, OHIF's `window.config`) compared key by key, with
  keys added by hand listed as `unexpected_keys` and a hand edit that changes no value (a comment, spacing)
  shown as `formatting`; values under a sensitive key (the admin password hash) are shown as a fingerprint;
- `LocalCa` / `ServerCertificate`: a development CA and the certificate nginx serves, compared by what matters
  (a CA, the host names, the issuer, the key, 30 days of validity left), not by bytes that change each issue;
- `GivenCertificate` / `GivenDist`: what the plan points at but provision never writes, checked (not managed);
- `OhifBuild`: the npm OHIF build, hard-linked from the download cache into the target directory (readable by
  nginx's workers, unlike a home directory), checked against a manifest of its files.

Every write replaces a file atomically. Nothing here holds a secret: the admin password is only a hash inside
`orthanc.json`, the TLS keys are written with mode 0600 and never read back into plan output.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from provision.core import Context, Resource, Timeouts, Update
from provision.core.diff import flatten
from provision.core.files import write_atomically
from provision.errors import ConfigurationError
from provision.orthanc import tls

Guard = Callable[[], None]
MARKER = ".provision-ohif.json"


def remove_file(path: Path, root: Path) -> None:
    """Remove `path`, then its parent directories up to `root` that are left empty."""
    path.unlink(missing_ok=True)
    prune(path.parent, root)


def prune(directory: Path, root: Path) -> None:
    """Remove `directory` and its parents up to `root` (excluded) while they are empty."""
    while directory != root and directory.is_relative_to(root):
        try:
            directory.rmdir()
        except OSError:
            break
        directory = directory.parent


def _mode(path: Path) -> str:
    return f"{path.stat().st_mode & 0o777:04o}"


class _FileResource(Resource):
    def __init__(self, address: str, path: Path, root: Path, guard: Guard) -> None:
        super().__init__(address)
        self.path = path
        self.root = root
        self.guard = guard

    def outputs(self, actual: dict[str, Any]) -> dict[str, Any]:
        return {"path": str(self.path)}

    async def delete(self, ctx: Context, actual: dict[str, Any]) -> None:
        self.guard()
        remove_file(self.path, self.root)


class TextFile(_FileResource):
    """A file written as given."""

    def __init__(self, address: str, path: Path, root: Path, text: str, *, mode: int = 0o644,
                 guard: Guard) -> None:
        super().__init__(address, path, root, guard)
        self.text = text
        self.mode = mode

    def _read_text(self) -> str | None:
        if not self.path.is_file():
            return None
        return self.path.read_text(encoding="utf-8", errors="replace")

    def compared(self, text: str) -> dict[str, Any]:
        """What is compared of a file holding `text`."""
        return {"text": text}

    async def read(self, ctx: Context) -> dict[str, Any] | None:
        text = self._read_text()
        return None if text is None else {**self.compared(text), "mode": _mode(self.path)}

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {**self.compared(self.text), "mode": f"{self.mode:04o}"}

    async def create(self, ctx: Context, desired: dict[str, Any]) -> dict[str, Any] | None:
        write_atomically(self.path, self.text, mode=self.mode)
        return None

    async def update(self, ctx: Context, desired: dict[str, Any], actual: dict[str, Any],
                     action: Update) -> dict[str, Any] | None:
        return await self.create(ctx, desired)


def _fieldwise(value: Any) -> Any:
    """Lists of mappings as mappings by index, so that a diff names `dataSources.0.configuration.qidoRoot`."""
    if isinstance(value, Mapping):
        return {str(key): _fieldwise(item) for key, item in value.items()}
    if isinstance(value, list) and value and all(isinstance(item, Mapping) for item in value):
        return {str(index): _fieldwise(item) for index, item in enumerate(value)}
    return value


def _masked(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _masked(item) for key, item in value.items()}
    digest = hashlib.sha256(json.dumps(value).encode()).hexdigest()[:12]
    return f"(sensitive, sha256 {digest})"


class DocumentFile(TextFile):
    """A JSON document in a file (`render` writes it, `parse` reads it back), compared key by key; `sensitive`
    names dotted keys whose values are shown as fingerprints."""

    def __init__(self, address: str, path: Path, root: Path, document: dict[str, Any], *,
                 render: Callable[[dict[str, Any]], str], parse: Callable[[str], Any], sensitive: tuple[str, ...] = (),
                 mode: int = 0o644, guard: Guard) -> None:
        super().__init__(address, path, root, render(document), mode=mode, guard=guard)
        self.document = document
        self.parse = parse
        self.sensitive = sensitive
        self._wanted = self._fields(document)

    def _fields(self, document: Any) -> Any:
        shown = _fieldwise(document)
        for dotted in self.sensitive:
            *parents, last = dotted.split(".")
            node = shown
            for key in parents:
                node = node.get(key) if isinstance(node, dict) else None
            if isinstance(node, dict) and last in node:
                node[last] = _masked(node[last])
        return shown

    def compared(self, text: str) -> dict[str, Any]:
        if text == self.text:
            return {"document": self._wanted, "unexpected_keys": [], "formatting": "as rendered"}
        try:
            found = self._fields(self.parse(text))
        except ValueError as error:
            return {"document": {}, "unexpected_keys": [], "formatting": f"not readable ({error})"}
        if not isinstance(found, dict):
            return {"document": {}, "unexpected_keys": [], "formatting": "not a JSON object"}
        extra = sorted(set(flatten(found)) - set(flatten(self._wanted)))
        formatting = "edited by hand (no value changed)" if found == self._wanted else "as rendered"
        return {"document": found, "unexpected_keys": extra, "formatting": formatting}


def json_text(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2) + "\n"


class LocalCa(Resource):
    """A development CA in `tls/` (`ca.pem`, and `ca.key` with mode 0600)."""

    def __init__(self, tls_dir: Path, root: Path, name: str, guard: Guard) -> None:
        super().__init__("orthanc.tls_ca")
        self.certificate = tls_dir / "ca.pem"
        self.key = tls_dir / "ca.key"
        self.root = root
        self.name = name
        self.guard = guard

    async def read(self, ctx: Context) -> dict[str, Any] | None:
        if not self.certificate.is_file() or not self.key.is_file():
            return None
        try:
            certificate = tls.load_certificate(self.certificate.read_bytes())
        except ValueError:
            return {"is_ca": False, "key_matches": False, "expires_within_30_days": True, "fingerprint": ""}
        facts = tls.facts(certificate)
        return {"is_ca": facts.is_ca, "key_matches": tls.key_matches(certificate, self.key.read_bytes()),
                "expires_within_30_days": facts.expires_soon(), "fingerprint": facts.fingerprint}

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {"is_ca": True, "key_matches": True, "expires_within_30_days": False}

    async def create(self, ctx: Context, desired: dict[str, Any]) -> dict[str, Any] | None:
        certificate, key = tls.new_ca(self.name)
        write_atomically(self.key, key, mode=0o600)
        write_atomically(self.certificate, certificate, mode=0o644)
        return None

    async def update(self, ctx: Context, desired: dict[str, Any], actual: dict[str, Any],
                     action: Update) -> dict[str, Any] | None:
        return await self.create(ctx, desired)

    async def delete(self, ctx: Context, actual: dict[str, Any]) -> None:
        self.guard()
        remove_file(self.key, self.root)
        remove_file(self.certificate, self.root)

    def outputs(self, actual: dict[str, Any]) -> dict[str, Any]:
        return {"fingerprint": actual["fingerprint"], "certificate": str(self.certificate)}


class ServerCertificate(Resource):
    """The certificate nginx serves, issued by the local CA for the public host."""

    def __init__(self, certificate: Path, key: Path, ca: LocalCa, host: str, root: Path, guard: Guard) -> None:
        super().__init__("orthanc.tls_certificate", (ca.address,))
        self.certificate = certificate
        self.key = key
        self.ca = ca
        self.names = tls.server_names(host)
        self.root = root
        self.guard = guard

    async def read(self, ctx: Context) -> dict[str, Any] | None:
        if not self.certificate.is_file() or not self.key.is_file():
            return None
        try:
            certificate = tls.load_certificate(self.certificate.read_bytes())
        except ValueError:
            return {"names": [], "issuer": "(not a certificate)", "key_matches": False,
                    "expires_within_30_days": True}
        facts = tls.facts(certificate)
        issuer = "another issuer"
        if self.ca.certificate.is_file():
            with contextlib.suppress(ValueError):
                ca = tls.load_certificate(self.ca.certificate.read_bytes())
                if tls.issued_by(certificate, ca):
                    issuer = tls.facts(ca).fingerprint
        return {"names": list(facts.names), "issuer": issuer,
                "key_matches": tls.key_matches(certificate, self.key.read_bytes()),
                "expires_within_30_days": facts.expires_soon()}

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {"names": list(self.names), "issuer": ctx.inputs(self.ca.address).get("fingerprint"),
                "key_matches": True, "expires_within_30_days": False}

    async def create(self, ctx: Context, desired: dict[str, Any]) -> dict[str, Any] | None:
        chain, key = tls.issue(self.ca.certificate.read_bytes(), self.ca.key.read_bytes(), self.names)
        write_atomically(self.key, key, mode=0o600)
        write_atomically(self.certificate, chain, mode=0o644)
        return None

    async def update(self, ctx: Context, desired: dict[str, Any], actual: dict[str, Any],
                     action: Update) -> dict[str, Any] | None:
        return await self.create(ctx, desired)

    async def delete(self, ctx: Context, actual: dict[str, Any]) -> None:
        self.guard()
        remove_file(self.key, self.root)
        remove_file(self.certificate, self.root)

    def outputs(self, actual: dict[str, Any]) -> dict[str, Any]:
        return {"certificate": str(self.certificate)}


class GivenCertificate(Resource):
    """A certificate and key the plan names (`tls.certificate`, `tls.key`): checked, never written."""

    managed = False

    def __init__(self, certificate: Path, key: Path, host: str, where: str) -> None:
        super().__init__("orthanc.tls_certificate")
        self.certificate = certificate
        self.key = key
        self.host = host
        self.where = where

    async def read(self, ctx: Context) -> dict[str, Any] | None:
        if not self.certificate.is_file() or not self.key.is_file():
            return None
        try:
            certificate = tls.load_certificate(self.certificate.read_bytes())
        except ValueError:
            raise ConfigurationError(f"{self.where}: {self.certificate} holds no PEM certificate") from None
        facts = tls.facts(certificate)
        if not tls.covers(facts.names, self.host):
            raise ConfigurationError(f"{self.where}: {self.certificate} is for {', '.join(facts.names) or 'no name'}, "
                                     f"not {self.host}")
        if not tls.key_matches(certificate, self.key.read_bytes()):
            raise ConfigurationError(f"{self.where}: {self.key} is not the private key of {self.certificate}")
        if facts.expires_soon():
            raise ConfigurationError(f"{self.where}: {self.certificate} expires on {facts.not_after:%Y-%m-%d}",
                                     hint="renew it; provision does not write given certificates")
        return {"names": list(facts.names), "not_after": facts.not_after.isoformat()}

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {}

    def outputs(self, actual: dict[str, Any]) -> dict[str, Any]:
        return {"certificate": str(self.certificate)}


def manifest(directory: Path) -> str:
    """A digest of every file's relative path and size under `directory` (cheap, ~250 files)."""
    lines = sorted(f"{path.relative_to(directory)} {path.stat().st_size}"
                   for path in directory.rglob("*") if path.is_file() and path.name != MARKER)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def link_tree(source: Path, target: Path) -> None:
    """A copy of `source` at `target`, by hard links where the file system allows (the build is ~200 MB)."""
    def link_or_copy(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, target, copy_function=link_or_copy)


class OhifBuild(Resource):
    """The npm `@ohif/app` dist at the plan's version, in `viewer/ohif-VERSION/`."""

    timeouts = Timeouts(create=1200.0, update=1200.0)

    def __init__(self, path: Path, version: str, root: Path, fetch: Callable[[str, Callable[[str], None]], Path],
                 guard: Guard) -> None:
        super().__init__("orthanc.ohif_build")
        self.path = path
        self.version = version
        self.root = root
        self.fetch = fetch
        self.guard = guard

    @property
    def label(self) -> str:
        return f"orthanc.ohif_build (@ohif/app {self.version})"

    async def read(self, ctx: Context) -> dict[str, Any] | None:
        marker = self.path / MARKER
        if not (self.path / "index.html").is_file() or not marker.is_file():
            return None
        try:
            recorded = json.loads(marker.read_text())
        except ValueError:
            recorded = {}
        intact = recorded.get("manifest") == manifest(self.path)
        return {"version": recorded.get("version"), "files": "as fetched" if intact else "changed since apply"}

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {"version": self.version, "files": "as fetched"}

    async def create(self, ctx: Context, desired: dict[str, Any]) -> dict[str, Any] | None:
        import asyncio

        source = await asyncio.to_thread(self.fetch, self.version, ctx.progress)
        ctx.progress(f"linking the build into {self.path}")
        staging = self.path.with_name(f".{self.path.name}.staging")
        shutil.rmtree(staging, ignore_errors=True)
        await asyncio.to_thread(link_tree, source, staging)
        (staging / MARKER).write_text(json.dumps({"version": self.version, "manifest": manifest(staging)}) + "\n")
        if self.path.exists():
            shutil.rmtree(self.path)
        staging.rename(self.path)
        for other in self.path.parent.glob("ohif-*"):  # the build of a version the plan no longer names
            if other != self.path and (other / MARKER).is_file():
                shutil.rmtree(other)
        return None

    async def update(self, ctx: Context, desired: dict[str, Any], actual: dict[str, Any],
                     action: Update) -> dict[str, Any] | None:
        return await self.create(ctx, desired)

    async def delete(self, ctx: Context, actual: dict[str, Any]) -> None:
        self.guard()
        shutil.rmtree(self.path)
        prune(self.path.parent, self.root)

    def outputs(self, actual: dict[str, Any]) -> dict[str, Any]:
        return {"dist": str(self.path)}


class GivenDist(Resource):
    """An OHIF build the plan points at (`viewer.dist`): it must hold `index.html`; provision never writes it."""

    managed = False

    def __init__(self, path: Path) -> None:
        super().__init__("orthanc.ohif_build")
        self.path = path

    @property
    def label(self) -> str:
        return f"orthanc.ohif_build ({self.path})"

    async def read(self, ctx: Context) -> dict[str, Any] | None:
        return {"dist": str(self.path)} if (self.path / "index.html").is_file() else None

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {}


__all__ = ["DocumentFile", "GivenCertificate", "GivenDist", "LocalCa", "OhifBuild", "ServerCertificate", "TextFile",
           "json_text"]
