"""A browser preview: ``--output http://127.0.0.1:8080`` serves a page with the live MJPEG stream and stats.

The pipeline must never wait for a viewer. ``write()`` only swaps the newest frame into a slot; every viewer
thread takes the newest frame when its socket is ready again and the first to ask encodes it as JPEG for all —
so a slow viewer skips frames instead of slowing the run, ten viewers cost one encode per frame, not ten, nothing
is encoded while nobody watches, and ``/frame.jpg`` is always the newest frame. It binds 127.0.0.1 unless the
URL names another address. With live controls, the page's buttons POST to ``/control/ACTION`` (see
stream/core/live_controls.py).

Every request passes the run's AccessPolicy (stream/web/guard.py): a Host that is not this server's name (DNS
rebinding) is refused, a token is required when one is set (and to listen beyond loopback), and a control POST from
a page of another origin or site is refused. At most MAX_HANDLERS connections are served at once; a stream viewer
may stay idle for VIEWER_SOCKET_TIMEOUT_S, any other connection for REQUEST_TIMEOUT_S (the shared 10 s).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import cv2

from backdrop.errors import ConfigError, SinkError
from backdrop.pixels import BGR, BGRA, I420, to_bgr
from backdrop.stream.config.run import HttpConfig
from backdrop.stream.core.frame import Frame
from backdrop.stream.core.latest import LatestSlot
from backdrop.stream.core.live_controls import ACTIONS, LiveControls, draw_hint
from backdrop.stream.sinks.base import Sink
from backdrop.stream.web.guard import AccessPolicy, is_loopback
from backdrop.stream.web.server import REQUEST_TIMEOUT_S, BoundedHTTPServer, GuardedHandler

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
BOUNDARY = "backdrop-frame"
VIEWER_SOCKET_TIMEOUT_S = 30.0  # a viewer that stops reading for this long is dropped
MAX_HANDLERS = 32  # connections served at once (stream viewers included); the next one gets 503
STALLED_AFTER_S = 2.0  # the page shows the "Reconnecting…" card when no frame came for this long
THREAD_JOIN_S = 2.0
FRAME_WAIT_S = 5.0  # /frame.jpg before the first frame: wait this long, then answer 503
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
 #controls button { background: #333; color: #eee; border: 1px solid #555; border-radius: 4px; padding: 4px 10px; }
 #controls button:hover { background: #444; }
</style></head>
<body><main>
 <div id="video"><img id="stream" src="/stream.mjpg" alt="live preview"><div id="card">Reconnecting…</div></div>
 <div id="stats">
  <span>fps <b id="fps">–</b></span><span>latency p50 <b id="p50">–</b> ms</span>
  <span>p95 <b id="p95">–</b> ms</span><span>dropped <b id="dropped">–</b></span>
  <span>reconnects <b id="reconnects">–</b></span><span>frames <b id="frames">–</b></span>
 </div>
 <div id="controls">
  <button data-action="previous-background">◀ background (p)</button>
  <button data-action="next-background">background ▶ (n)</button>
  <button data-action="blur-down">blur − (-)</button><button data-action="blur-up">blur + (+)</button>
  <button data-action="mask-view">mask view (m)</button><button data-action="pass-through">pass-through (space)</button>
  <button data-action="snapshot">snapshot (s)</button>
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
for (const button of document.querySelectorAll("#controls button")) {
  button.addEventListener("click", () => fetch("/control/" + button.dataset.action, {method: "POST"}));
}
</script></body></html>
"""


class PreviewSink(Sink):
    """Serves ``/`` (the page), ``/stream.mjpg`` (live), ``/frame.jpg`` (newest frame) and ``/stats.json``."""

    layouts = (BGR, BGRA, I420)  # converted only when a viewer asks for a JPEG

    def __init__(self, url: str, *, jpeg_quality: int = 80, http: HttpConfig | None = None) -> None:
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
        self.http = http or HttpConfig()
        self._images: LatestSlot[Frame] = LatestSlot()
        self._image_at: float | None = None
        self._jpeg: tuple[int, bytes] | None = None  # (frame number, JPEG) encoded last
        self._encoding = threading.Lock()  # one encode per frame, however many viewers ask for it
        self._lock = threading.Lock()  # guards the viewer count, counters and stats
        self._viewers = 0
        self._skipped = 0
        self._stats: dict[str, Any] = {}
        self.controls: LiveControls | None = None
        self._server: BoundedHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def describe(self) -> str:
        return f"preview {self.url}"

    def use_controls(self, controls: LiveControls) -> None:
        self.controls = controls

    def open(self, width: int, height: int, fps: float) -> None:
        policy = AccessPolicy.for_server(self.http, self.host, self.describe())  # beyond loopback: a token
        handler = type("PreviewHandler", (PreviewHandler,), {"preview": self, "policy": policy})
        try:
            self._server = BoundedHTTPServer((self.host, self.port), handler, max_handlers=MAX_HANDLERS)
        except OSError as e:
            raise SinkError(f"cannot serve the preview on {self.url}: {e.strerror or e}") from e
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(SHUTDOWN_POLL_S,), name="preview-http", daemon=True
        )
        self._thread.start()
        if not is_loopback(self.host):
            log.warning("the preview on %s is reachable from other machines (with its token)", self.url)
        log.info("preview at %s", self.url)

    def write(self, frame: Frame) -> None:
        self._images.put(frame)  # not copied: the pipeline hands sinks a new frame each time and never changes it
        self._image_at = time.monotonic()

    def update_stats(self, stats: dict[str, Any]) -> None:
        with self._lock:
            self._stats = dict(stats)

    def counters(self) -> dict[str, int]:
        """Frames /stream.mjpg viewers skipped because they (or the encoder) were slower than the run, summed."""
        return {"dropped": self._skipped}

    def close(self) -> None:
        self._images.close()  # wakes every viewer waiting for a frame
        with self._lock:
            server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(THREAD_JOIN_S)

    # -- used by the request handlers ------------------------------------------------------------------

    @contextmanager
    def viewer(self) -> Iterator[None]:
        """Counts a /stream.mjpg viewer for as long as it is connected (the stats show it)."""
        with self._lock:
            self._viewers += 1
        try:
            yield
        finally:
            with self._lock:
                self._viewers -= 1

    def newer_jpeg(self, than_seq: int, timeout: float | None = None) -> tuple[int, bytes] | None:
        """(number, JPEG) of the newest frame after frame ``than_seq``, waiting for one; None once the preview
        closes or after ``timeout`` s. Frames between ``than_seq`` (when not 0) and the result count as skipped."""
        taken = self._images.take(than_seq, timeout)
        if taken is None:
            return None
        seq, frame = taken
        if than_seq:
            with self._lock:
                self._skipped += seq - than_seq - 1
        with self._encoding:
            if self._jpeg is None or self._jpeg[0] < seq:  # else another viewer encoded it (or a newer one)
                self._jpeg = (seq, self._encode(frame))
            return self._jpeg

    def _encode(self, frame: Frame) -> bytes:
        image = to_bgr(frame.image, frame.layout)
        if self.controls is not None:
            image = draw_hint(image, self.controls.hint())
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        if not ok:
            raise SinkError(f"cannot encode a {image.shape[1]}x{image.shape[0]} preview frame as JPEG")
        return jpeg.tobytes()

    def stats_json(self) -> bytes:
        age = None if self._image_at is None else round(time.monotonic() - self._image_at, 3)
        with self._lock:
            stats = {**self._stats, "frame_age_s": age, "stalled": age is None or age > STALLED_AFTER_S}
            stats["viewers"] = self._viewers
        return json.dumps(stats, default=str).encode()


class PreviewHandler(GuardedHandler):
    """The preview's endpoints; ``preview`` and ``policy`` are set on the subclass each PreviewSink opens."""

    preview: PreviewSink

    def setup(self) -> None:
        # Read here, not at import, so a test can shorten it. typeshed declares the attribute a ClassVar, but
        # StreamRequestHandler.setup reads it through self, so this instance's value is the one it uses.
        self.timeout = REQUEST_TIMEOUT_S  # type: ignore[misc]
        super().setup()

    def get(self) -> None:
        preview = self.preview
        try:
            if self.route == "/":
                self.send_body(HTTPStatus.OK, PAGE.encode(), "text/html; charset=utf-8")
            elif self.route == "/stats.json":
                self.send_body(HTTPStatus.OK, preview.stats_json(), "application/json")
            elif self.route == "/frame.jpg":
                latest = preview.newer_jpeg(0, timeout=FRAME_WAIT_S)
                if latest is None:
                    self.refuse(HTTPStatus.SERVICE_UNAVAILABLE, "no frame yet, or the preview is closing")
                else:
                    self.send_body(HTTPStatus.OK, latest[1], "image/jpeg")
            elif self.route == "/stream.mjpg":
                self._stream()
            else:
                self.refuse(HTTPStatus.NOT_FOUND, "the preview serves /, /stream.mjpg, /frame.jpg and /stats.json")
        except SinkError as e:
            log.warning("%s", e)

    def post(self) -> None:
        controls = self.preview.controls
        action = self.route.removeprefix("/control/")
        if controls is None or not self.route.startswith("/control/") or action not in ACTIONS:
            self.refuse(HTTPStatus.NOT_FOUND, f"controls: POST /control/ACTION, ACTION one of {', '.join(ACTIONS)}")
        else:  # no body to check: the action is the path, and the guard has refused other sites' pages
            self.send_json(HTTPStatus.OK, {"hint": controls.act(action)})

    def _stream(self) -> None:
        self.connection.settimeout(VIEWER_SOCKET_TIMEOUT_S)  # a viewer may wait longer than a request
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        seq = 0
        with self.preview.viewer():
            while (latest := self.preview.newer_jpeg(seq)) is not None:
                seq, jpeg = latest
                head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                self.wfile.write(head.encode() + jpeg + b"\r\n")
                self.wfile.flush()
