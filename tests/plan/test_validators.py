"""The reusable value rules, as the CLI would call them for flags."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from provision.plan import validators as v


@pytest.mark.parametrize(
    ("check", "good"),
    [
        (v.check_plan_name, ["ohif-demo", "a", "a" * 40]),
        (v.check_env_name, ["default", "pr-42", "42", "a" * 32]),
        (v.check_workspace_name, ["ohifws", "abc", "ohifpr42", "a" * 24]),
        (v.check_dicom_service_name, ["ohif-dicom", "pr-42", "abc", "a" * 24]),
        (v.check_resource_group, ["rg-ohif", "rg_(ohif).1", "a" * 90, "Résumé"]),
        (v.check_app_unique_name, ["ohif-viewer", "ohif.viewer_1"]),
        (v.check_guid, ["3f2504e0-4f89-11d3-9a0c-0305e82c3301"]),
        (v.check_email, ["alice@contoso.com", "alice@contoso.onmicrosoft.com", "a_b.com#EXT#@t.onmicrosoft.com"]),
        (
            v.check_gcp_member,
            [
                "user:a@example.org",
                "group:g@example.org",
                "domain:example.org",
                "serviceAccount:sa@p.iam.gserviceaccount.com",
            ],
        ),
        (v.check_gcp_project, ["sandbox-project", "abcdef"]),
        (v.check_gcp_location, ["us-central1", "us", "europe-west4", "northamerica-northeast1"]),
        (v.check_gcp_id, ["ohif", "main.store_1-a"]),
        (v.check_gcp_label_key, ["team", "a-b_c"]),
        (v.check_gcp_label_value, ["", "imaging", "v1"]),
        (v.check_pubsub_topic, ["projects/sandbox-project/topics/dicom-events"]),
        (v.check_google_oauth_client_id, ["000000000000-sandbox.apps.googleusercontent.com"]),
        (v.check_cors_origin, ["*", "https://a.org", "http://localhost:3000", "https://10.0.0.1:8443"]),
        (
            v.check_redirect_uri,
            ["https://a.org/callback", "http://localhost:3000/callback", "http://127.0.0.1/cb", "https://a.org/cb?x=1"],
        ),
        (v.check_viewer_url, ["https://a.org", "https://a.org/ohif/", "http://localhost:3000"]),
        (v.check_azure_tag_key, ["team", "cost center"]),
    ],
)
def test_accepts(check: Callable[[str], str], good: list[str]) -> None:
    for value in good:
        check(value)


@pytest.mark.parametrize(
    ("check", "bad", "fragment"),
    [
        (v.check_plan_name, ["Ohif", "1ohif", "", "a" * 41, "ohif_demo"], "must be 1-40 characters"),
        (v.check_env_name, ["-pr", "PR-1", "a" * 33], "must be 1-32 characters"),
        (v.check_workspace_name, ["ohif-ws", "ab", "OHIFWS", "a" * 25], "3-24 lower-case letters or digits"),
        (v.check_dicom_service_name, ["-ohif", "ohif-", "ab", "Ohif", "a" * 25], "3-24 characters"),
        (v.check_resource_group, ["rg.", "", "a" * 91, "rg/ohif"], "not ending with '.'"),
        (v.check_guid, ["3f2504e0-4f89-11d3-9a0c", "{3f2504e0-4f89-11d3-9a0c-0305e82c3301}", "x"], "must be a GUID"),
        (v.check_email, ["alice", "alice@", "@contoso.com", "alice@localhost", "a b@c.com"], "must be an e-mail"),
        (
            v.check_gcp_member,
            ["alice@example.org", "allUsers", "allAuthenticatedUsers", "principal:x", "deleted:user:a@b.org"],
            "use one of user:email, group:email, serviceAccount:email",
        ),
        (v.check_gcp_member, ["user:bob", "domain:localhost", "domain:a@b.org"], "after '"),
        (v.check_gcp_role, ["owner", "healthcare.dicomViewer", "roles/"], "must be 'viewer', 'editor'"),
        (v.check_gcp_label_key, ["Team", "1team", "a" * 64], "must be a label key"),
        (v.check_gcp_label_value, ["Imaging", "a b", "a" * 64], "must be a label value"),
        (v.check_google_oauth_client_id, ["1234", "x.apps.googleusercontent.com.evil.org"], "ending with"),
        (
            v.check_cors_origin,
            ["https://a.org/", "https://a.org/ohif", "a.org", "https://a.org:8443/", "ftp://a.org"],
            "no path or trailing slash",
        ),
        (v.check_cors_origin, ["https://a.org:99999"], "not a valid"),
        (v.check_redirect_uri, ["http://a.org/callback", "http://10.0.0.1/cb"], "must use https"),
        (v.check_redirect_uri, ["https://a.org/#frag"], "fragment"),
        (v.check_redirect_uri, ["/callback", "callback", "custom://cb"], "absolute http(s) URL"),
        (v.check_redirect_uri, ["https://user:pw@a.org/cb"], "user information"),
        (v.check_redirect_uri, ["https://a_b.org/cb", "https://a..b/cb"], "host"),
        (v.check_redirect_uri, ["https:///cb"], "absolute"),
        (v.check_viewer_url, ["http://viewer.example.org"], "must use https"),
        (v.check_viewer_url, ["https://a.org/?x=1", "https://a.org/#x"], "query or a fragment"),
        (v.check_https_url, ["http://management.azure.com"], "must use https"),
        (v.check_azure_tag_key, ["a/b", "a<b", "a%b", "a\\b", "a?b", "", "k" * 513], "without any of"),
        (v.check_azure_tag_value, ["v" * 257], "at most 256"),
    ],
)
def test_rejects_with_a_message(check: Callable[[str], str], bad: list[str], fragment: str) -> None:
    for value in bad:
        with pytest.raises(ValueError) as caught:
            check(value)
        assert fragment in str(caught.value), (value, str(caught.value))


def test_checks_return_normalised_values() -> None:
    assert v.check_guid("3F2504E0-4F89-11D3-9A0C-0305E82C3301") == "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
    assert v.check_gcp_role("viewer") == "roles/healthcare.dicomViewer"
    assert v.check_gcp_role("editor") == "roles/healthcare.dicomEditor"
    assert v.check_viewer_url("https://a.org/ohif/") == "https://a.org/ohif"
    assert v.origin_of("HTTPS://A.org:443/x") == "https://a.org"
    assert v.origin_of("http://[::1]:3000/") == "http://[::1]:3000"


@pytest.mark.parametrize(
    ("pattern", "value", "ok"),
    [
        (v.CORS_ORIGIN_RE, "https://a.org", True),
        (v.CORS_ORIGIN_RE, "https://a.org/", False),
        (v.GCP_MEMBER_RE, "user:a@example.org", True),
        (v.GCP_MEMBER_RE, "allUsers", False),
        (v.GUID_RE, "3f2504e0-4f89-11d3-9a0c-0305e82c3301", True),
        (v.RESOURCE_GROUP_RE, "rg.", False),
        (v.GCP_ROLE_OR_SHORT_RE, "viewer", True),
        (v.GCP_ROLE_OR_SHORT_RE, "owner", False),
    ],
)
def test_exported_patterns(pattern: str, value: str, ok: bool) -> None:
    assert (re.fullmatch(pattern, value) is not None) is ok
