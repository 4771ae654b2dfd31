"""The built OHIF viewer: the `dist/` of the npm package `@ohif/app` at an exact version, fetched once.

`ohif_dist(version)` runs `npm pack @ohif/app@VERSION` (npm checks the registry's integrity hash) into a cache
directory and unpacks `package/dist` there; later calls reuse the unpacked copy. The cache is
`$PROVISION_OHIF_CACHE`, else `$XDG_CACHE_HOME/provision/ohif` (`~/.cache/provision/ohif`). The 3.13.2 build is
about 200 MB unpacked (most of it WebAssembly and source maps).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

from provision.errors import ConfigurationError

PACKAGE = "@ohif/app"
NPM_TIMEOUT = 900


def default_cache() -> Path:
    configured = os.environ.get("PROVISION_OHIF_CACHE")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "provision" / "ohif"


def ohif_dist(version: str, cache: Path | None = None, *, progress: Callable[[str], None] | None = None) -> Path:
    """The `dist/` directory of `@ohif/app@version`, fetched from the npm registry on first use."""
    cache = cache or default_cache()
    target = cache / f"app-{version}"
    dist = target / "dist"
    if (dist / "index.html").is_file():
        return dist
    npm = shutil.which("npm")
    if npm is None:
        raise ConfigurationError(f"npm is needed to fetch {PACKAGE}@{version}",
                                 hint="install Node.js and npm (Debian: apt-get install npm)")
    cache.mkdir(parents=True, exist_ok=True)
    tarball = cache / f"ohif-app-{version}.tgz"
    if not tarball.is_file():
        if progress is not None:
            progress(f"downloading {PACKAGE}@{version} with npm (about 50 MB)")
        done = subprocess.run(
            [npm, "pack", f"{PACKAGE}@{version}", "--pack-destination", str(cache), "--silent"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=NPM_TIMEOUT, check=False,
        )
        if done.returncode != 0 or not tarball.is_file():
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise ConfigurationError(f"npm pack {PACKAGE}@{version} failed: {last}",
                                     hint="check the version and that the npm registry is reachable")
    if progress is not None:
        progress(f"unpacking {PACKAGE}@{version}")
    staging = Path(tempfile.mkdtemp(prefix=f"app-{version}.", dir=cache))
    try:
        with tarfile.open(tarball) as archive:
            members = [m for m in archive.getmembers() if m.name.startswith("package/dist/")]
            archive.extractall(staging, members=members, filter="data")
        if target.exists():
            shutil.rmtree(target)
        (staging / "package").rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    tarball.unlink()  # the unpacked copy is what later calls use
    return dist
