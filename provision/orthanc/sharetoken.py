"""Share tokens and the access decision for one HTTP request to Orthanc, as pure code (stdlib + PyJWT).

This one module runs in two places, unchanged: inside Orthanc's embedded Python (orthanc-python 4.0 on
Debian bookworm: Python 3.11 with Debian's python3-jwt 2.6), where `orthanc_filter.py` calls `Authorizer` on
every request, and in provision itself (`provision orthanc share`, `verify`, the tests). So it imports nothing
from provision, and `provision orthanc apply` copies its source next to the filter script.

A share token is a JWT signed with HS256 (the key comes from the environment, never from a file):
`{"iss": "provision", "aud": "provision-viewer", "jti", "iat", "exp", "studies": [StudyInstanceUID, ...]}`,
plus `"upload": true` when the share may add instances to its studies.

What a share token may do (`decide`):
- read (GET, HEAD) `<root>studies/<granted UID>` and everything below it (series, metadata, frames, rendered);
- search `<root>studies` (QIDO) only when the query is restricted to granted StudyInstanceUIDs;
- with `upload`, store (POST, STOW-RS) into `<root>studies/<granted UID>` (the DICOMweb plugin refuses
  instances of another study there);
- nothing else: the priors query by PatientID, series/instance-level QIDO, WADO-URI, Orthanc's REST API.

The admin (HTTP Basic, the password checked against a PBKDF2 hash) may do everything. Orthanc's incoming
request filter can only allow or refuse, so every refusal is a 403.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import jwt

ISSUER = "provision"
AUDIENCE = "provision-viewer"
ALGORITHM = "HS256"
#: the query keys of a study-level QIDO that restrict it to given studies
STUDY_UID_KEYS = ("StudyInstanceUID", "0020000D")
#: a DICOM UID: digit groups separated by dots, no leading zero in a group of more than one digit, at most 64
UID_RE = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")
MAX_UID_LENGTH = 64
#: how long a consumer that caches decisions (the Advanced Authorization plugin) may keep a grant, in seconds
MAX_VALIDITY = 60
#: studies one token may carry (a JWT in a URL must stay well below browsers' and proxies' URL limits)
MAX_STUDIES = 50
#: the shortest signing key accepted (HS256 wants at least as many bytes as the hash output)
MIN_KEY_BYTES = 32
READ_METHODS = frozenset({"GET", "HEAD"})
#: PBKDF2-HMAC-SHA256 rounds for the admin password hash (checked once per process and header, then cached)
ADMIN_HASH_ROUNDS = 200_000


def is_uid(value: str) -> bool:
    """Whether `value` is a well-formed DICOM UID."""
    return len(value) <= MAX_UID_LENGTH and UID_RE.fullmatch(value) is not None


@dataclass(frozen=True)
class Grant:
    """What a valid share token allows."""

    share_id: str
    studies: frozenset[str]
    expires_at: int
    upload: bool = False


@dataclass(frozen=True)
class Decision:
    """The answer for one request, and why (for Orthanc's log and for tests)."""

    granted: bool
    reason: str
    #: seconds a consumer may cache a grant (0 for refusals)
    validity: int = 0
    admin: bool = False


# --- tokens ------------------------------------------------------------------------------------------------------


def mint(key: bytes, studies: Iterable[str], *, share_id: str, issued_at: int, expires_at: int,
         upload: bool = False) -> str:
    """A signed share token for `studies`. Raises ValueError for a bad UID, no study, or a bad lifetime."""
    uids = sorted(set(studies))
    if not uids or len(uids) > MAX_STUDIES:
        raise ValueError(f"a share grants 1 to {MAX_STUDIES} studies")
    bad = [uid for uid in uids if not is_uid(uid)]
    if bad:
        raise ValueError(f"not a DICOM UID: {bad[0]!r}")
    if expires_at <= issued_at:
        raise ValueError("a share must expire after it is issued")
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the signing key must have at least {MIN_KEY_BYTES} bytes")
    claims: dict[str, object] = {"iss": ISSUER, "aud": AUDIENCE, "jti": share_id, "iat": issued_at,
                                 "exp": expires_at, "studies": uids}
    if upload:
        claims["upload"] = True
    return jwt.encode(claims, key, algorithm=ALGORITHM)


class RevocationList:
    """Revoked share ids, one per line (`#` starts a comment), in a file that survives restarts.

    `contains` re-reads the file when its (mtime, size, inode) changes: one `os.stat` per call, so a running
    Orthanc sees a revocation on its next request. Writers replace the file atomically (write, then rename). A
    missing file means nothing is revoked; a file that cannot be read keeps the last list read.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._seen: tuple[int, int, int] | None = None
        self._ids: frozenset[str] = frozenset()

    def ids(self) -> frozenset[str]:
        try:
            status = os.stat(self.path)
        except FileNotFoundError:
            self._seen, self._ids = None, frozenset()
            return self._ids
        seen = (status.st_mtime_ns, status.st_size, status.st_ino)
        if seen != self._seen:
            try:
                with open(self.path, encoding="utf-8") as handle:
                    text = handle.read()
            except OSError:
                return self._ids
            self._seen = seen
            self._ids = frozenset(line.split("#", 1)[0].strip() for line in text.splitlines()) - {""}
        return self._ids

    def contains(self, share_id: str) -> bool:
        return share_id in self.ids()


class TokenVerifier:
    """Checks share tokens: signature and claims once per token (then cached), expiry and revocation on every
    call. OHIF sends the same token with every request, so the cache skips the HMAC and JSON work (tens of µs)
    on all but the first; the cache is bounded and cleared when full."""

    def __init__(self, key: bytes, revoked: RevocationList | None, *, cache_size: int = 4096) -> None:
        self.key = key
        self.revoked = revoked
        self.cache_size = cache_size
        self._verified: dict[str, Grant] = {}

    def verify(self, token: str, *, now: float | None = None) -> Grant | Decision:
        """The token's grant, or a refusal saying why."""
        grant = self._verified.get(token)
        if grant is None:
            checked = self._check(token)
            if isinstance(checked, Decision):
                return checked
            grant = checked
            if len(self._verified) >= self.cache_size:
                self._verified.clear()
            self._verified[token] = grant
        if grant.expires_at <= (time.time() if now is None else now):
            return Decision(False, "token expired")
        if self.revoked is not None and self.revoked.contains(grant.share_id):
            return Decision(False, "share revoked")
        return grant

    def _check(self, token: str) -> Grant | Decision:
        if len(self.key) < MIN_KEY_BYTES:
            return Decision(False, "no usable signing key")
        try:
            # expiry is checked by `verify` (also for cached grants), against a clock tests can set; `iat` is not
            # checked (newer PyJWT refuses an `iat` in the future: a signer's clock a second ahead would break links)
            claims = jwt.decode(token, self.key, algorithms=[ALGORITHM], audience=AUDIENCE, issuer=ISSUER,
                                options={"require": ["exp", "iat", "jti"], "verify_exp": False, "verify_iat": False})
        except jwt.InvalidTokenError as error:
            return Decision(False, f"invalid token ({type(error).__name__})")
        studies, share_id, expires_at = claims.get("studies"), claims.get("jti"), claims.get("exp")
        if (not isinstance(studies, list) or not 0 < len(studies) <= MAX_STUDIES
                or not all(isinstance(uid, str) and is_uid(uid) for uid in studies)
                or not isinstance(share_id, str) or not share_id or not isinstance(expires_at, int)):
            return Decision(False, "invalid token (claims)")
        return Grant(share_id, frozenset(studies), expires_at, claims.get("upload") is True)


def bearer(headers: Mapping[str, str]) -> str | None:
    """The token of an `Authorization: Bearer` header (names in lower case, as Orthanc passes them)."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


# --- the admin ----------------------------------------------------------------------------------------------------


def hash_password(password: str, salt: bytes, rounds: int = ADMIN_HASH_ROUNDS) -> str:
    """`pbkdf2_sha256$ROUNDS$SALT$HASH` (base64), what the Orthanc configuration stores instead of the password."""
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, rounds)
    encode = base64.urlsafe_b64encode
    return f"pbkdf2_sha256${rounds}${encode(salt).decode()}${encode(digest).decode()}"


def password_matches(password: str, stored: str) -> bool:
    try:
        scheme, rounds, salt, digest = stored.split("$")
        if scheme != "pbkdf2_sha256":
            return False
        expected = base64.urlsafe_b64decode(digest)
        actual = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), base64.urlsafe_b64decode(salt), int(rounds))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


class AdminCheck:
    """HTTP Basic against `{user: hash_password(...)}`. A header that matched once is remembered (by its
    SHA-256) so that the slow hash runs once per process, not on every upload."""

    def __init__(self, admins: Mapping[str, str]) -> None:
        self.admins = dict(admins)
        self._accepted: set[bytes] = set()

    def matches(self, headers: Mapping[str, str]) -> bool:
        value = headers.get("authorization", "")
        scheme, _, credentials = value.partition(" ")
        if scheme.lower() != "basic" or not self.admins:
            return False
        remembered = hashlib.sha256(value.encode("utf-8")).digest()
        if remembered in self._accepted:
            return True
        try:
            user, _, password = base64.b64decode(credentials.strip(), validate=True).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        stored = self.admins.get(user)
        if stored is None or not password_matches(password, stored):
            return False
        if len(self._accepted) < 64:
            self._accepted.add(remembered)
        return True


# --- the decision -------------------------------------------------------------------------------------------------

Query = Mapping[str, "str | Sequence[str]"]


def _values(query: Query, key: str) -> list[str]:
    value = query.get(key)
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def study_filter(query: Query) -> list[str] | None:
    """The StudyInstanceUIDs a QIDO is restricted to, or None when it is not restricted or a value is not a plain
    list of UIDs (wildcards, ranges, junk), which must then be refused. Values arrive percent-encoded (as Orthanc
    passes them to the filter) and are decoded once here; `A,B` and `A\\B` are lists."""
    uids: list[str] = []
    for key in STUDY_UID_KEYS:
        for raw in _values(query, key):
            for uid in re.split(r"[,\\]", unquote(raw)):
                if not is_uid(uid):
                    return None
                uids.append(uid)
    return uids or None


def _validity(grant: Grant, now: float | None) -> int:
    current = time.time() if now is None else now
    return max(0, min(MAX_VALIDITY, int(grant.expires_at - current)))


def decide(grant: Grant, method: str, path: str, query: Query, *, root: str = "/dicom-web/",
           now: float | None = None) -> Decision:
    """May `grant` do `method path?query`? `path` is percent-decoded and starts with `root`, as Orthanc passes it."""
    method = method.upper()
    if not path.startswith(root):
        return Decision(False, "outside DICOMweb")
    parts = path[len(root):].split("/")
    below = parts[1:]
    if parts[0] != "studies" or "" in below[:-1] or any(part in (".", "..") for part in below):
        return Decision(False, "not a study resource")
    if len(parts) == 1 or parts[1:] == [""]:
        if method not in READ_METHODS:
            return Decision(False, "only the admin stores new studies")
        uids = study_filter(query)
        if uids is None:
            return Decision(False, "search not restricted to granted StudyInstanceUIDs")
        if not set(uids) <= grant.studies:
            return Decision(False, "search for a study not granted")
        return Decision(True, "search of granted studies", _validity(grant, now))
    if parts[1] not in grant.studies:
        return Decision(False, "study not granted")
    if method in READ_METHODS:
        return Decision(True, "granted study", _validity(grant, now))
    if method == "POST" and grant.upload and parts[2:] in ([], [""]):
        return Decision(True, "upload into granted study", _validity(grant, now))
    return Decision(False, "share tokens only read" if not grant.upload else "uploads go to /studies/<granted UID>")


def split_uri(uri: str) -> tuple[str, dict[str, list[str]]]:
    """A raw request URI → (percent-decoded path, {key: [values as sent]}): the shape Orthanc gives the filter,
    except that every repeated key is kept."""
    parts = urlsplit(uri)
    query: dict[str, list[str]] = {}
    for pair in parts.query.split("&"):
        if pair:
            key, _, value = pair.partition("=")
            query.setdefault(unquote(key), []).append(value)
    return unquote(parts.path), query


class Authorizer:
    """The whole check of one request to Orthanc (what the filter calls), and the Advanced Authorization
    plugin's web-service contract (`validate`)."""

    #: the contract's endpoint, registered in Orthanc by the filter script (loopback only: nginx does not publish
    #: it); it is the one path a request without credentials may reach
    CONTRACT_PATH = "/provision/tokens/validate"

    def __init__(self, *, admins: AdminCheck, tokens: TokenVerifier, root: str = "/dicom-web/") -> None:
        self.admins = admins
        self.tokens = tokens
        self.root = root

    def authorize(self, method: str, path: str, query: Query, headers: Mapping[str, str], *,
                  now: float | None = None) -> Decision:
        if self.admins.matches(headers):
            return Decision(True, "admin", MAX_VALIDITY, admin=True)
        token = bearer(headers)
        if token is None:
            if method.upper() == "POST" and path == self.CONTRACT_PATH:
                return Decision(True, "token validation (the token is in the body)")
            return Decision(False, "no credentials")
        grant = self.tokens.verify(token, now=now)
        if isinstance(grant, Decision):
            return grant
        return decide(grant, method, path, query, root=self.root, now=now)

    def validate(self, body: Mapping[str, object], *, now: float | None = None) -> dict[str, object]:
        """`POST /tokens/validate` of Orthanc's Advanced Authorization plugin:
        `{level, method, uri | dicom-uid | orthanc-id, token-key, token-value}` → `{"granted", "validity"}`.

        With `CheckedLevel: "studies"` the plugin asks at level `study` with the study's `dicom-uid`, and at level
        `system` with the `uri` of what it cannot map to a study (e.g. a search by PatientID): those are decided
        by the path rules. Other levels, or an `orthanc-id` without `dicom-uid`, cannot be tied to a granted
        study here and are refused.
        """
        refused: dict[str, object] = {"granted": False, "validity": 0}
        value = str(body.get("token-value") or "").strip()
        if value.lower().startswith("bearer "):
            value = value[7:].strip()
        if not value:
            return refused
        grant = self.tokens.verify(value, now=now)
        if isinstance(grant, Decision):
            return refused
        method = str(body.get("method") or "get").upper()
        level = body.get("level")
        if level == "study":
            uid = body.get("dicom-uid")
            granted = method in READ_METHODS and isinstance(uid, str) and uid in grant.studies
        elif level == "system":
            path, query = split_uri(str(body.get("uri") or ""))
            granted = decide(grant, method, path, query, root=self.root, now=now).granted
        else:
            granted = False
        return {"granted": True, "validity": _validity(grant, now)} if granted else refused
