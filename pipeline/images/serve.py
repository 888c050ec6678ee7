"""A small HTTP server on 127.0.0.1 that serves a folder of images, plus scripted answers.

``loom demo`` serves its generated images with it (the demo fetches them like any crawl would), and
the tests use it to play the web's failures: a 404, a slow answer, a redirect to a refused address,
``X-Robots-Tag: noai``, HTML instead of an image, a 503 that recovers. Every request is logged.
"""

from __future__ import annotations

import http.server
import logging
import mimetypes
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass
class Route:
    """A scripted answer for one path: ``status`` with ``body`` and ``headers`` — or, with ``status``
    None, a file (``file``, relative to the root, else the path itself) with ``headers`` added.
    ``fail_times``: answer ``status`` this many times, then serve the file (a server that recovers)."""

    status: int | None = None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering (a slow server)
    drip: float = 0.0  # seconds between the bytes of the body (a server that never quite stops)
    fail_times: int | None = None
    file: str | None = None


class _Server(http.server.ThreadingHTTPServer):
    request_queue_size = 256  # the default, 5, drops the connects of 32 parallel downloads
    daemon_threads = True


class ImageServer:
    """Serves ``root`` on ``host:port`` (port 0: a free one) in a background thread."""

    def __init__(self, root: Path | None = None, host: str = "127.0.0.1", port: int = 0):
        self.root = Path(root) if root else None
        self.routes: dict[str, Route] = {}
        self.requests: Counter = Counter()  # path → requests received
        self._lock = threading.Lock()
        self._stop = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                server._answer(self)

            def log_message(self, fmt: str, *args: object) -> None:
                log.debug("%s %s", self.address_string(), fmt % args)

        self._httpd = _Server((host, port), Handler)
        self.host, self.port = self._httpd.server_address[:2]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> ImageServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def _answer(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        path = handler.path.split("?", 1)[0]
        with self._lock:
            self.requests[path] += 1
            route = self.routes.get(path)
            scripted = (
                route is not None
                and route.status is not None
                and (route.fail_times is None or route.fail_times > 0)
            )
            if scripted and route.fail_times is not None:
                route.fail_times -= 1
        if scripted:
            if route.delay:
                self._stop.wait(route.delay)  # returns early when the server stops
            self._send(handler, route.status, route.body, route.headers, route.drip)
            return
        rel = route.file if route and route.file else path.lstrip("/")
        file = (self.root / rel).resolve() if self.root else None
        if file is None or not file.is_file() or self.root.resolve() not in file.parents:
            self._send(handler, 404, b"not found", {"Content-Type": "text/plain"})
            return
        ctype = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        extra = route.headers if route and route.status is None else {}  # not a recovered error's
        self._send(handler, 200, file.read_bytes(), {"Content-Type": ctype, **extra})

    def _send(
        self,
        handler: http.server.BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        headers: dict,
        drip: float = 0.0,
    ) -> None:
        try:
            handler.send_response(status)
            for k, v in headers.items():
                handler.send_header(k, v)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            if not drip:
                handler.wfile.write(body)
            for i in range(len(body) if drip else 0):
                handler.wfile.write(body[i : i + 1])
                handler.wfile.flush()
                if self._stop.wait(drip):
                    return
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout): fine
            pass
