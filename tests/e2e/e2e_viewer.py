"""The built OHIF viewer (`@ohif/app` from the npm registry) and a static server for it on 127.0.0.1.

`ohif_dist()` fetches the build with `provision.ohif.build` (`npm pack @ohif/app@VERSION`, once) into
`.cache/ohif/` of the repository; reruns reuse the unpacked copy. `ViewerServer`
serves that directory the way OHIF's own `serve.json` asks (every unknown path falls back to
`index.html`, so `/callback` and `/viewer` work) with one difference: `/app-config.js` is the file
`provision azure apply` wrote.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from provision.dicom.orthanc_process import free_port
from provision.ohif import build

OHIF_VERSION = "3.13.2"
REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("PROVISION_OHIF_CACHE", REPO / ".cache" / "ohif"))


def ohif_dist(version: str = OHIF_VERSION, cache: Path = CACHE) -> Path:
    """The `dist/` directory of the built viewer (`provision.ohif.build`, cached in the repository)."""
    return build.ohif_dist(version, cache)


class ViewerServer:
    """OHIF's dist on http://127.0.0.1:PORT with `app_config` as `/app-config.js` (uvicorn in a thread)."""

    def __init__(self, dist: Path, app_config: Path, port: int | None = None) -> None:
        self.dist = dist
        self.app_config = app_config
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def _app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import FileResponse, Response
        from starlette.routing import Route

        dist = self.dist.resolve()
        index = dist / "index.html"

        async def serve(request: Request) -> Response:
            path = request.path_params.get("path", "")
            if path == "app-config.js":
                return FileResponse(self.app_config, media_type="application/javascript",
                                    headers={"Cache-Control": "no-store"})
            candidate = (dist / path).resolve()
            if path and candidate.is_file() and candidate.is_relative_to(dist):
                return FileResponse(candidate)
            return FileResponse(index, headers={"Cache-Control": "no-store"})

        return Starlette(routes=[Route("/", serve), Route("/{path:path}", serve)])

    def start(self) -> ViewerServer:
        import uvicorn

        config = uvicorn.Config(self._app(), host="127.0.0.1", port=self.port, log_config=None,
                                log_level="warning", access_log=False, lifespan="off")
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(target=server.run, name="ohif-viewer", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the viewer server did not start on {self.url}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(10)

    def __enter__(self) -> ViewerServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
