"""Key material of one sandbox: its TLS CA and server certificate, and the RS256 key that signs its tokens.

Everything is created once per state directory and reused on restart, so a client that trusted the CA
(or cached a token) keeps working after the sandbox comes back on another port.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

CA_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
CERT_FILE = "server.pem"
CERT_KEY_FILE = "server-key.pem"
JWT_KEY_FILE = "jwt-key.pem"

TOKEN_LIFETIME = 3599


class TokenError(Exception):
    """A bearer token was missing, malformed, expired, not ours, or for another audience."""

    def __init__(self, reason: str, *, audience: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason  # "missing" | "malformed" | "expired" | "signature" | "audience" | "tenant"
        self.audience = audience


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


@dataclass(frozen=True)
class TlsFiles:
    ca_bundle: Path
    cert_file: Path
    key_file: Path


def ensure_tls(state_dir: Path) -> TlsFiles:
    """Create (first run) or reuse the CA and the 127.0.0.1/localhost server certificate."""
    files = TlsFiles(state_dir / CA_FILE, state_dir / CERT_FILE, state_dir / CERT_KEY_FILE)
    if all(p.exists() for p in (files.ca_bundle, state_dir / CA_KEY_FILE, files.cert_file, files.key_file)):
        return files
    import trustme  # only needed the first time

    ca = trustme.CA(organization_name="provision sandbox")
    leaf = ca.issue_cert("127.0.0.1", "localhost", "::1", common_name="provision-sandbox")
    _write_private(state_dir / CA_KEY_FILE, ca.private_key_pem.bytes())
    _write_public(files.ca_bundle, ca.cert_pem.bytes())
    _write_private(files.key_file, leaf.private_key_pem.bytes())
    _write_public(files.cert_file, b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    return files


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class TokenSigner:
    """Issues and verifies the sandbox's RS256 access tokens."""

    def __init__(self, private_key: rsa.RSAPrivateKey) -> None:
        self._key = private_key
        self._public = private_key.public_key()
        der = self._public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.kid = _b64url(hashlib.sha1(der).digest())  # the shape of Entra's x5t/kid values
        self._verified: OrderedDict[str, dict[str, Any]] = OrderedDict()

    @classmethod
    def load_or_create(cls, state_dir: Path) -> TokenSigner:
        path = state_dir / JWT_KEY_FILE
        if path.exists():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(key, rsa.RSAPrivateKey):
                raise ValueError(f"{path} is not an RSA private key")
            return cls(key)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _write_private(
            path,
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
        )
        return cls(key)

    def jwks(self, issuer: str) -> dict[str, Any]:
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self._public, as_dict=True)
        jwk.update({"kid": self.kid, "x5t": self.kid, "use": "sig", "issuer": issuer})
        return {"keys": [jwk]}

    def issue(
        self,
        *,
        issuer: str,
        audience: str,
        tenant_id: str,
        app_id: str,
        object_id: str,
        roles: list[str] | None = None,
        now: float | None = None,
        lifetime: int = TOKEN_LIFETIME,
    ) -> str:
        iat = int(now if now is not None else time.time())
        claims: dict[str, Any] = {
            "aud": audience,
            "iss": issuer,
            "iat": iat,
            "nbf": iat,
            "exp": iat + lifetime,
            "aio": _b64url(os.urandom(24)),
            "appid": app_id,
            "azp": app_id,
            "appidacr": "1",
            "azpacr": "1",
            "idtyp": "app",
            "oid": object_id,
            "sub": object_id,
            "tid": tenant_id,
            "uti": _b64url(uuid.uuid4().bytes),
            "ver": "2.0",
        }
        if roles:
            claims["roles"] = list(roles)
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid, "x5t": self.kid})

    def sign(self, claims: dict[str, Any]) -> str:
        """Any claim set (user tokens, id tokens of interactive sign-in), signed like `issue`'s tokens."""
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid, "x5t": self.kid})

    def verify(self, token: str, *, audiences: tuple[str, ...], tenant_id: str) -> dict[str, Any]:
        """Claims of a valid token for one of `audiences` in `tenant_id`, else `TokenError`."""
        claims = self._verified.get(token)
        if claims is None:
            try:
                claims = jwt.decode(
                    token,
                    self._public,
                    algorithms=["RS256"],
                    options={"verify_aud": False, "require": ["exp", "aud", "tid"]},
                    leeway=30,
                )
            except jwt.ExpiredSignatureError:
                raise TokenError("expired") from None
            except jwt.InvalidSignatureError:
                raise TokenError("signature") from None
            except jwt.PyJWTError:
                raise TokenError("malformed") from None
            self._verified[token] = claims
            if len(self._verified) > 512:
                self._verified.popitem(last=False)
        elif claims["exp"] + 30 < time.time():
            raise TokenError("expired")
        if claims.get("aud") not in audiences:
            raise TokenError("audience", audience=str(claims.get("aud")))
        if claims.get("tid") != tenant_id:
            raise TokenError("tenant")
        return claims


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer ...` header, or `TokenError('missing')`."""
    if not authorization:
        raise TokenError("missing")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenError("malformed")
    return token.strip()
