"""Replay the published REST examples (specs/azure/**/examples, copied from Azure/azure-rest-api-specs; see
specs/azure/SOURCES.md) against the sandbox: same request, and the answer must have one of the example's status
codes and at least the keys of the example's body (top level, `properties`, and list items).

Each example is mapped to its operation through the swagger's `x-ms-examples`. What has to change for an
example to run in the sandbox world is written next to it in REPLAY below (our subscription instead of
"subid", an emulated scope instead of a Cosmos DB account, ...). Keys an example shows but the sandbox
knowingly does not return are listed in ALLOWED_MISSING with the reason.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from provision.sandbox import SandboxInfo
from provision.sandbox.azure.authorization import DICOM_DATA_READER
from provision.sandbox.azure.directory import ALICE_ID

SPECS = Path(__file__).parent / "specs" / "azure"
SWAGGERS = [
    SPECS / "healthcareapis/stable/2024-03-31/healthcare-apis.json",
    SPECS / "authorization/stable/2022-04-01/authorization-RoleAssignmentsCalls.json",
]
LRO_WAIT = 0.35

# Example principal/role/subscription that do not exist in the sandbox tenant, and what stands in for them.
EXAMPLE_PRINCIPAL = "ce2ce14e-85d7-4629-bdbc-454d0519d987"  # a User in the examples; alice is a User too
EXAMPLE_ROLE = "0b5fe924-9a61-425c-96af-cfe6e287ca2d"  # not a role the sandbox knows; DICOM Data Reader instead
EXAMPLE_SUBSCRIPTIONS = ("subid", "a925f2f7-5c63-4b7b-8799-25a5f97bc3b2")

SKIP = {
    "CheckNameAvailabilityPost": "checks names of the Gen1 'services' API, which the sandbox does not emulate",
}

ALLOWED_MISSING: dict[str, dict[str, str]] = {
    # nextLink only appears when there is another page.
    "Workspaces_ListByResourceGroup": {"nextLink": "single page"},
    "Workspaces_ListBySubscription": {"nextLink": "single page"},
    "DicomServices_List": {"nextLink": "single page",
                           "identity": "the example's services have identities its create request never set",
                           "encryption": "likewise for customer-managed-key encryption"},
    "DicomServices_Create": {"identity": "the example's 201 shows an identity its request never sent",
                             "encryption": "likewise for encryption"},
    "DicomServices_Get": {"identity": "the service was created from the Create example, which sent none",
                          "encryption": "likewise"},
    "DicomServices_Patch": {"identity": "likewise", "encryption": "likewise"},
    # facts/azure.md: observed polls are {id, name, status, startTime} (+ endTime when finished).
    "OperationResultsGet": {"properties": "not observed on the wire"},
}


@dataclass
class Example:
    name: str
    path: Path
    method: str
    template: str
    body: dict[str, Any]


def _examples() -> list[Example]:
    found = []
    for swagger_path in SWAGGERS:
        swagger = json.loads(swagger_path.read_text())
        for template, ops in swagger["paths"].items():
            for method, op in ops.items():
                if not isinstance(op, dict):
                    continue
                for ref in op.get("x-ms-examples", {}).values():
                    file = (swagger_path.parent / ref["$ref"]).resolve()
                    if file.exists():
                        found.append(Example(file.stem, file, method.upper(), template, json.loads(file.read_text())))
    return sorted(found, key=lambda e: e.name)


EXAMPLES = _examples()


def _keys_missing(example: Any, actual: Any, allowed: dict[str, str], where: str = "") -> list[str]:
    if not isinstance(example, dict) or not isinstance(actual, dict):
        return []
    missing = [f"{where}{k}" for k in example if k not in actual and k not in allowed]
    for nested in ("properties",):
        if nested in example and nested in actual:
            missing += _keys_missing(example[nested], actual[nested], allowed, f"{where}{nested}.")
    if isinstance(example.get("value"), list) and example["value"] and isinstance(actual.get("value"), list):
        assert actual["value"], f"{where}value is empty"
        for item in example["value"]:
            missing += _keys_missing(item, actual["value"][0], allowed, f"{where}value[].")
    return sorted(set(missing))


class Replay:
    """Runs example requests against the sandbox, substituting what the sandbox world needs."""

    def __init__(self, http: Any, info: SandboxInfo, token: str) -> None:
        self.http = http
        self.info = info
        self.auth = {"Authorization": f"Bearer {token}"}
        self.last_operation: str | None = None

    def sub(self, value: Any) -> Any:
        text = json.dumps(value)
        for sub in EXAMPLE_SUBSCRIPTIONS:
            text = text.replace(sub, self.info.subscription_id)
        return json.loads(text.replace(EXAMPLE_PRINCIPAL, ALICE_ID).replace(EXAMPLE_ROLE, DICOM_DATA_READER))

    def send(self, example: Example, params: dict[str, Any] | None = None) -> Any:
        parameters = self.sub({**example.body["parameters"], **(params or {})})
        path = example.template
        for name in re.findall(r"\{(\w+)\}", path):
            value = str(parameters[name])
            path = path.replace("{" + name + "}", value.lstrip("/") if name == "scope" else value)
        body = next((v for k, v in parameters.items() if isinstance(v, dict) and k != "parameters"), None)
        body = parameters.get("parameters", body) if isinstance(parameters.get("parameters"), dict) else body
        return self.http.request(example.method, path, params={"api-version": parameters["api-version"]},
                                 json=body, headers=self.auth)

    def put(self, path: str, body: dict[str, Any], api: str = "2024-03-31") -> Any:
        response = self.http.put(path, params={"api-version": api}, json=body, headers=self.auth)
        assert response.status_code in (200, 201), response.text
        return response

    # prerequisites, in the world of the healthcare examples (testRG / workspace1 / blue)
    def rg(self) -> None:
        self.put(f"/subscriptions/{self.info.subscription_id}/resourceGroups/testRG", {"location": "westus"},
                 api="2021-04-01")

    def workspace(self) -> None:
        self.rg()
        self.put(f"/subscriptions/{self.info.subscription_id}/resourceGroups/testRG/providers/"
                 "Microsoft.HealthcareApis/workspaces/workspace1", {"location": "westus", "properties": {}})

    def dicom(self) -> None:
        self.workspace()
        create = next(e for e in EXAMPLES if e.name == "DicomServices_Create")
        response = self.send(create)
        assert response.status_code == 201, response.text
        self.last_operation = response.headers["azure-asyncoperation"].split("/operationresults/")[1].split("?")[0]
        time.sleep(LRO_WAIT)

    def subscription_assignment(self) -> None:
        """The assignment the Get/Delete/ListForScope examples read (b0f43c54... at subscription scope)."""
        get = next(e for e in EXAMPLES if e.name == "RoleAssignments_Get")
        p = self.sub(get.body["parameters"])
        self.put(f"/{p['scope']}/providers/Microsoft.Authorization/roleAssignments/{p['roleAssignmentName']}",
                 {"properties": {"roleDefinitionId": f"/providers/Microsoft.Authorization/roleDefinitions/"
                                                     f"{DICOM_DATA_READER}", "principalId": ALICE_ID,
                                 "principalType": "User"}}, api="2022-04-01")


def _dicom_scope(r: Replay) -> dict[str, Any]:
    r.dicom()
    return {"scope": f"subscriptions/{r.info.subscription_id}/resourceGroups/testRG/providers/"
                     "Microsoft.HealthcareApis/workspaces/workspace1/dicomservices/blue"}


def _operation(r: Replay) -> dict[str, Any]:
    r.dicom()
    return {"operationResultId": r.last_operation}


# example name -> set-up that returns parameter overrides (None: the example runs as published, substituted)
REPLAY: dict[str, Callable[[Replay], dict[str, Any] | None]] = {
    "Workspaces_Create": lambda r: r.rg(),
    "Workspaces_Get": lambda r: r.workspace(),
    "Workspaces_Patch": lambda r: r.workspace(),
    "Workspaces_Delete": lambda r: r.workspace(),
    "Workspaces_ListByResourceGroup": lambda r: r.workspace(),
    "Workspaces_ListBySubscription": lambda r: r.workspace(),
    "DicomServices_Create": lambda r: r.workspace(),
    "DicomServices_Get": lambda r: r.dicom(),
    "DicomServices_List": lambda r: r.dicom(),
    "DicomServices_Patch": lambda r: r.dicom(),
    "DicomServices_Delete": lambda r: r.dicom(),
    "OperationResultsGet": _operation,
    # the example's scope is a Cosmos DB account, which the sandbox does not emulate: use the DICOM service
    "RoleAssignments_CreateForResource": _dicom_scope,
    "RoleAssignments_Get": lambda r: r.subscription_assignment(),
    "RoleAssignments_Delete": lambda r: r.subscription_assignment(),
    "RoleAssignments_ListForScope": lambda r: r.subscription_assignment(),
}


def test_every_example_has_a_replay_rule() -> None:
    names = {e.name for e in EXAMPLES}
    assert len(names) >= 15
    assert names - set(REPLAY) - set(SKIP) == set()


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_example_replays(example: Example, http: Any, info: SandboxInfo, arm_token: str) -> None:
    if example.name in SKIP:
        pytest.skip(SKIP[example.name])
    replay = Replay(http, info, arm_token)
    overrides = REPLAY[example.name](replay)
    response = replay.send(example, overrides or None)
    codes = {int(c) for c in example.body["responses"]}
    assert response.status_code in codes, f"{response.status_code} not in {sorted(codes)}: {response.text}"
    expected = example.body["responses"][str(response.status_code)].get("body")
    if expected is None:
        return
    actual = response.json()
    missing = _keys_missing(expected, actual, ALLOWED_MISSING.get(example.name, {}))
    assert missing == [], f"keys the example has and the sandbox lacks: {missing}"
    if example.method == "DELETE" and response.status_code in (200, 202):
        again = replay.send(example, overrides or None)  # deleting what is gone (or going) is still fine
        assert again.status_code in codes
