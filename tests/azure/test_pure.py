"""Pure parts of the Azure target: normalisers on recorded bodies, desired state vs actual through the engine's
diff, ownership marks and names, error classification, the polling schedule, the resource graph, OHIF output.
No network, no SDK client."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from provision.azure import AzureSession, normalise
from provision.azure.clouds import Cloud, resolve_cloud, sandbox_cloud
from provision.azure.errors import (
    AzureCloudError,
    AzureTemporaryError,
    classify,
    retry_after_seconds,
)
from provision.azure.ownership import Owner, assignment_name
from provision.azure.resources import (
    Application,
    Azure,
    DicomService,
    RoleAssignment,
    build_resources,
)
from provision.azure.resources.arm import declared_cors
from provision.azure.resources.entra import app_spec
from provision.core import UNKNOWN, Context, NoOp, Replace, Update, diff
from provision.errors import ConfigurationError, ProvisionError
from provision.plan import load_plan, parse_plan

# the published examples, as copied into the repository (tests/sandbox/specs/azure/SOURCES.md)
SPECS = Path(__file__).resolve().parents[1] / "sandbox" / "specs" / "azure"
HEALTH = SPECS / "healthcareapis" / "stable" / "2024-03-31" / "examples"
AUTHZ = SPECS / "authorization" / "stable" / "2022-04-01" / "examples"
PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
OWNER = Owner("ohif-demo", "default")


def example(path: Path, status: str = "200") -> dict[str, Any]:
    return dict(json.loads(path.read_text())["responses"][status]["body"])


def ctx(outputs: dict[str, dict[str, Any]] | None = None) -> Context:
    return Context("test", outputs or {}, lambda _address, _message: None)


# --- normalisers on the published examples ---------------------------------------------------------------


def test_dicom_service_from_the_get_example() -> None:
    body = example(HEALTH / "dicomservices" / "DicomServices_Get.json")
    assert normalise.dicom_service(body) == {
        "id": body["id"],
        "name": "blue",
        "location": None,
        "tags": {},
        "provisioning_state": "Succeeded",
        "modified_at": None,  # the example carries no systemData
        "service_url": "https://workspace1-blue.dicom.azurehealthcareapis.com",
        "cors": {
            "origins": ["*"],
            "headers": ["*"],
            "methods": ["DELETE", "GET", "OPTIONS", "PATCH", "POST", "PUT"],
            "max_age": 1440,
            "allow_credentials": False,
        },
        "authority": "https://login.microsoftonline.com/abfde7b2-df0f-47e6-aabf-2462b07508dc",
        "audiences": ["https://azurehealthcareapis.com", "https://azurehealthcareapis.com/"],
    }


def test_dicom_service_still_creating_has_no_url_and_empty_cors() -> None:
    body = example(HEALTH / "dicomservices" / "DicomServices_Create.json", "201")
    service = normalise.dicom_service(body)
    assert (service["provisioning_state"], service["service_url"], service["location"]) == (
        "Creating", None, "westus"
    )
    assert service["cors"] == {
        "origins": [], "headers": [], "methods": [], "max_age": None, "allow_credentials": False,
    }


def test_dicom_service_composite_name_and_echoed_empty_cors() -> None:
    """Real traffic: name "{ws}/{dicom}", and `properties: {}` echoed with empty CORS lists."""
    body = {
        "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.HealthcareApis/workspaces/ws/dicomservices/d",
        "name": "ws/d",
        "location": "West Europe",
        "properties": {
            "corsConfiguration": {"origins": [], "headers": [], "methods": [], "maxAge": None,
                                  "allowCredentials": False},
            "serviceUrl": "",
        },
    }
    service = normalise.dicom_service(body)
    assert (service["name"], service["location"], service["service_url"]) == ("d", "westeurope", None)


def test_workspace_and_role_assignment_from_the_examples() -> None:
    workspace = normalise.workspace(example(HEALTH / "workspaces" / "Workspaces_Get.json"))
    assert (workspace["name"], workspace["location"], workspace["tags"]) == ("workspace1", "westus", {})
    assignment = normalise.role_assignment(example(AUTHZ / "RoleAssignments_Get.json"))
    assert assignment == {
        "id": "/subscriptions/a925f2f7-5c63-4b7b-8799-25a5f97bc3b2/providers/Microsoft.Authorization/"
        "roleAssignments/b0f43c54-e787-4862-89b1-a653fa9cf747",
        "name": "b0f43c54-e787-4862-89b1-a653fa9cf747",
        "scope": "/subscriptions/a925f2f7-5c63-4b7b-8799-25a5f97bc3b2",
        "principal_id": "ce2ce14e-85d7-4629-bdbc-454d0519d987",
        "principal_type": "User",
        "role_definition_id": "/providers/Microsoft.Authorization/roleDefinitions/0b5fe924-9a61-425c-96af-cfe6e287ca2d",
        "role_definition": "0b5fe924-9a61-425c-96af-cfe6e287ca2d",
        "description": None,
    }


def test_application_from_a_graph_body_in_any_order() -> None:
    body = {
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#applications/$entity",
        "id": "obj",
        "appId": "app",
        "uniqueName": "ohif-viewer",
        "displayName": "OHIF Viewer",
        "signInAudience": "AzureADandPersonalMicrosoftAccount",
        "spa": {"redirectUris": ["https://b/callback", "https://a/callback"]},
        "web": {"redirectUris": [], "logoutUrl": None,
                "implicitGrantSettings": {"enableIdTokenIssuance": False, "enableAccessTokenIssuance": False}},
        "requiredResourceAccess": [
            {"resourceAppId": "00000003-0000-0000-c000-000000000000",
             "resourceAccess": [{"id": "E1FE6DD8-BA31-4D61-89E7-88639DA4683D", "type": "Scope"}]},
            {"resourceAppId": normalise.DICOM_API_APP_ID,
             "resourceAccess": [{"id": "e69ab058-b8ae-4c0f-b687-5d97888ddccb", "type": "Scope"}]},
        ],
        "tags": ["provision-env:default", "provision-plan:ohif-demo"],
    }
    app = normalise.application(body)
    assert app["spa_redirect_uris"] == ["https://a/callback", "https://b/callback"]
    assert app["permissions"] == [
        "00000003-0000-0000-c000-000000000000/e1fe6dd8-ba31-4d61-89e7-88639da4683d/scope",
        f"{normalise.DICOM_API_APP_ID}/e69ab058-b8ae-4c0f-b687-5d97888ddccb/scope",
    ]
    assert OWNER.owns_graph_tags(app["tags"])


def test_service_principal_scopes_and_grant_scopes() -> None:
    principal = normalise.service_principal({
        "id": "sp", "appId": normalise.DICOM_API_APP_ID,
        "oauth2PermissionScopes": [{"id": "E69AB058-B8AE-4C0F-B687-5D97888DDCCB", "value": "Dicom.ReadWrite"}],
    })
    assert principal["scopes"] == {"Dicom.ReadWrite": "e69ab058-b8ae-4c0f-b687-5d97888ddccb"}
    grant = normalise.permission_grant({
        "id": "g", "clientId": "c", "resourceId": "r", "consentType": "AllPrincipals",
        "scope": " user_impersonation Dicom.ReadWrite",
    })
    assert grant["scopes"] == ["Dicom.ReadWrite", "user_impersonation"]


@pytest.mark.parametrize(("given", "expected"), [("West Europe", "westeurope"), ("westeurope", "westeurope"),
                                                 ("  East US 2 ", "eastus2"), (None, None)])
def test_location_is_canonical(given: str | None, expected: str | None) -> None:
    assert normalise.location(given) == expected


def test_scopes_compare_case_insensitively() -> None:
    assert normalise.same_scope("/subscriptions/A/resourceGroups/RG", "subscriptions/a/resourcegroups/rg/")
    assert not normalise.same_scope("/subscriptions/a/resourceGroups/rg", "/subscriptions/a/resourceGroups/rg2")


# --- desired vs actual through the engine's diff -------------------------------------------------------------


def _azure() -> Azure:
    return Azure(owner=OWNER, location="westeurope", tags={"team": "imaging"})


def _dicom(cors: dict[str, Any] | None) -> DicomService:
    return DicomService(_azure(), "d", resource_group="rg", workspace="ws", workspace_address="azure.workspace[ws]",
                        cors=cors)


def _actual_dicom(**cors: Any) -> dict[str, Any]:
    base = {"origins": ["*"], "headers": ["*"], "methods": ["DELETE", "GET", "OPTIONS", "PATCH", "POST", "PUT"],
            "max_age": 1440, "allow_credentials": False}
    return {"location": "westeurope", "cors": {**base, **cors},
            "tags": {"team": "imaging", "provision-plan": "ohif-demo", "provision-env": "default",
                     "provision-created": "2026-01-01T00:00:00Z", "cost-center": "42"}}


def test_server_defaults_and_reordered_lists_are_not_drift() -> None:
    resource = _dicom({"origins": ["http://localhost:3000"], "methods": ["GET", "OPTIONS", "POST", "PUT", "DELETE"]})
    actual = _actual_dicom(origins=["http://localhost:3000"], methods=["put", "post", "options", "get", "delete"])
    action = diff(resource.desired(ctx()), actual, resource.schema)
    assert isinstance(action, NoOp)


def test_only_declared_cors_fields_are_compared() -> None:
    resource = _dicom({"origins": ["http://localhost:3000"]})
    action = diff(resource.desired(ctx()), _actual_dicom(max_age=5, headers=["x"]), resource.schema)
    assert isinstance(action, Update)
    assert [(c.path, c.before, c.after) for c in action.changes] == [
        ("cors.origins", ["*"], ["http://localhost:3000"])
    ]


def test_a_new_location_replaces_the_service() -> None:
    resource = _dicom(None)
    action = diff(resource.desired(ctx()), {**_actual_dicom(), "location": "northeurope"}, resource.schema)
    assert isinstance(action, Replace)
    assert action.reasons == ("location cannot be changed in place",)


def test_declared_cors_keeps_only_what_the_plan_says() -> None:
    cors = SimpleNamespace(origins=("https://v",), headers=None, methods=("GET",), max_age=0, allow_credentials=None)
    assert declared_cors(cors) == {"origins": ["https://v"], "methods": ["GET"], "max_age": 0}
    assert declared_cors(None) is None


def _app(**fields: Any) -> SimpleNamespace:
    values = {"unique_name": "ohif-viewer", "display_name": "OHIF Viewer",
              "sign_in_audience": "AzureADandPersonalMicrosoftAccount", "flow": "spa",
              "redirect_uris": ("https://v/callback", "https://v/other"), "logout_redirect_uri": None,
              "admin_consent": True}
    return SimpleNamespace(**{**values, **fields})


def test_app_spec_for_each_flow() -> None:
    spa = app_spec(_app(), "e69ab058-b8ae-4c0f-b687-5d97888ddccb")
    assert (spa["spa_redirect_uris"], spa["web_redirect_uris"]) == (["https://v/callback", "https://v/other"], [])
    assert (spa["id_token_issuance"], spa["access_token_issuance"]) == (False, False)
    assert spa["permissions"] == [f"{normalise.DICOM_API_APP_ID}/e69ab058-b8ae-4c0f-b687-5d97888ddccb/scope"]
    implicit = app_spec(_app(flow="implicit", logout_redirect_uri="https://v/"), UNKNOWN)
    assert (implicit["spa_redirect_uris"], implicit["web_redirect_uris"][0]) == ([], "https://v/callback")
    assert (implicit["id_token_issuance"], implicit["access_token_issuance"]) == (True, True)
    assert implicit["logout_url"] == "https://v/"
    assert implicit["permissions"] is UNKNOWN


def test_app_redirect_uris_compare_as_sets() -> None:
    app = _app()
    resource = Application(_azure(), app.unique_name, app=app, dicom_api_address="azure.dicom_api_principal[x]")
    outputs = {"azure.dicom_api_principal[x]": {"scope_id": "e69ab058-b8ae-4c0f-b687-5d97888ddccb"}}
    desired = resource.desired(ctx(outputs))
    actual = {**desired, "spa_redirect_uris": list(reversed(desired["spa_redirect_uris"])),
              "permissions": [p.upper() for p in desired["permissions"]], "id": "x", "tags": []}
    assert isinstance(diff(desired, actual, resource.schema), NoOp)


# --- ownership -------------------------------------------------------------------------------------------


def test_ownership_marks() -> None:
    assert OWNER.tags() == {"provision-plan": "ohif-demo", "provision-env": "default"}
    assert OWNER.owns_tags({"provision-plan": "ohif-demo", "provision-env": "default", "x": "y"})
    assert not OWNER.owns_tags({"provision-plan": "ohif-demo", "provision-env": "pr-1"})
    assert not OWNER.owns_tags(None)
    assert OWNER.merged_graph_tags(["WindowsAzureActiveDirectoryIntegratedApp", "provision-env:default"]) == [
        "WindowsAzureActiveDirectoryIntegratedApp", "provision-env:default", "provision-plan:ohif-demo"
    ]
    assert OWNER.owns_description(OWNER.description())
    assert not Owner("ohif-demo", "other").owns_description(OWNER.description())
    assert "provision-created" in OWNER.created_tag()


def test_assignment_names_are_deterministic_and_case_insensitive() -> None:
    scope = "/subscriptions/S/resourceGroups/RG/providers/Microsoft.HealthcareApis/workspaces/w/dicomservices/d"
    one = assignment_name(scope, "AAAA", "58A3B984-7ADF-4C20-983A-32417C86FBC8")
    assert one == assignment_name(scope.lower() + "/", "aaaa", "58a3b984-7adf-4c20-983a-32417c86fbc8")
    assert one != assignment_name(scope, "aaaa", "e89c7a3c-2f64-4fa1-a847-3e4c9ba4283a")
    assert one != assignment_name(scope, "bbbb", "58a3b984-7adf-4c20-983a-32417c86fbc8")
    assert normalise.is_guid(one)


# --- errors ----------------------------------------------------------------------------------------------


def test_throttling_is_temporary_and_keeps_retry_after() -> None:
    error = classify("reading x", status=429, code="TooManyRequests", message="slow down", headers={"Retry-After": "7"})
    assert isinstance(error, AzureTemporaryError)
    assert (error.retry_after, error.code) == (7.0, "TooManyRequests")
    assert error.message == "reading x: slow down (429 TooManyRequests)"


@pytest.mark.parametrize(("status", "code"), [(503, None), (500, "InternalServerError"), (400, "PrincipalNotFound"),
                                              (400, "Directory_ConcurrencyViolation"), (504, "GatewayTimeout")])
def test_temporary(status: int, code: str | None) -> None:
    assert isinstance(classify("x", status=status, code=code, message="m"), AzureTemporaryError)


def test_permanent_errors_keep_the_clouds_code_and_hint() -> None:
    exists = classify("x", status=409, code="RoleAssignmentExists", message="The role assignment already exists.")
    assert isinstance(exists, AzureCloudError) and exists.code == "RoleAssignmentExists"
    denied = classify("x", status=403, code="AuthorizationFailed", message="no")
    assert isinstance(denied, AzureCloudError) and "Contributor" in (denied.hint or "")
    graph_denied = classify("x", status=403, code="Authorization_RequestDenied", message="no")
    assert "Application.ReadWrite.All" in (graph_denied.hint or "")
    unauthenticated = classify("x", status=401, code="InvalidAuthenticationToken", message="no")
    assert isinstance(unauthenticated, ConfigurationError)
    assert isinstance(classify("x", status=400, code="Request_BadRequest", message="m"), AzureCloudError)
    assert isinstance(
        classify("x", status=400, code="Request_BadRequest", message="m", temporary_codes=("Request_BadRequest",)),
        AzureTemporaryError,
    )


def test_retry_after_forms() -> None:
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert retry_after_seconds({"Retry-After": "Wed, 21 Oct 2015 07:28:05 GMT"}, now=1445412480.0) == 5.0
    assert retry_after_seconds({"x-ms-retry-after-ms": "250", "Retry-After": "9"}) == 0.25
    assert retry_after_seconds({"Retry-After": "soon"}) is None
    assert retry_after_seconds(None) is None


# --- clouds ----------------------------------------------------------------------------------------------


def test_named_custom_and_sandbox_clouds() -> None:
    plan = load_plan(PLAYBOOKS / "azure-ohif.yaml", env={})
    public = resolve_cloud(plan.azure)
    assert (public.login, public.arm_scope, public.graph_api) == (
        "https://login.microsoftonline.com", "https://management.azure.com/.default", "https://graph.microsoft.com/v1.0"
    )
    assert public.authority("t") == "https://login.microsoftonline.com/t/v2.0/"
    custom = Cloud("custom", "https://login.example/", "https://arm.example", "https://graph.example",
                   "https://dicom.example/")
    assert (custom.login, custom.dicom_audience, custom.graph_scope) == (
        "https://login.example", "https://dicom.example", "https://graph.example/.default"
    )
    sandbox = sandbox_cloud(SimpleNamespace(url="https://127.0.0.1:8443/"))
    assert (sandbox.arm, sandbox.graph_api, sandbox.graph_host) == (
        "https://127.0.0.1:8443", "https://127.0.0.1:8443/v1.0", "127.0.0.1"
    )
    assert sandbox.arm_scope == "https://management.azure.com/.default"  # the sandbox plays public Azure
    assert resolve_cloud(plan.azure, SimpleNamespace(url="https://127.0.0.1:8443")) == sandbox


# --- the resource graph ----------------------------------------------------------------------------------

GRAPH_PLAN = """
version: 1
name: demo
ohif: {viewer_url: "http://localhost:3000"}
azure:
  location: westeurope
  resource_group: {name: rg}
  app: {unique_name: viewer, display_name: Viewer}
  workspace: {name: wsp}
  dicom: {name: dicom, cors: {headers: ["*"]}}
  access:
    - {user: alice@contoso.com}
    - {user: ALICE@contoso.com, role: DICOM Data Reader}
    - {group: 1b2c3d4e-0000-4000-8000-000000000001, role: dicom data owner}
    - {viewer_app: true}
"""


def _ancestors(by_address: dict[str, Any], address: str) -> set[str]:
    seen: set[str] = set()
    stack = list(by_address[address].depends_on)
    while stack:
        current = stack.pop()
        if current not in seen:
            seen.add(current)
            stack.extend(by_address[current].depends_on)
    return seen


def test_the_app_and_dicom_branches_are_independent_and_assignments_wait_only_for_theirs() -> None:
    plan = parse_plan(GRAPH_PLAN, env={})
    resources = build_resources(plan.azure, _azure())
    by_address = {r.address: r for r in resources}
    assert len(by_address) == len(resources)
    dicom, app = "azure.dicom_service[dicom]", "azure.app[viewer]"
    assert _ancestors(by_address, dicom) == {"azure.workspace[wsp]", "azure.resource_group[rg]"}
    assert app not in _ancestors(by_address, dicom)
    assert dicom not in _ancestors(by_address, "azure.admin_consent[viewer]")
    # one lookup per principal and per role, however they are spelled
    assert sorted(a for a in by_address if a.startswith(("azure.user", "azure.group", "azure.role_definition"))) == [
        "azure.group[1b2c3d4e-0000-4000-8000-000000000001]",
        "azure.role_definition[DICOM Data Owner]",
        "azure.role_definition[DICOM Data Reader]",
        "azure.user[alice@contoso.com]",
    ]
    assignments = [r for r in resources if isinstance(r, RoleAssignment)]
    assert len(assignments) == 4
    viewer = by_address["azure.role_assignment[viewer-app:DICOM Data Owner]"]
    assert set(viewer.depends_on) == {dicom, "azure.app_principal[viewer]", "azure.role_definition[DICOM Data Owner]"}
    reader = by_address["azure.role_assignment[ALICE@contoso.com:DICOM Data Reader]"]
    assert set(reader.depends_on) == {
        dicom, "azure.user[alice@contoso.com]", "azure.role_definition[DICOM Data Reader]"
    }


# --- OHIF output -----------------------------------------------------------------------------------------


def _session(plan: Any, cloud: Cloud, tenant: str | None = "tenant-1") -> AzureSession:
    azure = _azure()
    return AzureSession(plan=plan, section=plan.azure, cloud=cloud, tenant_id=tenant, azure=azure,
                        resources=build_resources(plan.azure, azure))


PUBLIC = Cloud("public", "https://login.microsoftonline.com", "https://management.azure.com",
               "https://graph.microsoft.com", "https://dicom.healthcareapis.azure.com")
OUTPUTS = {
    "azure.app[ohif-viewer]": {"app_id": "client-1"},
    "azure.dicom_service[ohif-dicom]": {"service_url": "https://ohifws-ohif-dicom.dicom.azurehealthcareapis.com"},
}


def test_ohif_document_for_the_spa_flow() -> None:
    plan = load_plan(PLAYBOOKS / "azure-ohif.yaml", env={})
    result = _session(plan, PUBLIC).ohif(OUTPUTS)
    assert result is not None
    [oidc] = result.document["oidc"]
    assert oidc == {
        "authority": "https://login.microsoftonline.com/tenant-1/v2.0/",
        "client_id": "client-1",
        "redirect_uri": "http://localhost:3000/callback",
        "response_type": "code",
        "scope": "openid https://dicom.healthcareapis.azure.com/Dicom.ReadWrite",
        "loadUserInfo": False,
        "automaticSilentRenew": True,
        "revokeAccessTokenOnSignout": True,
        "post_logout_redirect_uri": "http://localhost:3000/",
    }
    [source] = result.document["dataSources"]
    assert source["sourceName"] == "dicomweb"
    configuration = source["configuration"]
    assert configuration["qidoRoot"] == configuration["wadoRoot"] == (
        "https://ohifws-ohif-dicom.dicom.azurehealthcareapis.com/v2"
    )
    assert (configuration["supportsWildcard"], configuration["omitQuotationForMultipartRequest"]) == (False, True)
    assert configuration["friendlyName"] == "Azure DICOM"
    assert result.viewer_url == "http://localhost:3000"


def test_ohif_document_for_the_implicit_flow_in_another_cloud() -> None:
    text = (PLAYBOOKS / "azure-ohif.yaml").read_text().replace("flow: spa", "flow: implicit")
    plan = parse_plan(text, env={})
    usgov = Cloud("usgov", "https://login.microsoftonline.us", "https://management.usgovcloudapi.net",
                  "https://graph.microsoft.us", "https://dicom.healthcareapis.azure.us")
    result = _session(plan, usgov).ohif(OUTPUTS)
    assert result is not None
    [oidc] = result.document["oidc"]
    assert oidc["response_type"] == "id_token token"
    assert oidc["authority"] == "https://login.microsoftonline.us/tenant-1/v2.0/"
    assert oidc["scope"] == "openid https://dicom.healthcareapis.azure.us/Dicom.ReadWrite"


def test_ohif_needs_what_only_apply_can_tell() -> None:
    plan = load_plan(PLAYBOOKS / "azure-ohif.yaml", env={})
    missing = {"azure.app[ohif-viewer]": {"app_id": UNKNOWN}, "azure.dicom_service[ohif-dicom]": {}}
    with pytest.raises(ProvisionError, match="client id of app ohif-viewer") as raised:
        _session(plan, PUBLIC).ohif(missing)
    assert "URL of DICOM service ohif-dicom" in raised.value.message
    with pytest.raises(ProvisionError, match="tenant id"):
        _session(plan, PUBLIC, tenant=None).ohif(OUTPUTS)
