"""Names built from `${VAR}` made to fit their cloud's rules, deterministically.

A plan for pull-request environments writes names such as `ohifpr${PR_NUMBER}`. Any PR number works as long as
the result stays within the cloud's rule (a Health Data Services workspace name has at most 24 lower-case
letters or digits); beyond that the plan would be refused, and a value such as a branch name may also carry
characters the rule does not allow. So a name field whose value came (partly) from interpolation and breaks its
rule is rewritten here, before validation:

1. lower-cased where the rule allows only lower case;
2. each run of characters the rule does not allow becomes '-' (or is dropped where '-' is not allowed);
3. cut so that, with the separator, a hash fits, without a separator at either end of the kept part;
4. followed by the first 6 characters (base32, lower case) of the SHA-256 of the whole interpolated value.

Names that already fit are never touched, so `ohifpr42` stays `ohifpr42`; literal names (no `${`) are never
touched either, so a typo is still reported at its line and column. The same input always gives the same name
(apply and destroy find the same resources), and two inputs that differ give different names unless their
hashes collide (30 bits); even then the second environment would meet the first's ownership tags and stop
instead of touching it.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from provision.plan import validators as v

__all__ = ["HASH_LENGTH", "NAME_RULES", "NameRule", "fit_interpolated", "fit_name", "short_hash"]

HASH_LENGTH = 6

KeyPath = tuple[str | int, ...]


def short_hash(text: str, length: int = HASH_LENGTH) -> str:
    """Lower-case base32 (letters and digits 2-7) of the SHA-256 of `text`, cut to `length` characters."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return base64.b32encode(digest).decode("ascii").lower().rstrip("=")[:length]


@dataclass(frozen=True)
class NameRule:
    """What a cloud accepts for one kind of name, and how to make a value fit."""

    what: str
    #: the full rule (a regular expression the value must match)
    pattern: str
    max_length: int
    #: the characters allowed, as the body of a regular-expression character class
    allowed: str
    #: the rule allows only lower case
    lower: bool = True
    #: between the kept text and the hash
    join: str = "-"
    #: characters the kept text must neither start nor end with
    strip: str = "-"
    #: what a run of characters the rule does not allow becomes
    replace: str = "-"

    def accepts(self, value: str) -> bool:
        return len(value) <= self.max_length and re.fullmatch(self.pattern, value) is not None


def fit_name(value: str, rule: NameRule) -> str:
    """`value` if the rule accepts it, else its deterministic rewrite (see the module docstring)."""
    if rule.accepts(value):
        return value
    text = value.lower() if rule.lower else value
    cleaned = re.sub(f"[^{rule.allowed}]+", rule.replace, text)
    digest = short_hash(value)
    room = rule.max_length - len(digest) - len(rule.join)
    head = cleaned[:room].strip(rule.strip) if rule.strip else cleaned[:room]
    fitted = f"{head}{rule.join}{digest}" if head else digest
    if not rule.accepts(fitted):  # pragma: no cover - every rule below is built so that this cannot happen
        raise ValueError(f"cannot fit {value!r} to the {rule.what} rule")
    return fitted


_ANY = r"\s\S"

#: name fields (key paths; "*" matches any list index or mapping key) and their cloud's rule
NAME_RULES: tuple[tuple[KeyPath, NameRule], ...] = (
    (("env",), NameRule("environment name", v.ENV_NAME_RE, 32, "a-z0-9-")),
    (
        ("azure", "resource_group", "name"),
        NameRule("resource group name", v.RESOURCE_GROUP_RE, 90, r"\w.()-", lower=False, strip="."),
    ),
    (
        ("azure", "app", "unique_name"),
        NameRule("app uniqueName", v.APP_UNIQUE_NAME_RE, 120, "A-Za-z0-9._-", lower=False),
    ),
    (("azure", "app", "display_name"), NameRule("app display name", r".+", 256, _ANY, lower=False, strip=" ")),
    (
        ("azure", "workspace", "name"),
        NameRule("workspace name", v.WORKSPACE_NAME_RE, 24, "a-z0-9", join="", strip="", replace=""),
    ),
    (("azure", "dicom", "name"), NameRule("DICOM service name", v.DICOM_SERVICE_NAME_RE, 24, "a-z0-9-")),
    (("azure", "tags", "*"), NameRule("tag value", r"[\s\S]*", 256, _ANY, lower=False, strip="")),
    (("gcp", "dataset", "id"), NameRule("dataset id", v.GCP_ID_RE, 256, "A-Za-z0-9_.-", lower=False)),
    (("gcp", "dicom_stores", "*", "id"), NameRule("DICOM store id", v.GCP_ID_RE, 256, "A-Za-z0-9_.-", lower=False)),
    (("gcp", "access", "*", "store"), NameRule("DICOM store id", v.GCP_ID_RE, 256, "A-Za-z0-9_.-", lower=False)),
    (
        ("gcp", "dicom_stores", "*", "labels", "*"),
        NameRule("label value", v.GCP_LABEL_VALUE_RE, 63, "a-z0-9_-", strip=""),
    ),
)


def _rule_for(path: KeyPath) -> NameRule | None:
    for pattern, rule in NAME_RULES:
        if len(pattern) == len(path) and all(p == "*" or p == part for p, part in zip(pattern, path, strict=True)):
            return rule
    return None


def _child(parent: Any, part: str | int) -> tuple[bool, Any]:
    """(True, child) when `parent` has `part` (a mapping key or a list index), else (False, None)."""
    if isinstance(parent, Mapping) and isinstance(part, str) and part in parent:
        return True, parent[part]
    if isinstance(parent, list) and isinstance(part, int) and 0 <= part < len(parent):
        return True, parent[part]
    return False, None


def fit_interpolated(data: Any, interpolated: Iterable[KeyPath]) -> Any:
    """Rewrite, in the plain plan data, the name fields among `interpolated` (paths of values that contained
    `${...}`) that break their rule. Returns `data` (changed in place)."""
    for path in interpolated:
        rule = _rule_for(path)
        if rule is None or not path:
            continue
        parent: Any = data
        for part in path[:-1]:
            found, parent = _child(parent, part)
            if not found:
                break
        found, value = _child(parent, path[-1])
        if found and isinstance(value, str):
            parent[path[-1]] = fit_name(value, rule)
    return data
