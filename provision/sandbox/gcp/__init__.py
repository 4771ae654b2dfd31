"""Google Cloud in the sandbox: the Cloud Healthcare API v1 with each DICOM store's DICOMweb, Google's OAuth token
endpoint, and Google sign-in for browser viewers.

This package is the GCP target's part of the sandbox, in the shape the server mounts every target in:
`routes(world, signer)`, `control_routes(world)` (mounted under /_sandbox) and `shutdown(world)`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import accounts, dicomweb, healthcare, oauth

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from ..tokens import TokenSigner
    from ..world import World


def routes(world: World, signer: TokenSigner) -> list[BaseRoute]:
    # the stores' DICOMweb before the Healthcare API's catch-all /v1/{rest:path}
    return [*oauth.routes(world, signer), *accounts.routes(world, signer), *dicomweb.routes(world, signer),
            *healthcare.routes(world, signer)]


def control_routes(world: World) -> list[BaseRoute]:
    """`/_sandbox/gcp/config`: the dataset initialisation window, injected IAM races, registered OAuth clients."""
    return healthcare.control_routes(world)


def shutdown(world: World) -> None:
    """Stop the Orthancs behind the DICOM stores."""
    dicomweb.shutdown(world)
