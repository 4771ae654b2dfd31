"""How each target's STOW answers are read, instance by instance, and how tokens are refreshed (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pydicom
import pytest

from provision.azure.dataplane import classify as classify_azure
from provision.dicom.dicomweb import BearerToken, StowAnswer, classify_standard
from provision.gcp.dataplane import classify as classify_google


def item(uid: str | None, reason: int | None = None, warning: int | None = None,
         detail: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if uid:
        found["00081155"] = {"vr": "UI", "Value": [uid]}
    if reason is not None:
        found["00081197"] = {"vr": "US", "Value": [reason]}
    if warning is not None:
        found["00081196"] = {"vr": "US", "Value": [warning]}
    if detail is not None:
        found["00090097"] = {"vr": "LO", "Value": [detail]}
    return found


def answer(status: int, stored: Sequence[dict[str, Any]] = (), failed: Sequence[dict[str, Any]] = ()) -> StowAnswer:
    body: dict[str, Any] = {}
    if stored:
        body["00081199"] = {"vr": "SQ", "Value": list(stored)}
    if failed:
        body["00081198"] = {"vr": "SQ", "Value": list(failed)}
    return StowAnswer(status, pydicom.Dataset.from_json(body))


def outcome(result: Any) -> tuple[list[str], list[str], dict[str, str]]:
    return sorted(result.stored), sorted(result.present), dict(sorted(result.failed.items()))


@pytest.mark.parametrize(
    ("answered", "expected"),
    [
        (answer(200, [item("1"), item("2")]), (["1", "2"], [], {})),
        # 202 in v2: stored with a validation warning is stored
        (answer(202, [item("1", warning=45063), item("2")]), (["1", "2"], [], {})),
        # conformance v2 "Store Failure Reason Codes": 45070 = the same Study/Series/SOP is stored already
        (answer(409, failed=[item("1", 45070), item("2", 45070)]), ([], ["1", "2"], {})),
        (answer(202, [item("2")], [item("1", 45070)]), (["2"], ["1"], {})),
        (answer(202, [item("2")], [item("1", 43264)]), (["2"], [], {"1": "FailureReason 43264 (data set does not "
                                                                       "match SOP class)"})),
        # a part Azure could not read comes back without UIDs: the instance the answer does not name failed so
        (answer(409, failed=[item(None, 43264)]), ([], [], {"1": "FailureReason 43264 (data set does not match SOP "
                                                                 "class)", "2": "FailureReason 43264 (data set "
                                                                 "does not match SOP class)"})),
        (StowAnswer(400, pydicom.Dataset(), "bad request"), ([], [], {"1": "HTTP 400: not in the STOW response "
                                                                           "(bad request)",
                                                                      "2": "HTTP 400: not in the STOW response "
                                                                           "(bad request)"})),
    ],
    ids=["all-stored", "warning", "all-present", "mixed", "one-invalid", "unreadable-part", "no-dataset"],
)
def test_azure_answers(answered: StowAnswer, expected: Any) -> None:
    assert outcome(classify_azure(answered, ["1", "2"])) == expected


def test_an_answer_about_something_not_sent_is_ignored() -> None:
    assert outcome(classify_azure(answer(200, [item("1"), item("9")]), ["1"])) == (["1"], [], {})


def test_google_answers() -> None:
    # different bytes under the same UIDs: 409, 272 and the FailureDetail "already exists" -> already present
    duplicate = answer(409, failed=[item("1", 272, detail="an instance ... already exists with different content")])
    assert outcome(classify_google(duplicate, ["1"])) == ([], ["1"], {})
    other = answer(202, [item("2")], [item("1", 272)])
    assert outcome(classify_google(other, ["1", "2"])) == (["2"], [], {"1": "FailureReason 272 (processing "
                                                                            "failure)"})


def test_the_standard_reading_knows_no_duplicates() -> None:
    assert outcome(classify_standard(answer(409, failed=[item("1", 45070)]), ["1"])) == (
        [], [], {"1": "FailureReason 45070 (already stored)"})


def test_the_token_is_fetched_once_and_again_before_it_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    fetched: list[float] = []

    def source() -> tuple[str, float]:
        fetched.append(now[0])
        return f"token-{len(fetched)}", now[0] + 3600

    monkeypatch.setattr("provision.dicom.dicomweb.time.time", lambda: now[0])
    auth = BearerToken(source)
    assert auth.token() == "token-1" and auth.token() == "token-1"
    now[0] += 3600 - 301  # a little more than five minutes before it expires: still the same
    assert auth.token() == "token-1"
    now[0] += 2  # within five minutes of its expiry: a new one
    assert auth.token() == "token-2"
    auth.invalidate("token-1")  # a 401 about an old token changes nothing
    assert auth.token() == "token-2"
    auth.invalidate("token-2")  # a 401 about the current one: fetched again
    assert auth.token() == "token-3" and auth.fetched == 3
