"""`provision viewer DIR`: a person opens what apply wrote. The real OHIF build, the real command, over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from e2e_viewer import CACHE, OHIF_VERSION, ohif_dist

from provision.dicom.orthanc_process import free_port


def test_the_viewer_command_serves_the_build_with_the_written_config(tmp_path: Path) -> None:
    ohif_dist()  # fetched once into the repository's cache, which the command is pointed at
    out = tmp_path / "provision-out" / "azure"
    out.mkdir(parents=True)
    (out / "app-config.js").write_text("window.config = {routerBasename: '/'};\n")
    url = f"http://127.0.0.1:{free_port()}"
    env = {**os.environ, "PROVISION_OHIF_CACHE": str(CACHE), "NO_COLOR": "1"}
    process = subprocess.Popen([sys.executable, "-m", "provision", "viewer", str(out), "--url", url,
                                "--version", OHIF_VERSION], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                config = httpx.get(f"{url}/app-config.js", timeout=2)
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline, "the viewer did not start"
                time.sleep(0.1)
        assert config.status_code == 200 and config.text == (out / "app-config.js").read_text()
        assert config.headers["cache-control"] == "no-store"
        callback = httpx.get(f"{url}/callback", timeout=5)  # the SPA's routes fall back to index.html
        assert callback.status_code == 200 and "<html" in callback.text.lower()
    finally:
        process.terminate()
        output = process.communicate(timeout=20)[0]
    assert f"OHIF {OHIF_VERSION} at {url}" in output
