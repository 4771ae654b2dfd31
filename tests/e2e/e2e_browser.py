"""Debian's Chromium driven by Playwright (the PyPI package; no browser download), trusting the sandbox CA, and one
browser run of a viewer test (`Run`: the page, what it saw, screenshots and a log under test-artifacts/).

Trust: the sandbox CA is imported into an NSS database (`certutil`, package libnss3-tools) under a fresh
HOME given to the browser process only. Chromium on Linux honours locally trusted roots from NSS, so the
sandbox's certificate is verified the normal way (chain to a trusted root, host name, validity) — what a
user who trusts the CA gets — rather than switching verification off (`ignore_https_errors`) or pinning one
key (`--ignore-certificate-errors-spki-list`), which would also hide a wrong host name or an expired leaf.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


@dataclass
class Run:
    """One browser context (fresh cookies and storage) and what it saw."""

    page: Any
    dicomweb_root: str
    artifacts: Path
    name: str
    responses: list[tuple[int, str]] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    shots: int = 0

    def attach(self) -> None:
        def on_response(response: Any) -> None:
            if response.url.startswith(self.dicomweb_root):
                self.responses.append((response.status, response.url))

        def on_failed(request: Any) -> None:
            if request.url.startswith(self.dicomweb_root):
                self.failures.append((request.url, str(request.failure)))

        self.page.on("response", on_response)
        self.page.on("requestfailed", on_failed)
        self.page.on("console", lambda message: self.console.append(f"{message.type}: {message.text}"))

    def screenshot(self, label: str) -> Path:
        self.shots += 1
        path = self.artifacts / f"{self.name}-{self.shots}-{label}.png"
        self.page.screenshot(path=str(path))
        return path

    def sign_in(self, viewer_url: str, chooser: str, account: str) -> None:
        """Open the viewer; it sends us to the sandbox's sign-in page (`chooser` is its heading: Entra ID's "Pick
        an account", Google's "Choose an account"); pick `account` (no password)."""
        self.page.goto(viewer_url + "/")
        self.page.get_by_text(chooser).wait_for(timeout=60_000)
        self.screenshot("sign-in")
        self.page.get_by_text(account).click()

    def searches(self) -> list[tuple[int, str]]:
        study_search = self.dicomweb_root + "/studies?"
        return [(status, url) for status, url in self.responses if url.startswith(study_search)]

    def write_log(self) -> None:
        lines = [f"{status} {url}" for status, url in self.responses]
        lines += [f"FAILED {url} {why}" for url, why in self.failures]
        lines += self.console
        (self.artifacts / f"{self.name}.log").write_text("\n".join(lines) + "\n", encoding="utf-8")


@contextlib.contextmanager
def browser_run(request: Any, chromium: Any, dicomweb_root: str, artifacts: Path) -> Iterator[Run]:
    """A fresh browser context for one test, named after it; its log is written whatever happens."""
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(30_000)
    name = request.node.name.removeprefix("test_")
    for old in artifacts.glob(f"{name}-*.png"):
        old.unlink()
    current = Run(context.new_page(), dicomweb_root, artifacts, name)
    current.attach()
    try:
        yield current
    finally:
        current.write_log()
        context.close()


def wait_until(page: Any, condition: Any, timeout: float = 30.0) -> None:
    """Poll `condition` while letting Playwright deliver its events (a plain sleep would block them)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        page.wait_for_timeout(100)
