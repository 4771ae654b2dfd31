"""TLS material for nginx: facts read from PEM files (to compare with the plan), and a local development CA.

The CA and its certificates are made with trustme (on `cryptography`); nothing here is hand-written crypto.
A CA that already exists is kept when the host changes: only the server certificate is issued again, so a
browser or NSS database that trusts the CA keeps working.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

#: a certificate closer than this to its end is renewed by apply
RENEW_BEFORE = dt.timedelta(days=30)
#: how long an issued server certificate lives (what browsers accept from public CAs, too)
SERVER_LIFETIME = dt.timedelta(days=397)
LOCAL_HOSTS = ("localhost", "127.0.0.1")


@dataclass(frozen=True)
class CertificateFacts:
    names: tuple[str, ...]
    fingerprint: str
    not_after: dt.datetime
    is_ca: bool

    def expires_soon(self, now: dt.datetime | None = None) -> bool:
        return self.not_after - (now or dt.datetime.now(dt.UTC)) < RENEW_BEFORE


def load_certificate(pem: bytes) -> x509.Certificate:
    """The first certificate of a PEM chain (ValueError when there is none)."""
    return x509.load_pem_x509_certificate(pem)


def facts(certificate: x509.Certificate) -> CertificateFacts:
    names: list[str] = []
    try:
        alternative = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names += alternative.get_values_for_type(x509.DNSName)
        names += [str(address) for address in alternative.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        pass
    try:
        is_ca = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    fingerprint = hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()
    return CertificateFacts(tuple(sorted(set(names))), fingerprint, certificate.not_valid_after_utc, is_ca)


def key_matches(certificate: x509.Certificate, key_pem: bytes) -> bool:
    """Whether `key_pem` is the private key of `certificate`."""
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        return False
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    encoding = serialization.Encoding.DER
    return bool(key.public_key().public_bytes(encoding, public) == certificate.public_key().public_bytes(encoding,
                                                                                                      public))


def issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def covers(names: tuple[str, ...], host: str) -> bool:
    """Whether a certificate for `names` is valid for `host` (one-label wildcards as browsers apply them)."""
    host = host.lower()
    for name in (n.lower() for n in names):
        if name == host:
            return True
        if name.startswith("*.") and "." in host and host.split(".", 1)[1] == name[2:] and not _is_ip(host):
            return True
    return False


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def server_names(host: str) -> tuple[str, ...]:
    """The names a development certificate for `host` carries (both local spellings for a local host)."""
    return tuple(sorted({host, *LOCAL_HOSTS} if host in LOCAL_HOSTS else {host}))


def new_ca(label: str) -> tuple[bytes, bytes]:
    """A new local CA: (certificate PEM, private key PEM)."""
    import trustme

    ca = trustme.CA(organization_name="provision local CA", organization_unit_name=label)
    return ca.cert_pem.bytes(), ca.private_key_pem.bytes()


def issue(ca_pem: bytes, ca_key_pem: bytes, names: tuple[str, ...]) -> tuple[bytes, bytes]:
    """A server certificate for `names` from the CA: (chain PEM, private key PEM)."""
    import trustme

    ca = trustme.CA.from_pem(ca_pem, ca_key_pem)
    now = dt.datetime.now(dt.UTC)
    leaf = ca.issue_cert(*names, common_name=names[0], not_before=now - dt.timedelta(minutes=5),
                         not_after=now + SERVER_LIFETIME)
    chain = b"".join(blob.bytes() for blob in leaf.cert_chain_pems)
    return chain, leaf.private_key_pem.bytes()


def subject_label(certificate: x509.Certificate) -> str:
    units = certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    return str(units[0].value) if units else ""
