"""The built OHIF viewer served from this machine, with an app-config.js provision wrote: what `provision viewer`
runs so a person can open what `make demo` set up, and what the browser tests drive.

The server follows OHIF's own `serve.json`: every unknown path falls back to `index.html` (so `/callback` and
`/viewer` work), and `/app-config.js` is the given file, never cached. It binds the host and port of the
viewer URL the plan registered (redirect URIs and CORS name that origin), in a thread of its own.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from provision.errors import ConfigurationError

STARTUP_TIMEOUT = 10.0


class ViewerServer:
    """OHIF's `dist` at `url` (http://HOST:PORT) with `app_config` as `/app-config.js`."""

    def __init__(self, dist: Path, app_config: Path, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise ConfigurationError(f"viewer URL {url!r}: expected http://HOST:PORT (a local server speaks http)")
        self.dist = dist
        self.app_config = app_config
        self.url = f"http://{parts.hostname}:{parts.port}"
        self.host = "127.0.0.1" if parts.hostname == "localhost" else parts.hostname
        self.port = parts.port
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

        if not self.app_config.is_file():
            raise ConfigurationError(f"{self.app_config} does not exist", hint="run apply first; it writes it")
        config = uvicorn.Config(self._app(), host=self.host, port=self.port, log_config=None,
                                log_level="warning", access_log=False, lifespan="off")
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(target=server.run, name="ohif-viewer", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ConfigurationError(f"the viewer server did not start on {self.url}",
                                         hint="is the port in use? pass another --url")
            time.sleep(0.01)
        return self

    def wait(self) -> None:
        """Block until the server stops (Ctrl+C)."""
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(0.5)

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(10)

    def __enter__(self) -> ViewerServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


__all__ = ["ViewerServer"]
