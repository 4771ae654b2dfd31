"""Azure in the sandbox: Entra ID (tokens and the browser sign-in), Microsoft Graph, Azure Resource Manager with
its providers (Microsoft.Resources, Microsoft.HealthcareApis, Microsoft.Authorization) and each DICOM
service's data plane.

This package is the Azure target's part of the sandbox, in the shape the server mounts every target in:
`routes(world, signer)`, `control_routes(world)` (mounted under /_sandbox) and `shutdown(world)`; and in the
shape the world keeps every target's state in: `empty_state()`, `seed(world)`, `restore(world)`,
`configure(world, values)`, `settle(world)` (see world.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import (
    arm,
    arm_state,
    authorization,
    directory,
    entra,
    graph,
    health_data_services,
    operation_failures,
    resources,
    signin,
    throttling,
)
from .dicom import endpoint as dicom

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from ..tokens import TokenSigner
    from ..world import World


def routes(world: World, signer: TokenSigner) -> list[BaseRoute]:
    """Every Azure API, mounted at the paths of the sandbox's one origin."""
    providers = [*resources.arm_routes(), *health_data_services.arm_routes(), *authorization.arm_routes()]
    return [
        *signin.routes(world, signer),  # before entra: the browser's side of the paths they share, the rest delegated
        *entra.routes(world, signer),
        *arm.routes(world, signer, providers),
        *graph.routes(world, signer),
        *dicom.routes(world, signer),  # each DICOM service's serviceUrl, forwarded to an Orthanc per service
    ]


def control_routes(world: World) -> list[BaseRoute]:
    """`/_sandbox/throttling`: ARM's throttling, off by default; `/_sandbox/operation-failures`: operations that
    end Failed."""
    return [*throttling.control_routes(world), *operation_failures.control_routes(world)]


def shutdown(world: World) -> None:
    """Stop the Orthancs behind the DICOM services."""
    dicom.shutdown(world)


# --- Azure's part of the world (see world.py) ---------------------------------------------------------------

def empty_state() -> dict[str, Any]:
    return {**arm_state.empty_state(), **directory.empty_state()}


def seed(world: World) -> None:
    """The tenant's own application, Microsoft Graph, the DICOM service principal (unless configured absent),
    users and a group. Operation failures still to come are forgotten with the rest."""
    directory.seed(world, dicom_sp=world.config.dicom_sp is not False)
    operation_failures.rules_of(world).clear()


def restore(world: World) -> None:
    for name in directory.COLLECTIONS:  # a state file written before a collection existed
        world.state["directory"].setdefault(name, {})
    if world.config.dicom_sp is not None:
        directory.ensure_dicom_sp(world, world.config.dicom_sp)


def configure(world: World, values: dict[str, Any]) -> None:
    if values.get("dicom_sp") is not None:
        directory.ensure_dicom_sp(world, bool(values["dicom_sp"]))
    if values.get("test_users"):
        directory.ensure_test_users(world, world.config.test_users)


def settle(world: World) -> None:
    arm_state.settle(world)
