"""The proof: the real OHIF viewer (`@ohif/app`, built, from the npm registry) in Debian's Chromium, configured
only by the `app-config.js` that `provision azure apply` wrote, signs a user in at the sandbox's Entra ID, lists
the test study from the sandbox's DICOM service and opens it (frames are fetched). Two negative twins change one
thing out of band, as a portal click would, and must break the viewer the way Azure would: the viewer's origin
removed from the service's CORS (the browser blocks the search: "Data Source Connection Error"), and the user's
role removed (the service answers 403). After each twin, `provision azure apply` puts the plan back.

Screenshots and a log of each run's console and DICOMweb traffic go to test-artifacts/viewer/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import STUDY_DESCRIPTION, Deployment
from e2e_browser import Run, browser_run, wait_until
from e2e_viewer import ViewerServer, ohif_dist

from provision.sandbox.azure.directory import ALICE_ID

pytestmark = pytest.mark.slow

USER_UPN = "alice@contoso.onmicrosoft.com"
CONNECTION_ERROR = "Data Source Connection Error"


@pytest.fixture(scope="module")
def viewer(deployment: Deployment) -> Iterator[ViewerServer]:
    with ViewerServer(ohif_dist(), deployment.out / "app-config.js", deployment.viewer_url) as server:
        yield server


@pytest.fixture
def run(request: pytest.FixtureRequest, chromium: Any, viewer: ViewerServer, deployment: Deployment,
        artifacts: Path) -> Iterator[Run]:
    with browser_run(request, chromium, deployment.dicomweb_root, artifacts) as current:
        yield current


def test_viewer_signs_in_lists_and_opens_the_study(run: Run, viewer: ViewerServer) -> None:
    run.sign_in(viewer.url, "Pick an account", USER_UPN)
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
        run.sign_in(viewer.url, "Pick an account", USER_UPN)
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
        run.sign_in(viewer.url, "Pick an account", USER_UPN)
        run.page.get_by_text(CONNECTION_ERROR).wait_for(timeout=60_000)
        run.screenshot("forbidden")
        assert [status for status, _ in run.searches()] == [403]
        assert run.page.get_by_text(STUDY_DESCRIPTION).count() == 0
    finally:
        deployment.apply()
