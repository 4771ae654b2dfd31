"""Reusable rules for plan values: regular expressions and `check_*` functions.

Every `check_*` function returns the (possibly normalised) value or raises `ValueError` with a message that
names the value and says what is expected. The plan models use them, and so can the CLI to validate flags
(e.g. `--viewer user:x`) with the same rules and messages.

The `*_RE` strings are written so that they mean the same in Python (`re.fullmatch`) and in JSON Schema
(ECMA-262 `pattern`): anchored with `^...$`, no look-arounds, no Python-only syntax.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlsplit

__all__ = [
    "APP_UNIQUE_NAME_RE",
    "AZURE_LOCATION_RE",
    "AZURE_TAG_KEY_RE",
    "CORS_ORIGIN_RE",
    "DATA_SOURCE_NAME_RE",
    "DICOM_SERVICE_NAME_RE",
    "DICOM_TAG_PATH_RE",
    "DOMAIN_RE",
    "EMAIL_RE",
    "ENV_NAME_RE",
    "GCP_DICOM_ROLES",
    "GCP_ID_RE",
    "GCP_LABEL_KEY_RE",
    "GCP_LABEL_VALUE_RE",
    "GCP_LOCATION_RE",
    "GCP_MEMBER_PREFIXES",
    "GCP_MEMBER_RE",
    "GCP_PROJECT_RE",
    "GCP_ROLE_OR_SHORT_RE",
    "GCP_ROLE_RE",
    "GOOGLE_OAUTH_CLIENT_ID_RE",
    "GUID_RE",
    "LOCAL_HTTP_HOSTS",
    "PLAN_NAME_RE",
    "PUBSUB_TOPIC_RE",
    "RESOURCE_GROUP_RE",
    "WORKSPACE_NAME_RE",
    "check_app_unique_name",
    "check_azure_location",
    "check_azure_tag_key",
    "check_azure_tag_value",
    "check_cors_origin",
    "check_data_source_name",
    "check_dicom_service_name",
    "check_dicom_tag_path",
    "check_email",
    "check_env_name",
    "check_gcp_id",
    "check_gcp_label_key",
    "check_gcp_label_value",
    "check_gcp_location",
    "check_gcp_member",
    "check_gcp_project",
    "check_gcp_role",
    "check_google_oauth_client_id",
    "check_guid",
    "check_https_url",
    "check_plan_name",
    "check_pubsub_topic",
    "check_redirect_uri",
    "check_resource_group",
    "check_viewer_url",
    "check_workspace_name",
    "origin_of",
    "split_http_url",
]

# --- building blocks -------------------------------------------------------------------------------------

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
#: a DNS host name (one or more labels; single-label names such as `localhost` or `viewer` allowed),
#: an IPv4 address (it matches the same rule) or a bracketed IPv6 address.
_HOST = rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:.]+\])"
_PORT = r"(?::[0-9]{1,5})?"

# --- identity of the plan ----------------------------------------------------------------------------------

PLAN_NAME_RE = r"^[a-z][a-z0-9-]{0,39}$"
ENV_NAME_RE = r"^[a-z0-9][a-z0-9-]{0,31}$"

# --- generic -------------------------------------------------------------------------------------------------

GUID_RE = r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"
#: a fully qualified domain name with at least two labels and an alphabetic top-level label.
DOMAIN_RE = rf"^(?:{_LABEL}\.)+[A-Za-z]{{2,63}}$"
#: an e-mail address or an Entra ID user principal name (guest UPNs contain `#EXT#`).
EMAIL_RE = rf"^[A-Za-z0-9.!#$%&'*+/=?^_`{{|}}~-]{{1,64}}@(?:{_LABEL}\.)+[A-Za-z]{{2,63}}$"
#: hosts on which plain http is accepted for the viewer and redirect URIs (Entra ID allows http only there).
LOCAL_HTTP_HOSTS = frozenset({"localhost", "127.0.0.1"})

# --- OHIF ------------------------------------------------------------------------------------------------------

DATA_SOURCE_NAME_RE = r"^[A-Za-z0-9_-]+$"

# --- Azure -----------------------------------------------------------------------------------------------------

AZURE_LOCATION_RE = r"^[a-z0-9]+$"
RESOURCE_GROUP_RE = r"^[-\w._()]{0,89}[-\w_()]$"
APP_UNIQUE_NAME_RE = r"^[A-Za-z0-9._-]{1,120}$"
WORKSPACE_NAME_RE = r"^[a-z0-9]{3,24}$"
DICOM_TAG_PATH_RE = r"^[0-9A-Fa-f]{8}$"
DICOM_SERVICE_NAME_RE = r"^[a-z0-9][a-z0-9-]{1,22}[a-z0-9]$"
#: the rule the DICOM service applies to each CORS origin: scheme://host[:port] or `*`.
CORS_ORIGIN_RE = rf"^(?:https?://{_HOST}{_PORT}|\*)$"
_AZURE_TAG_KEY_FORBIDDEN = "<>%&\\?/"
AZURE_TAG_KEY_RE = r"^[^<>%&\\?/]{1,512}$"

# --- Google Cloud ----------------------------------------------------------------------------------------------

GCP_PROJECT_RE = r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$"
GCP_LOCATION_RE = r"^[a-z]+(?:-[a-z]+[0-9]*)*$"
GCP_ID_RE = r"^[A-Za-z0-9_.-]{1,256}$"
GCP_LABEL_KEY_RE = r"^[a-z][a-z0-9_-]{0,62}$"
GCP_LABEL_VALUE_RE = r"^[a-z0-9_-]{0,63}$"
#: a predefined role (`roles/...`) or a custom role of a project or an organisation.
GCP_ROLE_RE = r"^(?:roles/[A-Za-z0-9_.]+|(?:projects|organizations)/[A-Za-z0-9_.-]+/roles/[A-Za-z0-9_.]+)$"
GCP_ROLE_OR_SHORT_RE = rf"^(?:viewer|editor|{GCP_ROLE_RE[1:-1]})$"
PUBSUB_TOPIC_RE = r"^projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/topics/[A-Za-z][A-Za-z0-9._~%+-]{2,254}$"
GOOGLE_OAUTH_CLIENT_ID_RE = r"^[A-Za-z0-9-]+\.apps\.googleusercontent\.com$"
#: short role names accepted in `gcp.access[].role`, and the IAM role each one stands for.
GCP_DICOM_ROLES = {"viewer": "roles/healthcare.dicomViewer", "editor": "roles/healthcare.dicomEditor"}
#: accepted IAM member prefixes and what follows each.
GCP_MEMBER_PREFIXES = {
    "user": "email",
    "group": "email",
    "serviceAccount": "email",
    "domain": "domain",
}
GCP_MEMBER_RE = rf"^(?:(?:user|group|serviceAccount):{EMAIL_RE[1:-1]}|domain:{DOMAIN_RE[1:-1]})$"


def _matches(pattern: str, value: str) -> bool:
    return re.fullmatch(pattern, value) is not None


def _pattern_check(pattern: str, expected: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not _matches(pattern, value):
            raise ValueError(f"{value!r} must be {expected}")
        return value

    check.__doc__ = f"Accept a value that is {expected}."
    return check


check_plan_name = _pattern_check(
    PLAN_NAME_RE, "1-40 characters: a lower-case letter, then lower-case letters, digits or '-'"
)
check_env_name = _pattern_check(
    ENV_NAME_RE, "1-32 characters: lower-case letters, digits or '-', not starting with '-'"
)
check_data_source_name = _pattern_check(DATA_SOURCE_NAME_RE, "letters, digits, '_' or '-'")
check_azure_location = _pattern_check(
    AZURE_LOCATION_RE, "an Azure region name in lower case without spaces, e.g. 'westeurope'"
)
check_app_unique_name = _pattern_check(APP_UNIQUE_NAME_RE, "1-120 characters: letters, digits, '.', '_' or '-'")
check_workspace_name = _pattern_check(
    WORKSPACE_NAME_RE, "3-24 lower-case letters or digits (no '-': Azure Health Data Services workspace name)"
)
check_dicom_tag_path = _pattern_check(
    DICOM_TAG_PATH_RE, 'a DICOM tag as 8 hex digits, e.g. "00101010" (quoted: YAML reads plain digits as a number)'
)
check_dicom_service_name = _pattern_check(
    DICOM_SERVICE_NAME_RE,
    "3-24 characters: lower-case letters, digits or '-', starting and ending with a letter or digit",
)
check_gcp_project = _pattern_check(
    GCP_PROJECT_RE,
    "a Google Cloud project id: 6-30 characters, lower-case letters, digits or '-', "
    "starting with a letter and not ending with '-'",
)
check_gcp_location = _pattern_check(GCP_LOCATION_RE, "a Google Cloud location such as 'us-central1' or 'us'")
check_gcp_id = _pattern_check(GCP_ID_RE, "1-256 characters: letters, digits, '_', '.' or '-'")
check_gcp_label_key = _pattern_check(
    GCP_LABEL_KEY_RE, "a label key: 1-63 characters, a lower-case letter then lower-case letters, digits, '_' or '-'"
)
check_gcp_label_value = _pattern_check(GCP_LABEL_VALUE_RE, "a label value: 0-63 lower-case letters, digits, '_' or '-'")
check_pubsub_topic = _pattern_check(PUBSUB_TOPIC_RE, "a Pub/Sub topic name 'projects/PROJECT/topics/TOPIC'")
check_google_oauth_client_id = _pattern_check(
    GOOGLE_OAUTH_CLIENT_ID_RE, "a Google OAuth client id ending with '.apps.googleusercontent.com'"
)


def check_guid(value: str) -> str:
    """Accept a GUID (an Entra ID object id, tenant or subscription id) and return it in lower case."""
    if not _matches(GUID_RE, value):
        raise ValueError(f"{value!r} must be a GUID such as '3f2504e0-4f89-11d3-9a0c-0305e82c3301'")
    return value.lower()


def check_email(value: str) -> str:
    """Accept an e-mail address or a user principal name (name@domain)."""
    if not _matches(EMAIL_RE, value):
        raise ValueError(f"{value!r} must be an e-mail address or user principal name such as 'alice@contoso.com'")
    return value


def check_resource_group(value: str) -> str:
    """Accept an Azure resource group name: 1-90 of letters, digits, `-_.()`, not ending with '.'."""
    if len(value) > 90 or not _matches(RESOURCE_GROUP_RE, value):
        raise ValueError(
            f"{value!r} must be 1-90 characters: letters, digits, '-', '_', '.', '(' or ')', not ending with '.'"
        )
    return value


def check_azure_tag_key(value: str) -> str:
    """Accept an Azure tag name: 1-512 characters without any of `<>%&\\?/`."""
    if not _matches(AZURE_TAG_KEY_RE, value):
        raise ValueError(f"tag name {value!r} must be 1-512 characters without any of {_AZURE_TAG_KEY_FORBIDDEN}")
    return value


def check_azure_tag_value(value: str) -> str:
    """Accept an Azure tag value: at most 256 characters."""
    if len(value) > 256:
        raise ValueError(f"tag value {value[:20]!r}... must be at most 256 characters")
    return value


def check_gcp_member(value: str) -> str:
    """Accept an IAM member `user:`/`group:`/`serviceAccount:` + e-mail or `domain:` + domain."""
    prefix, sep, rest = value.partition(":")
    kind = GCP_MEMBER_PREFIXES.get(prefix) if sep else None
    accepted = ", ".join(f"{p}:{k}" for p, k in GCP_MEMBER_PREFIXES.items())
    if kind is None:
        raise ValueError(f"{value!r} is not an accepted IAM member; use one of {accepted}")
    pattern = EMAIL_RE if kind == "email" else DOMAIN_RE
    if not _matches(pattern, rest):
        expected = "an e-mail address" if kind == "email" else "a domain name"
        raise ValueError(f"{value!r}: {rest!r} after '{prefix}:' must be {expected}")
    return value


def check_gcp_role(value: str) -> str:
    """Accept `viewer`, `editor` or a full IAM role name; return the full role name."""
    if value in GCP_DICOM_ROLES:
        return GCP_DICOM_ROLES[value]
    if not _matches(GCP_ROLE_RE, value):
        raise ValueError(
            f"{value!r} must be 'viewer', 'editor' or a full role name such as 'roles/healthcare.dicomViewer'"
        )
    return value


# --- URLs ------------------------------------------------------------------------------------------------------


def split_http_url(value: str, what: str) -> tuple[str, str, int | None]:
    """Split an absolute http(s) URL into (scheme, host, port) or raise ValueError naming `what`."""
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise ValueError(f"{value!r} is not a valid {what}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{value!r} must be an absolute http(s) URL")
    if "@" in parts.netloc:
        raise ValueError(f"{value!r} must not contain user information")
    host = (parts.hostname or "").lower()
    if not _matches(rf"^{_HOST}$", f"[{host}]" if ":" in host else host):
        raise ValueError(f"{value!r} has an invalid host name")
    if port == 0:
        raise ValueError(f"{value!r} has an invalid port")
    return scheme, host, port


def _require_https_unless_local(value: str, scheme: str, host: str) -> None:
    if scheme == "http" and host not in LOCAL_HTTP_HOSTS:
        raise ValueError(f"{value!r} must use https; http is allowed only for localhost and 127.0.0.1")


def origin_of(url: str) -> str:
    """`scheme://host[:port]` of an http(s) URL, lower-cased, without the scheme's default port.

    This is what a browser sends as `Origin`, so it is what a CORS rule must list.
    """
    scheme, host, port = split_http_url(url, "URL")
    if ":" in host:  # IPv6
        host = f"[{host}]"
    default = {"http": 80, "https": 443}[scheme]
    return f"{scheme}://{host}" + (f":{port}" if port is not None and port != default else "")


def check_viewer_url(value: str) -> str:
    """Accept the URL OHIF is served at (https, or http on localhost); return it without a trailing '/'."""
    scheme, host, _ = split_http_url(value, "viewer URL")
    _require_https_unless_local(value, scheme, host)
    parts = urlsplit(value)
    if parts.query or parts.fragment or value.endswith(("?", "#")):
        raise ValueError(f"{value!r} must not have a query or a fragment")
    return value.rstrip("/")


def check_redirect_uri(value: str) -> str:
    """Accept an OAuth redirect URI: https, or http only on localhost/127.0.0.1; no fragment."""
    scheme, host, _ = split_http_url(value, "redirect URI")
    _require_https_unless_local(value, scheme, host)
    if "#" in value:
        raise ValueError(f"{value!r} must not contain a fragment ('#...')")
    return value


def check_https_url(value: str) -> str:
    """Accept an absolute https URL (cloud endpoints)."""
    scheme, _, _ = split_http_url(value, "https URL")
    if scheme != "https":
        raise ValueError(f"{value!r} must use https")
    return value


def check_cors_origin(value: str) -> str:
    """Accept a CORS origin for the Azure DICOM service: scheme://host[:port] or '*'."""
    if not _matches(CORS_ORIGIN_RE, value):
        raise ValueError(f"{value!r} must be scheme://host[:port] with no path or trailing slash, or '*'")
    if value != "*":
        split_http_url(value, "CORS origin")  # port range
    return value
