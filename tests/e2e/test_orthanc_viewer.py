"""The proof of share links in the real viewer: OHIF 3.13.2 (npm) served by nginx over HTTPS with the target's
development CA, which Debian's Chromium trusts through an NSS database (no certificate error is ignored),
against Debian's Orthanc with the share filter, holding two studies of the same patient.

The link `provision orthanc share` prints for study A opens A and shows its image (a /frames/ request answered
200 and a canvas that is not blank); the study browser's priors search by PatientID is answered 403 and the page
still works; study B is never served; the page is cross-origin isolated. The negative twins (an expired token, a
tampered one, none, a revoked one) each end on OHIF's "not available" message with no image.

Screenshots and each run's DICOMweb traffic and console go to test-artifacts/orthanc/.
"""

from __future__ import annotations

import base64
import json
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from e2e_browser import CHROMIUM_FLAGS, chromium_path, trusted_home
from e2e_system import require_system_programs

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "orthanc"))

from orthanc_stack import REPO, Deployment, new_deployment, running, two_studies_of_one_patient

pytestmark = pytest.mark.slow

ARTIFACTS = REPO / "test-artifacts" / "orthanc"
NOT_AVAILABLE = "One or more of the requested studies are not available at this time."
#: a viewport canvas with an image: enough lit pixels of enough different values (a blank one is all black)
CANVAS_STATS = """() => [...document.querySelectorAll('canvas')].filter(c => {
    const r = c.getBoundingClientRect(); return r.width > 50 && r.height > 50; }).map(c => {
  let ctx = null;
  try { ctx = c.getContext('2d'); } catch (e) {}
  if (!ctx) return {lit: 0, distinct: 0};
  const d = ctx.getImageData(0, 0, c.width, c.height).data;
  let lit = 0; const values = new Set();
  for (let i = 0; i < d.length; i += 4) {
    if (d[i] + d[i+1] + d[i+2] > 30) lit++;
    if (values.size < 300) values.add(d[i]);
  }
  return {lit, distinct: values.size};
})"""


@dataclass
class Stack:
    site: Deployment
    uid_a: str
    uid_b: str


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require_system_programs()
    site = new_deployment(tmp_path_factory.mktemp("orthanc-viewer") / "work", name="viewer-proof")
    a, b = two_studies_of_one_patient()
    with running(site):
        site.store(a)
        site.store(b)
        yield Stack(site, a[0].study_uid, b[0].study_uid)


@pytest.fixture(scope="module")
def chromium(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    env = trusted_home(tmp_path_factory.mktemp("browser-home"), stack.site.ca)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS,
                                             env=env)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Run:
    """One browser context and what its page saw of DICOMweb."""

    page: Any
    root: str
    name: str
    responses: list[tuple[int, str]] = field(default_factory=list)
    authorization: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)

    def attach(self) -> None:
        def on_response(response: Any) -> None:
            if response.url.startswith(self.root):
                self.responses.append((response.status, response.url))

        def on_request(request: Any) -> None:
            if request.url.startswith(self.root) and "/frames/" in request.url:
                self.authorization.append(request.all_headers().get("authorization", ""))

        self.page.on("response", on_response)
        self.page.on("request", on_request)
        self.page.on("requestfailed", lambda request: self.failures.append(f"{request.url} {request.failure}"))
        self.page.on("console", lambda message: self.console.append(f"{message.type}: {message.text}"))

    def wait_for(self, condition: Any, timeout: float = 60) -> bool:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                return False
            self.page.wait_for_timeout(100)
        return True

    def screenshot(self, label: str) -> Path:
        skip = self.page.get_by_text("Skip all")  # the first-visit tour, when it came late
        if skip.count() and skip.first.is_visible():
            skip.first.click()
            self.page.wait_for_timeout(300)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.name}-{label}.png"
        self.page.screenshot(path=str(path))
        return path

    def frames(self, status: int) -> list[str]:
        return [url for code, url in self.responses if code == status and "/frames/" in url]

    def lit_canvases(self) -> list[dict[str, int]]:
        return [c for c in self.page.evaluate(CANVAS_STATS) if c["lit"] > 500 and c["distinct"] > 10]

    def write_log(self) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        lines = [f"{status} {url}" for status, url in self.responses] + [f"FAILED {f}" for f in self.failures]
        text = "\n".join([*lines, *self.console]) + "\n"
        (ARTIFACTS / f"{self.name}.log").write_text(re.sub(r"token=[\w.-]+", "token=<redacted>", text))


@pytest.fixture
def run(request: pytest.FixtureRequest, chromium: Any, stack: Stack) -> Iterator[Run]:
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(30_000)
    current = Run(context.new_page(), f"{stack.site.url}/dicom-web", request.node.name.removeprefix("test_"))
    current.attach()
    try:
        yield current
    finally:
        current.write_log()
        context.close()


def open_link(run: Run, link: str) -> None:
    run.page.goto(link)
    run.wait_for(lambda: bool(run.frames(200)) or run.page.get_by_text(NOT_AVAILABLE).count() > 0, 60)


def test_a_share_link_opens_its_study_and_nothing_else(run: Run, stack: Stack) -> None:
    link, token, _ = stack.site.share("--study", stack.uid_a, "--expires", "1h", "--note", "browser proof")
    open_link(run, link)
    assert run.frames(200), run.responses
    assert run.wait_for(lambda: bool(run.lit_canvases()), 30), run.page.evaluate(CANVAS_STATS)
    run.page.wait_for_timeout(1000)
    run.screenshot("study-A")
    assert run.page.evaluate("crossOriginIsolated") is True
    assert run.page.evaluate("typeof SharedArrayBuffer") == "function"
    # OHIF moved the token from the address bar into Authorization headers
    assert "token=" not in run.page.url
    assert run.authorization and all(value == f"Bearer {token}" for value in run.authorization)
    priors = [status for status, url in run.responses if "00100020=" in url]
    assert priors and all(status == 403 for status in priors), run.responses
    assert run.page.get_by_text(NOT_AVAILABLE).count() == 0  # the refused priors search did not break the page
    assert not any(status < 400 and stack.uid_b in url for status, url in run.responses)
    assert run.page.get_by_text("Prior study B").count() == 0
    assert not [f for f in run.failures if stack.site.url in f]


def forged(token: str, uid: str) -> str:
    head, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["studies"] = [*claims["studies"], uid]
    return f"{head}.{base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b'=').decode()}.{signature}"


@pytest.mark.parametrize("twin", ["expired", "tampered", "no-token", "revoked"])
def test_a_bad_link_fails_visibly(run: Run, stack: Stack, twin: str) -> None:
    site = stack.site
    base = f"{site.url}/viewer?StudyInstanceUIDs={stack.uid_b}"
    if twin == "expired":
        link = f"{base}&token={site.mint([stack.uid_b], issued_ago=700)}"
    elif twin == "tampered":  # a real link for A, its claims extended to B
        _, token, _ = site.share("--study", stack.uid_a, "--expires", "1h")
        link = f"{base}&token={forged(token, stack.uid_b)}"
    elif twin == "no-token":
        link = base
    else:
        link, _, share_id = site.share("--study", stack.uid_b, "--expires", "1h")
        site.ok("orthanc", "shares", "revoke", str(site.plan), "--id", share_id)
    open_link(run, link)
    assert run.wait_for(lambda: run.page.get_by_text(NOT_AVAILABLE).count() > 0, 60), run.responses
    run.page.wait_for_timeout(500)
    run.screenshot(twin)
    assert not run.frames(200) and not run.lit_canvases()
    assert run.responses and all(status == 403 for status, _ in run.responses), run.responses
