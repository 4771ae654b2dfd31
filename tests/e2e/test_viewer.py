"""The proof: the real OHIF viewer (`@ohif/app`, built, from the npm registry) in Debian's Chromium, configured
only by the `app-config.js` that `provision azure apply` wrote, signs a user in at the sandbox's Entra ID, lists
the test study from the sandbox's DICOM service and opens it (frames are fetched). Two negative twins change one
thing out of band, as a portal click would, and must break the viewer the way Azure would: the viewer's origin
removed from the service's CORS (the browser blocks the search: "Data Source Connection Error"), and the user's
role removed (the service answers 403). After each twin, `provision azure apply` puts the plan back.

Screenshots and a log of each run's console and DICOMweb traffic go to test-artifacts/viewer/.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import STUDY_DESCRIPTION, Deployment
from e2e_browser import CHROMIUM_FLAGS, chromium_path, trusted_home
from e2e_viewer import ViewerServer, ohif_dist

from provision.sandbox.azure.directory import ALICE_ID

pytestmark = pytest.mark.slow

USER_UPN = "alice@contoso.onmicrosoft.com"
CONNECTION_ERROR = "Data Source Connection Error"


@pytest.fixture(scope="module")
def viewer(deployment: Deployment) -> Iterator[ViewerServer]:
    with ViewerServer(ohif_dist(), deployment.out / "app-config.js", deployment.viewer_url) as server:
        yield server


@pytest.fixture(scope="module")
def chromium(deployment: Deployment, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    env = trusted_home(tmp_path_factory.mktemp("browser-home"), deployment.info.ca_bundle)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS,
                                             env=env)
        try:
            yield browser
        finally:
            browser.close()


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

    def sign_in(self, viewer_url: str) -> None:
        """Open the viewer; it sends us to the sandbox's Entra ID; pick the user (no password)."""
        self.page.goto(viewer_url + "/")
        self.page.get_by_text("Pick an account").wait_for(timeout=60_000)
        self.screenshot("sign-in")
        self.page.get_by_text(USER_UPN).click()

    def searches(self) -> list[tuple[int, str]]:
        study_search = self.dicomweb_root + "/studies?"
        return [(status, url) for status, url in self.responses if url.startswith(study_search)]

    def write_log(self) -> None:
        lines = [f"{status} {url}" for status, url in self.responses]
        lines += [f"FAILED {url} {why}" for url, why in self.failures]
        lines += self.console
        (self.artifacts / f"{self.name}.log").write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def run(request: pytest.FixtureRequest, chromium: Any, viewer: ViewerServer, deployment: Deployment,
        artifacts: Path) -> Iterator[Run]:
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(30_000)
    name = request.node.name.removeprefix("test_")
    for old in artifacts.glob(f"{name}-*.png"):
        old.unlink()
    current = Run(context.new_page(), deployment.dicomweb_root, artifacts, name)
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


def test_viewer_signs_in_lists_and_opens_the_study(run: Run, viewer: ViewerServer) -> None:
    run.sign_in(viewer.url)
    run.page.get_by_text(STUDY_DESCRIPTION).wait_for(timeout=60_000)
    run.screenshot("study-list")
    assert [status for status, _ in run.searches()] == [200]

    run.page.get_by_text(STUDY_DESCRIPTION).click()
    run.page.get_by_role("button", name="Basic Viewer").click()
    wait_until(run.page, lambda: any("/frames/" in url for _, url in run.responses), timeout=60)
    frames = [status for status, url in run.responses if "/frames/" in url]
    assert 200 in frames, run.responses
    skip = run.page.get_by_text("Skip all")  # the first-visit tour covers part of the image
    if skip.count():
        skip.first.click()
    run.page.wait_for_timeout(1500)  # let the first image render
    run.screenshot("viewer")
    assert all(status < 400 for status, _ in run.responses), run.responses
    assert not run.failures


def test_without_the_viewer_origin_in_cors_the_search_is_blocked(run: Run, viewer: ViewerServer,
                                                                  deployment: Deployment) -> None:
    deployment.arm.set_cors_origins(deployment.dicom_id, [])
    try:
        run.sign_in(viewer.url)
        run.page.get_by_text(CONNECTION_ERROR).wait_for(timeout=60_000)
        run.screenshot("connection-error")
        assert not run.searches()  # no response reached the page: the preflight was refused
        assert any("/studies?" in url for url, _ in run.failures)
        assert any("blocked by CORS policy" in line for line in run.console)
        assert run.page.get_by_text(STUDY_DESCRIPTION).count() == 0
    finally:
        deployment.apply()


def test_without_a_role_the_service_answers_403(run: Run, viewer: ViewerServer, deployment: Deployment) -> None:
    assert deployment.arm.delete_role_assignments(deployment.dicom_id, ALICE_ID) == 1
    try:
        run.sign_in(viewer.url)
        run.page.get_by_text(CONNECTION_ERROR).wait_for(timeout=60_000)
        run.screenshot("forbidden")
        assert [status for status, _ in run.searches()] == [403]
        assert run.page.get_by_text(STUDY_DESCRIPTION).count() == 0
    finally:
        deployment.apply()
