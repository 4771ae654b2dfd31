"""Through the CLI, against the deployment: a user added to `azure.access` can search, and once the entry is
deleted from the plan, `plan` shows the one revocation (exit 2 with --detailed-exitcode, in the JSON plan too),
`apply` takes the role away and the user's QIDO search is refused with 403."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from conftest import PLAYBOOK, Deployment
from e2e_http import client

BOB = "azure.role_assignment[bob@contoso.onmicrosoft.com:DICOM Data Owner]"


@pytest.fixture
def http(deployment: Deployment) -> Any:
    with client(deployment.info) as session:
        yield session


def _search(deployment: Deployment, http: httpx.Client, user: str) -> int:
    token = deployment.user_token(user)
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/dicom+json"}
    return http.get(f"{deployment.dicomweb_root}/studies", headers=headers).status_code


def test_a_user_deleted_from_access_loses_access(deployment: Deployment, http: httpx.Client) -> None:
    with_bob = deployment.out.parent / "with-bob.yaml"
    with_bob.write_text(PLAYBOOK.read_text().replace(
        "  access:\n", "  access:\n    - user: bob@contoso.com\n      role: DICOM Data Owner\n", 1))
    try:
        granted = deployment.provision("azure", "apply", str(with_bob), "--auto-approve",
                                       "--out", str(deployment.out.parent / "with-bob"))
        assert granted.exit_code == 0, granted.output
        assert _search(deployment, http, "bob@contoso.com") == 200

        pending = deployment.provision("azure", "plan", str(PLAYBOOK), "--detailed-exitcode")

        assert pending.exit_code == 2, pending.output
        lines = [line.strip() for line in pending.output.splitlines()]
        assert [line for line in lines if line.startswith("-")] == [f"- {BOB}  delete (no longer in the plan)"]
        assert "Plan: 0 to create, 0 to update, 0 to replace, 1 to delete," in pending.output
        document = json.loads(deployment.provision("azure", "plan", str(PLAYBOOK), "--output", "json").stdout)
        changing = [step for step in document["steps"] if step["action"] != "no-op"]
        assert changing == [{"address": BOB, "action": "delete", "changes": [], "reason": "no longer in the plan"}]
        assert document["summary"]["delete"] == 1

        deployment.apply()

        assert _search(deployment, http, "bob@contoso.com") == 403
        assert _search(deployment, http, "alice@contoso.com") == 200  # the declared user keeps her role
        settled = deployment.provision("azure", "plan", str(PLAYBOOK), "--detailed-exitcode")
        assert settled.exit_code == 0, settled.output
    finally:
        deployment.apply()
