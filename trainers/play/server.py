"""A local web server for the play page: the static site folder, on 127.0.0.1 only, with the types a browser needs
(``application/wasm`` for WebAssembly's streaming compile, ``text/javascript`` for ES modules)."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path
from typing import ClassVar

HOST = "127.0.0.1"
TYPES = {".wasm": "application/wasm", ".mjs": "text/javascript", ".js": "text/javascript", ".json": "application/json",
         ".onnx": "application/octet-stream", ".png": "image/png", ".css": "text/css", ".html": "text/html"}


class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map: ClassVar[dict[str, str]] = {**http.server.SimpleHTTPRequestHandler.extensions_map, **TYPES}

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")  # a rebuilt model is never shown from the browser's cache
        super().end_headers()

    def log_request(self, code="-", size="-"):  # quiet: a line per request would bury the URL; errors still print
        pass


def make_server(site: str | Path, port: int = 8000) -> http.server.ThreadingHTTPServer:
    """A server of ``site`` on 127.0.0.1:``port`` (0: any free port), not yet serving."""
    handler = functools.partial(_Handler, directory=str(site))
    try:
        return http.server.ThreadingHTTPServer((HOST, int(port)), handler)
    except OSError as e:
        raise OSError(f"Cannot serve on {HOST}:{port} ({e.strerror or e}): pick another with --port (0: any free port).") from None


def url_of(server: http.server.ThreadingHTTPServer) -> str:
    return f"http://{HOST}:{server.server_address[1]}/"


def serve_in_thread(site: str | Path, port: int = 0) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Serve ``site`` from a daemon thread (tests, benchmarks); ``server.shutdown()`` stops it."""
    server = make_server(site, port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, url_of(server)
