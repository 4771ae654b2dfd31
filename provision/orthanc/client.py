"""HTTP to a running deployment: TLS trust, the admin's client, and the questions commands ask it."""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from typing import Any

import httpx

from provision.core.target import Connection
from provision.errors import ConfigurationError, ProvisionError
from provision.orthanc.site import Site

JSON = "application/dicom+json"
TIMEOUT = httpx.Timeout(60.0, connect=5.0)


def ssl_context(site: Site, connection: Connection) -> ssl.SSLContext:
    """Trust for the public URL: the system's CAs, the local CA of `tls.local_ca`, and `--ca-bundle`."""
    context = ssl.create_default_context()
    if site.local_ca is not None and site.local_ca.is_file():
        context.load_verify_locations(cafile=str(site.local_ca))
    for bundle in connection.trusted():
        context.load_verify_locations(cafile=str(bundle))
    return context


def public_client(site: Site, connection: Connection, *, auth: tuple[str, str] | None = None) -> httpx.AsyncClient:
    """A client of the public URL (through nginx), as a browser or the admin reaches it."""
    return httpx.AsyncClient(base_url=site.public_url, verify=ssl_context(site, connection), auth=auth,
                             timeout=TIMEOUT, trust_env=False)


def unreachable(site: Site, error: httpx.HTTPError) -> ProvisionError:
    return ProvisionError(f"{site.public_url} does not answer ({type(error).__name__}: {error})",
                          hint="start it with `provision orthanc up PLAN` (or the rendered systemd units)")


async def missing_studies(client: httpx.AsyncClient, site: Site, uids: Sequence[str]) -> list[str]:
    """The UIDs among `uids` that name no study in Orthanc (asked as the admin, one QIDO each)."""
    missing = []
    for uid in uids:
        try:
            answer = await client.get(f"{site.dicomweb_root}studies", params={"StudyInstanceUID": uid},
                                      headers={"Accept": JSON})
        except httpx.HTTPError as error:
            raise unreachable(site, error) from None
        if answer.status_code == 403:
            raise ConfigurationError(f"{site.public_url} refused the admin's search (403)",
                                     hint="is the admin password the one the running Orthanc was set up with? "
                                     "run `provision orthanc apply` and `provision orthanc up` again")
        if answer.status_code != 200:
            raise ProvisionError(f"searching {uid} on {site.public_url} answered {answer.status_code}")
        found: Any = answer.json() if answer.content else []
        if not found:
            missing.append(uid)
    return missing
