"""`provision viewer DIR`: serve the OHIF viewer with the app-config.js an apply wrote, so a person can open it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from provision.cli.render import console
from provision.cli.target import user_errors

DEFAULT_URL = "http://localhost:3000"
OHIF_VERSION = "3.13.2"


def viewer(
    directory: Annotated[Path, typer.Argument(help="Where apply wrote app-config.js, e.g. provision-out/azure.",
                                              show_default=False)],
    url: Annotated[str, typer.Option(
        "--url", help="Where to serve the viewer: the plan's ohif.viewer_url (its redirect URIs and CORS name it).",
    )] = DEFAULT_URL,
    version: Annotated[str, typer.Option("--version", help="The @ohif/app build to serve (fetched once with npm).")
                       ] = OHIF_VERSION,
) -> None:
    """Serve the OHIF viewer (the npm @ohif/app build) with DIR/app-config.js until Ctrl+C.

    Against the local sandbox, the browser must trust the sandbox's CA to sign in; the command says how.
    """
    with user_errors():
        from provision.ohif.build import ohif_dist
        from provision.ohif.serve import ViewerServer

        dist = ohif_dist(version, progress=lambda message: console.print(message))
        with ViewerServer(dist, directory / "app-config.js", url) as server:
            console.print(f"OHIF {version} at {server.url} with {directory / 'app-config.js'}; Ctrl+C stops it.",
                          style="bold")
            for line in _trust_hints(directory):
                console.print(line)
            try:
                server.wait()
            except KeyboardInterrupt:
                console.print("Stopped.")


def _trust_hints(directory: Path) -> list[str]:
    """How to make a browser trust the sandbox's CA, when the configuration points at a sandbox."""
    import os

    from provision.cli.target import SANDBOX_STATE
    from provision.errors import ConfigurationError
    from provision.sandbox import SandboxInfo

    try:
        authority = str(json.loads((directory / "ohif.json").read_text())["oidc"][0]["authority"])
        info = SandboxInfo.load(Path(os.environ.get("PROVISION_SANDBOX") or SANDBOX_STATE))
    except (OSError, ValueError, LookupError, TypeError, ConfigurationError):
        return []
    ca = Path(info.ca_bundle)
    if not authority.startswith(info.url):
        return []
    return [
        f"Sign-in and DICOMweb are served by the local sandbox with its own CA, {ca}; your browser must trust it:",
        f"  Chrome/Chromium (Linux): certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n provision-sandbox -i {ca}",
        f"  macOS: sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain {ca}",
        "  Firefox: Settings > Privacy & Security > Certificates > View Certificates > Authorities > Import",
        "Then pick a user on the sandbox's sign-in page (it has no passwords).",
    ]
