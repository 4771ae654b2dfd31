"""Debian's Chromium driven by Playwright (the PyPI package; no browser download), trusting the sandbox CA.

Trust: the sandbox CA is imported into an NSS database (`certutil`, package libnss3-tools) under a fresh
HOME given to the browser process only. Chromium on Linux honours locally trusted roots from NSS, so the
sandbox's certificate is verified the normal way (chain to a trusted root, host name, validity) — what a
user who trusts the CA gets — rather than switching verification off (`ignore_https_errors`) or pinning one
key (`--ignore-certificate-errors-spki-list`), which would also hide a wrong host name or an expired leaf.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

CHROMIUM_CANDIDATES = ("/usr/lib/chromium/chromium", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
]


def chromium_path() -> str:
    for candidate in CHROMIUM_CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    raise RuntimeError("Debian's chromium is not installed: run scripts/install-system-deps.sh")


def trusted_home(home: Path, ca_bundle: str | Path) -> dict[str, str | float | bool]:
    """An environment whose HOME has an NSS database trusting `ca_bundle` as a TLS root."""
    certutil = shutil.which("certutil")
    if certutil is None:
        raise RuntimeError("certutil is not installed (libnss3-tools): run scripts/install-system-deps.sh")
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True, exist_ok=True)
    if not (nssdb / "cert9.db").exists():
        subprocess.run([certutil, "-N", "-d", f"sql:{nssdb}", "--empty-password"], check=True,
                       capture_output=True)
    subprocess.run([certutil, "-A", "-d", f"sql:{nssdb}", "-n", "provision-sandbox-ca", "-t", "C,,",
                    "-i", str(ca_bundle)], check=True, capture_output=True)
    env: dict[str, str | float | bool] = {
        k: v for k, v in os.environ.items() if not k.startswith(("PLAYWRIGHT_", "CHROME_"))
    }
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), XDG_CACHE_HOME=str(home / ".cache"))
    return env
