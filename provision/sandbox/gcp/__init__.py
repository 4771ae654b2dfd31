"""Google Cloud in the sandbox: the Cloud Healthcare API v1 and Google's OAuth token endpoint.

This package is the GCP target's part of the sandbox, in the shape the server mounts every target in:
`routes(world, signer)` and `control_routes(world)` (mounted under /_sandbox).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import healthcare, oauth

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from ..tokens import TokenSigner
    from ..world import World


def routes(world: World, signer: TokenSigner) -> list[BaseRoute]:
    return [*oauth.routes(world, signer), *healthcare.routes(world, signer)]


def control_routes(world: World) -> list[BaseRoute]:
    """`/_sandbox/gcp/config`: the dataset initialisation window and injected IAM races."""
    return healthcare.control_routes(world)
