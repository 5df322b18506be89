"""A browser preview: ``--output http://127.0.0.1:8080`` serves a page with the live MJPEG stream and stats.

The pipeline must never wait for a viewer. ``write()`` only swaps the newest frame into a slot; one encoder
thread turns it into a JPEG (only while someone watches), and every viewer thread sends whatever JPEG is newest
when its socket is ready again — so a slow viewer skips frames instead of slowing the run, and ten viewers
cost one encode per frame, not ten. It binds 127.0.0.1 unless the URL names another address.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import cv2
import numpy as np

from backdrop.errors import ConfigError, SinkError
from backdrop.stream.sinks.base import Sink

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
BOUNDARY = "backdrop-frame"
VIEWER_SOCKET_TIMEOUT_S = 30.0  # a viewer that stops reading for this long is dropped
STALLED_AFTER_S = 2.0  # the page shows the "Reconnecting…" card when no frame came for this long
THREAD_JOIN_S = 2.0
SHUTDOWN_POLL_S = 0.1  # how quickly close() stops the HTTP server

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Backdrop preview</title>
<style>
 body { margin: 0; background: #111; color: #eee; font: 14px system-ui, sans-serif; }
 main { display: flex; flex-direction: column; align-items: center; gap: 8px; padding: 12px; }
 #video { position: relative; }
 #video img { max-width: 100vw; max-height: 85vh; display: block; background: #000; }
 #card { position: absolute; inset: 0; display: none; align-items: center; justify-content: center;
         background: rgba(0, 0, 0, .6); font-size: 24px; }
 #stats { display: flex; gap: 18px; font-variant-numeric: tabular-nums; }
 #stats b { color: #8cf; }
</style></head>
<body><main>
 <div id="video"><img id="stream" src="/stream.mjpg" alt="live preview"><div id="card">Reconnecting…</div></div>
 <div id="stats">
  <span>fps <b id="fps">–</b></span><span>latency p50 <b id="p50">–</b> ms</span>
  <span>p95 <b id="p95">–</b> ms</span><span>dropped <b id="dropped">–</b></span>
  <span>reconnects <b id="reconnects">–</b></span><span>frames <b id="frames">–</b></span>
 </div>
</main>
<script>
const show = (id, value) => { document.getElementById(id).textContent = value ?? "–"; };
async function refresh() {
  try {
    const s = await (await fetch("/stats.json", {cache: "no-store"})).json();
    const latency = s.latency_ms || {};
    show("fps", s.fps); show("p50", latency.p50); show("p95", latency.p95);
    show("dropped", s.dropped); show("reconnects", s.reconnects); show("frames", s.frames_out);
    document.getElementById("card").style.display = s.stalled ? "flex" : "none";
  } catch (e) {
    document.getElementById("card").style.display = "flex";
  }
}
refresh(); setInterval(refresh, 1000);
</script></body></html>
"""


class PreviewSink(Sink):
    """Serves ``/`` (the page), ``/stream.mjpg`` (live), ``/frame.jpg`` (newest frame) and ``/stats.json``."""

    def __init__(self, url: str, *, jpeg_quality: int = 80) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or parts.path not in ("", "/") or parts.query:
            raise ConfigError(f"preview output must look like http://HOST:PORT, got {url!r}")
        try:
            port = parts.port
        except ValueError as e:
            raise ConfigError(f"bad preview port in {url!r}") from e
        self.host = parts.hostname or DEFAULT_HOST
        self.port = DEFAULT_PORT if port is None else port  # 0 picks a free port; see ``port`` after open()
        self.jpeg_quality = jpeg_quality
        self._changed = threading.Condition()
        self._closing = False
        self._image: np.ndarray | None = None
        self._image_seq = 0
        self._image_at: float | None = None
        self._jpeg: bytes | None = None
        self._jpeg_seq = 0
        self._viewers = 0
        self._stats: dict[str, Any] = {}
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def describe(self) -> str:
        return f"preview {self.url}"

    def open(self, width: int, height: int, fps: float) -> None:
        try:
            self._server = ThreadingHTTPServer((self.host, self.port), _handler_for(self))
        except OSError as e:
            raise SinkError(f"cannot serve the preview on {self.url}: {e.strerror or e}") from e
        self.port = self._server.server_address[1]
        self._threads = [
            threading.Thread(
                target=self._server.serve_forever, args=(SHUTDOWN_POLL_S,), name="preview-http", daemon=True
            ),
            threading.Thread(target=self._encode_loop, name="preview-jpeg", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        if self.host not in ("127.0.0.1", "localhost", "::1"):
            log.warning("the preview on %s is reachable from other machines", self.url)
        log.info("preview at %s", self.url)

    def write(self, image: np.ndarray) -> None:
        with self._changed:
            self._image = image  # not copied: the pipeline hands sinks a new array per frame and never changes it
            self._image_seq += 1
            self._image_at = time.monotonic()
            self._changed.notify_all()

    def update_stats(self, stats: dict[str, Any]) -> None:
        with self._changed:
            self._stats = dict(stats)

    def close(self) -> None:
        with self._changed:
            if self._closing:
                return
            self._closing = True
            self._changed.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for thread in self._threads:
            thread.join(THREAD_JOIN_S)

    # -- encoder ---------------------------------------------------------------------------------------

    def _encode_loop(self) -> None:
        while True:
            with self._changed:
                while not self._closing and (self._viewers == 0 or self._image_seq == self._jpeg_seq):
                    self._changed.wait()
                if self._closing:
                    return
                seq, image = self._image_seq, self._image
            if image.ndim == 3 and image.shape[2] == 4:
                image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
            ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
            if not ok:
                log.warning("cannot encode a preview frame as JPEG")
                continue
            with self._changed:
                self._jpeg, self._jpeg_seq = jpeg.tobytes(), seq
                self._changed.notify_all()

    # -- used by the request handlers ------------------------------------------------------------------

    @contextmanager
    def viewer(self) -> Iterator[None]:
        """Counts a viewer for as long as it is connected, so frames are only encoded while watched."""
        with self._changed:
            self._viewers += 1
            self._changed.notify_all()
        try:
            yield
        finally:
            with self._changed:
                self._viewers -= 1

    def newer_jpeg(self, than_seq: int) -> tuple[int, bytes] | None:
        """Block until a JPEG newer than ``than_seq`` exists; None once the preview closes."""
        with self._changed:
            while not self._closing and self._jpeg_seq <= than_seq:
                self._changed.wait()
            if self._closing:
                return None
            return self._jpeg_seq, self._jpeg

    def stats_json(self) -> bytes:
        with self._changed:
            age = None if self._image_at is None else round(time.monotonic() - self._image_at, 3)
            stats = {**self._stats, "frame_age_s": age, "stalled": age is None or age > STALLED_AFTER_S}
            stats["viewers"] = self._viewers
        return json.dumps(stats, default=str).encode()


def _handler_for(preview: PreviewSink) -> type[BaseHTTPRequestHandler]:
    class PreviewHandler(BaseHTTPRequestHandler):
        timeout = VIEWER_SOCKET_TIMEOUT_S
        server_version = "Backdrop"

        def do_GET(self) -> None:
            route = self.path.split("?", 1)[0]
            try:
                if route == "/":
                    self._send(PAGE.encode(), "text/html; charset=utf-8")
                elif route == "/stats.json":
                    self._send(preview.stats_json(), "application/json")
                elif route == "/frame.jpg":
                    with preview.viewer():
                        latest = preview.newer_jpeg(0)
                    if latest is None:
                        self.send_error(HTTPStatus.SERVICE_UNAVAILABLE, "preview closing")
                    else:
                        self._send(latest[1], "image/jpeg")
                elif route == "/stream.mjpg":
                    self._stream()
                else:
                    self.send_error(HTTPStatus.NOT_FOUND)
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                log.debug("preview viewer %s went away", self.client_address[0])

        def _send(self, body: bytes, content_type: str) -> None:
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _stream(self) -> None:
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            seq = 0
            with preview.viewer():
                while (latest := preview.newer_jpeg(seq)) is not None:
                    seq, jpeg = latest
                    head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                    self.wfile.write(head.encode() + jpeg + b"\r\n")
                    self.wfile.flush()

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("preview: " + format, *args)

    return PreviewHandler
