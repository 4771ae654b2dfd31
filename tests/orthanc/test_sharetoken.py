"""The share-token module as pure code: tokens, revocation, the admin check, the path rules and the Advanced
Authorization contract. The same module runs inside Orthanc, on Debian's python3 and python3-jwt 2.6: the last
tests run it there."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from pathlib import Path

import jwt
import pytest

from provision.orthanc import sharetoken as st

KEY = b"k" * 40
A = "2.25.111"
B = "2.25.222"
ROOT = "/dicom-web/"
NOW = 1_800_000_000


def token(studies: list[str] = [A], *, exp: int = NOW + 600, share_id: str = "s1", upload: bool = False,  # noqa: B006
          key: bytes = KEY) -> str:
    return st.mint(key, studies, share_id=share_id, issued_at=NOW - 10, expires_at=exp, upload=upload)


def authorizer(tmp_path: Path, admins: dict[str, str] | None = None) -> st.Authorizer:
    revoked = st.RevocationList(str(tmp_path / "revoked.txt"))
    return st.Authorizer(admins=st.AdminCheck(admins or {}), tokens=st.TokenVerifier(KEY, revoked), root=ROOT)


def bearer(value: str) -> dict[str, str]:
    return {"authorization": f"Bearer {value}"}


def test_uids() -> None:
    assert st.is_uid("1.2.840.10008.5.1.4.1.1.7") and st.is_uid("0.1") and st.is_uid("2.25.0")
    for bad in ("", "1.", ".1", "1..2", "01.2", "1.2a", "1.2*", "1,2", "1." + "1" * 64, "1.2\n"):
        assert not st.is_uid(bad), bad


def test_mint_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="not a DICOM UID"):
        st.mint(KEY, ["1.2.x"], share_id="s", issued_at=NOW, expires_at=NOW + 1)
    with pytest.raises(ValueError, match="1 to"):
        st.mint(KEY, [], share_id="s", issued_at=NOW, expires_at=NOW + 1)
    with pytest.raises(ValueError, match="expire after"):
        st.mint(KEY, [A], share_id="s", issued_at=NOW, expires_at=NOW)
    with pytest.raises(ValueError, match="at least 32 bytes"):
        st.mint(b"short", [A], share_id="s", issued_at=NOW, expires_at=NOW + 1)


def test_a_token_carries_its_studies_expiry_and_id() -> None:
    claims = jwt.decode(token([B, A]), KEY, algorithms=["HS256"], audience=st.AUDIENCE,
                        options={"verify_exp": False, "verify_iat": False})
    assert claims["studies"] == [A, B] and claims["jti"] == "s1" and claims["exp"] == NOW + 600
    assert claims["iss"] == "provision" and "upload" not in claims
    grant = st.TokenVerifier(KEY, None).verify(token([A, B]), now=NOW)
    assert grant == st.Grant("s1", frozenset({A, B}), NOW + 600, False)


def _forged(value: str, **changes: object) -> str:
    head, payload, signature = value.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    return f"{head}.{base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b'=').decode()}.{signature}"


@pytest.mark.parametrize(("make", "reason"), [
    (lambda: token(exp=NOW - 1), "token expired"),
    (lambda: _forged(token(), studies=[A, B]), "invalid token (InvalidSignatureError)"),
    (lambda: token()[:-3] + "AAA", "invalid token"),
    (lambda: token(key=b"o" * 40), "invalid token (InvalidSignatureError)"),
    (lambda: jwt.encode({"iss": "provision", "aud": st.AUDIENCE, "jti": "x", "iat": NOW, "exp": NOW + 60,
                         "studies": [A]}, None, algorithm="none"), "invalid token"),
    (lambda: jwt.encode({"iss": "provision", "aud": "other", "jti": "x", "iat": NOW, "exp": NOW + 60,
                         "studies": [A]}, KEY, algorithm="HS256"), "invalid token (InvalidAudienceError)"),
    (lambda: jwt.encode({"iss": "provision", "aud": st.AUDIENCE, "jti": "x", "iat": NOW, "exp": NOW + 60,
                         "studies": ["1.2.*"]}, KEY, algorithm="HS256"), "invalid token (claims)"),
    (lambda: jwt.encode({"iss": "provision", "aud": st.AUDIENCE, "iat": NOW, "exp": NOW + 60,
                         "studies": [A]}, KEY, algorithm="HS256"), "invalid token (MissingRequiredClaimError)"),
    (lambda: "not-a-token", "invalid token"),
])
def test_bad_tokens_are_refused(make: object, reason: str) -> None:
    verdict = st.TokenVerifier(KEY, None).verify(make(), now=NOW)  # type: ignore[operator]
    assert isinstance(verdict, st.Decision) and not verdict.granted and verdict.reason.startswith(reason)


def test_a_cached_token_still_expires_and_can_be_revoked(tmp_path: Path) -> None:
    revoked = st.RevocationList(str(tmp_path / "revoked.txt"))
    verifier = st.TokenVerifier(KEY, revoked)
    value = token(exp=NOW + 60)
    assert isinstance(verifier.verify(value, now=NOW), st.Grant)
    assert verifier.verify(value, now=NOW + 60) == st.Decision(False, "token expired")
    (tmp_path / "revoked.txt").write_text("# comment\nother\ns1  # revoked by hand\n")
    assert verifier.verify(value, now=NOW) == st.Decision(False, "share revoked")


def test_the_revocation_list_is_read_again_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "revoked.txt"
    revoked = st.RevocationList(str(path))
    assert not revoked.contains("a")  # no file: nothing revoked
    path.write_text("a\n")
    assert revoked.contains("a") and not revoked.contains("b")
    replacement = tmp_path / "new.txt"
    replacement.write_text("b\n")
    os.replace(replacement, path)  # how writers replace it: a new inode
    assert revoked.contains("b") and not revoked.contains("a")
    path.unlink()
    assert not revoked.contains("b")


def test_admin_basic_against_a_pbkdf2_hash() -> None:
    stored = st.hash_password("correct horse", b"salt" * 4, rounds=1000)
    assert stored.startswith("pbkdf2_sha256$1000$") and "correct horse" not in stored
    check = st.AdminCheck({"admin": stored})

    def basic(user: str, password: str) -> dict[str, str]:
        return {"authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}

    assert check.matches(basic("admin", "correct horse"))
    assert check.matches(basic("admin", "correct horse"))  # remembered
    assert not check.matches(basic("admin", "wrong"))
    assert not check.matches(basic("root", "correct horse"))
    assert not check.matches({"authorization": "Basic !!!"})
    assert not check.matches(bearer("x")) and not check.matches({})
    assert not st.AdminCheck({"admin": "plain-text"}).matches(basic("admin", "plain-text"))


GRANT = st.Grant("s1", frozenset({A}), NOW + 600)


@pytest.mark.parametrize(("method", "path", "query", "granted"), [
    ("GET", f"{ROOT}studies", {"StudyInstanceUID": A}, True),
    ("GET", f"{ROOT}studies", {"0020000D": A, "includefield": "00081030"}, True),
    ("GET", f"{ROOT}studies/", {"StudyInstanceUID": A}, True),
    ("HEAD", f"{ROOT}studies", {"StudyInstanceUID": A}, True),
    ("GET", f"{ROOT}studies", {"00100020": "PAT"}, False),  # the priors search
    ("GET", f"{ROOT}studies", {"PatientID": "PAT", "StudyInstanceUID": A}, True),  # restricted to A anyway
    ("GET", f"{ROOT}studies", {}, False),
    ("GET", f"{ROOT}studies", {"StudyInstanceUID": B}, False),
    ("GET", f"{ROOT}studies", {"StudyInstanceUID": f"{A},{B}"}, False),
    ("GET", f"{ROOT}studies", {"StudyInstanceUID": f"{A}%2C{B}"}, False),
    ("GET", f"{ROOT}studies", {"StudyInstanceUID": f"{A}%5C{B}"}, False),
    ("GET", f"{ROOT}studies", {"StudyInstanceUID": "*"}, False),
    ("GET", f"{ROOT}studies", {"StudyInstanceUID": f"{A}*"}, False),
    ("GET", f"{ROOT}studies", {"StudyInstanceUID": A, "0020000D": B}, False),
    ("GET", f"{ROOT}studies", {"StudyInstanceUID": [A, B]}, False),
    ("GET", f"{ROOT}studies/{A}/metadata", {}, True),
    ("GET", f"{ROOT}studies/{A}/series/1.2/instances/1.3/frames/1", {}, True),
    ("GET", f"{ROOT}studies/{A}/series/1.2/rendered", {}, True),
    ("GET", f"{ROOT}studies/{B}/metadata", {}, False),
    ("GET", f"{ROOT}studies/{A}/../{B}/metadata", {}, False),
    ("GET", f"{ROOT}studies/{A}/..", {}, False),
    ("GET", f"{ROOT}studies//{A}", {}, False),
    ("GET", f"{ROOT}series", {"StudyInstanceUID": A}, False),
    ("GET", f"{ROOT}instances", {"StudyInstanceUID": A}, False),
    ("GET", f"{ROOT}servers", {}, False),
    ("GET", "/system", {}, False),
    ("GET", "/patients", {}, False),
    ("GET", f"/dicom-web-other/studies/{A}", {}, False),
    ("POST", f"{ROOT}studies", {}, False),
    ("POST", f"{ROOT}studies/{A}", {}, False),
    ("DELETE", f"{ROOT}studies/{A}", {}, False),
    ("PUT", f"{ROOT}studies/{A}", {}, False),
])
def test_what_a_share_may_do(method: str, path: str, query: dict[str, str], granted: bool) -> None:
    decision = st.decide(GRANT, method, path, query, root=ROOT, now=NOW)
    assert decision.granted is granted, decision
    assert decision.validity == (st.MAX_VALIDITY if granted else 0)


def test_an_upload_share_stores_into_its_studies_only() -> None:
    upload = st.Grant("s1", frozenset({A}), NOW + 600, upload=True)
    assert st.decide(upload, "POST", f"{ROOT}studies/{A}", {}, now=NOW).granted
    assert not st.decide(upload, "POST", f"{ROOT}studies/{B}", {}, now=NOW).granted
    assert not st.decide(upload, "POST", f"{ROOT}studies", {}, now=NOW).granted
    assert not st.decide(upload, "POST", f"{ROOT}studies/{A}/series", {}, now=NOW).granted
    assert not st.decide(upload, "DELETE", f"{ROOT}studies/{A}", {}, now=NOW).granted


def test_the_whole_request_check(tmp_path: Path) -> None:
    admins = {"admin": st.hash_password("pw-pw-pw-pw-pw", b"s" * 16, rounds=1000)}
    check = authorizer(tmp_path, admins)
    admin = {"authorization": "Basic " + base64.b64encode(b"admin:pw-pw-pw-pw-pw").decode()}
    assert check.authorize("DELETE", "/patients/x", {}, admin).admin
    assert check.authorize("GET", f"{ROOT}studies/{A}/metadata", {}, bearer(token()), now=NOW).granted
    assert not check.authorize("GET", f"{ROOT}studies/{B}/metadata", {}, bearer(token()), now=NOW).granted
    assert check.authorize("GET", f"{ROOT}studies/{A}/metadata", {}, {}, now=NOW).reason == "no credentials"
    assert not check.authorize("GET", f"{ROOT}studies/{A}", {"token": token()}, {}, now=NOW).granted
    # the contract's endpoint is the one path a request without credentials reaches (the token is in its body)
    assert check.authorize("POST", st.Authorizer.CONTRACT_PATH, {}, {}).granted
    assert not check.authorize("GET", st.Authorizer.CONTRACT_PATH, {}, {}).granted
    assert not check.authorize("POST", st.Authorizer.CONTRACT_PATH + "x", {}, {}).granted


@pytest.mark.parametrize(("body", "granted"), [
    ({"level": "study", "method": "get", "dicom-uid": A}, True),
    ({"level": "study", "method": "get", "dicom-uid": B}, False),
    ({"level": "study", "method": "post", "dicom-uid": A}, False),
    ({"level": "system", "method": "get", "uri": f"{ROOT}studies?StudyInstanceUID={A}"}, True),
    ({"level": "system", "method": "get", "uri": f"{ROOT}studies?00100020=PAT"}, False),
    ({"level": "system", "method": "get", "uri": f"{ROOT}studies?StudyInstanceUID={A}&StudyInstanceUID={B}"}, False),
    ({"level": "system", "method": "get", "uri": "/system"}, False),
    ({"level": "series", "method": "get", "dicom-uid": A}, False),
    ({"level": "instance", "method": "get", "orthanc-id": "abc"}, False),
    ({"level": "study", "method": "get", "orthanc-id": "abc"}, False),
])
def test_the_advanced_authorization_contract(tmp_path: Path, body: dict[str, str], granted: bool) -> None:
    check = authorizer(tmp_path)
    answer = check.validate({**body, "token-key": "authorization", "token-value": f"Bearer {token()}"}, now=NOW)
    assert answer == ({"granted": True, "validity": st.MAX_VALIDITY} if granted else {"granted": False, "validity": 0})


def test_the_contract_refuses_bad_tokens_and_caps_validity(tmp_path: Path) -> None:
    check = authorizer(tmp_path)
    study = {"level": "study", "method": "get", "dicom-uid": A, "token-key": "authorization"}
    assert check.validate({**study, "token-value": ""}) == {"granted": False, "validity": 0}
    assert check.validate({**study, "token-value": token(exp=NOW - 1)}, now=NOW)["granted"] is False
    assert check.validate({**study, "token-value": token(exp=NOW + 20)}, now=NOW) == {"granted": True, "validity": 20}
    (tmp_path / "revoked.txt").write_text("s1\n")
    assert check.validate({**study, "token-value": token()}, now=NOW)["granted"] is False


def test_split_uri_keeps_every_repeated_key_and_encoded_values() -> None:
    path, query = st.split_uri(f"/dicom-web/studies%2Fx?StudyInstanceUID={A}&StudyInstanceUID={B}&x=1%2C2")
    assert path == "/dicom-web/studies/x"
    assert query == {"StudyInstanceUID": [A, B], "x": ["1%2C2"]}


DEBIAN_PYTHON = Path("/usr/bin/python3")


def test_the_module_runs_on_orthancs_python_and_pyjwt_26(tmp_path: Path) -> None:
    """Orthanc embeds Debian's Python with python3-jwt 2.6: the module must mint, verify and decide there, and
    accept what the venv's newer PyJWT signs (share runs here, the filter there)."""
    assert DEBIAN_PYTHON.is_file(), "Debian's python3 is missing"
    now = int(time.time())
    made_here = st.mint(KEY, [A], share_id="here", issued_at=now, expires_at=now + 600)
    script = f"""
import json, sys, time
import jwt, sharetoken as st
key = {KEY!r}
assert jwt.__version__.startswith("2."), jwt.__version__
grant = st.TokenVerifier(key, None).verify(sys.argv[1])
assert isinstance(grant, st.Grant), grant
now = int(time.time())
there = st.mint(key, ["{A}"], share_id="d", issued_at=now, expires_at=now + 60)
print(json.dumps({{"pyjwt": jwt.__version__, "decision": st.decide(grant, "GET", "/dicom-web/studies/{A}/metadata",
    {{}}).granted, "token": there}}))
"""
    env = {"PYTHONPATH": str(Path(st.__file__).parent), "PATH": "/usr/bin:/bin", "PYTHONNOUSERSITE": "1"}
    done = subprocess.run([str(DEBIAN_PYTHON), "-c", script, made_here], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["pyjwt"].startswith("2.6") and result["decision"] is True
    assert isinstance(st.TokenVerifier(KEY, None).verify(result["token"]), st.Grant)
