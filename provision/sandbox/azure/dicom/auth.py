"""Who may call a DICOM service: authentication by Entra ID token, authorization by role assignments.

- **authentication**: a bearer token of the sandbox's Entra ID for the DICOM audience
  (`https://dicom.healthcareapis.azure.com`, with or without the trailing slash) in the sandbox tenant, else 401
  with a `WWW-Authenticate` challenge naming the authority and resource;
- **authorization** from the role assignments in the world: a principal (the token's `oid`, or a group it is a
  member of) needs an assignment at the service or an enclosing scope whose role's `dataActions` cover the
  request: read (GET/HEAD), write (STOW), delete (DELETE), manage extended query tags. DICOM Data Owner has
  `.../dicomservices/resources/*`, DICOM Data Reader only `.../resources/read`; none gives 403.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ...tokens import TokenError, bearer_token
from .. import arm_state, directory
from ..authorization import BUILTIN_ROLES, covers
from ..health_data_services import DICOM_AUDIENCES
from .errors import DicomError

if TYPE_CHECKING:
    from starlette.requests import Request

    from ...tokens import TokenSigner
    from ...world import World

DATA_ACTION_PREFIX = "Microsoft.HealthcareApis/workspaces/dicomservices/resources/"
READ, WRITE, DELETE, MANAGE_TAGS = "read", "write", "delete", "extendedQueryTags/write"
_AUDIENCES = tuple(DICOM_AUDIENCES)


def authenticate(world: World, signer: TokenSigner, request: Request, base: str) -> dict[str, Any]:
    """The claims of the request's token; 401 with the challenge when there is none fit for the service."""
    tenant = world.identity.tenant_id
    try:
        return signer.verify(bearer_token(request.headers.get("authorization")), audiences=_AUDIENCES,
                             tenant_id=tenant)
    except TokenError as exc:
        raise challenge(base, tenant, exc.reason) from None


def challenge(base: str, tenant_id: str, reason: str) -> DicomError:
    # The challenge shape follows Azure's resource servers (unverified for DICOM).
    error = "" if reason == "missing" else ', error="invalid_token"'
    return DicomError(401, None, {
        "WWW-Authenticate": f'Bearer authorization_uri="{base}/{tenant_id}", '
                            f'resource_id="{DICOM_AUDIENCES[0]}", realm="{DICOM_AUDIENCES[0]}"{error}',
    })


def authorize(world: World, resource_id: str, claims: dict[str, Any], method: str, parts: list[str]) -> None:
    """403 unless the token's principal holds the data action the request needs on the service."""
    patterns = granted_data_actions(world, resource_id, str(claims.get("oid", "")))
    if not allows(patterns, data_action(method, parts)):
        raise DicomError(403, "Authorization failed.")  # body unverified


def data_action(method: str, parts: list[str]) -> str:
    """The data action a request needs (`parts`: its path below the API version)."""
    first = parts[0].lower() if parts else ""
    if first in ("extendedquerytags", "operations"):
        return READ if method in ("GET", "HEAD") else MANAGE_TAGS
    if method in ("GET", "HEAD", "OPTIONS"):
        return READ
    if method == "DELETE":
        return DELETE
    return WRITE


def principal_ids(world: World, object_id: str) -> set[str]:
    """The principal and the groups it belongs to (groups list members as ids under `members`)."""
    oid = object_id.lower()
    ids = {oid}
    for group in directory.collection(world, "groups").values():
        members = {str(m).lower() for m in group.get("members", []) or []}
        if oid in members:
            ids.add(str(group["id"]).lower())
    return ids


def granted_data_actions(world: World, resource_id: str, object_id: str) -> list[str]:
    """Data actions (patterns) the principal holds on the resource through role assignments."""
    who = principal_ids(world, object_id)
    patterns: list[str] = []
    for assignment in arm_state.role_assignments(world).values():
        if assignment["principalId"].lower() not in who or not covers(assignment["scope"], resource_id):
            continue
        role = BUILTIN_ROLES.get(assignment["roleDefinition"].lower())
        for permission in (role or {}).get("permissions", []):
            patterns.extend(permission.get("dataActions", []))
    return patterns


def allows(patterns: Iterable[str], action: str) -> bool:
    wanted = (DATA_ACTION_PREFIX + action).lower()
    return any(fnmatch.fnmatchcase(wanted, p.lower()) for p in patterns)
