"""The built OHIF viewer (`@ohif/app` from the npm registry) for the browser tests, and the product's server
for it (`provision.ohif.serve.ViewerServer`, what `provision viewer` runs).

`ohif_dist()` fetches the build with `provision.ohif.build` (`npm pack @ohif/app@VERSION`, once) into
`.cache/ohif/` of the repository; reruns reuse the unpacked copy.
"""

from __future__ import annotations

import os
from pathlib import Path

from provision.ohif import build
from provision.ohif.serve import ViewerServer

OHIF_VERSION = "3.13.2"
REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("PROVISION_OHIF_CACHE", REPO / ".cache" / "ohif"))


def ohif_dist(version: str = OHIF_VERSION, cache: Path = CACHE) -> Path:
    """The `dist/` directory of the built viewer (`provision.ohif.build`, cached in the repository)."""
    return build.ohif_dist(version, cache)


__all__ = ["OHIF_VERSION", "REPO", "ViewerServer", "ohif_dist"]
