"""Publishes the processed stream as low-latency H.264 to an RTSP server (RECORD), surviving server restarts.

``write()`` never blocks the pipeline: it leaves the frame in a one-frame slot that a publisher thread encodes
and sends. While the server is away the thread reconnects with capped exponential backoff and frames are
dropped (counted), not queued — a live viewer wants now, not a backlog. Timestamps count frames of the source
rate (so readers see exactly that rate) but follow the wall clock, so gaps left by dropped frames stay gaps.
"""

from __future__ import annotations

import logging
import threading
import time
from fractions import Fraction
from urllib.parse import urlsplit

import av

from backdrop.errors import ConfigError, SinkError
from backdrop.pixels import BGR, BGRA, I420, to_bgr
from backdrop.stream.core.backoff import Backoff
from backdrop.stream.core.frame import Frame
from backdrop.stream.core.latest import LatestSlot
from backdrop.stream.core.redact import mask_credentials, masked_reason
from backdrop.stream.sinks.base import Sink

log = logging.getLogger(__name__)

# ultrafast + zerolatency: no lookahead, no B-frames, sliced threads — the encoder adds no frames of delay.
# repeat-headers puts SPS/PPS in-band before every keyframe so readers can join any time on any server.
X264_OPTIONS = {"preset": "ultrafast", "tune": "zerolatency", "x264-params": "repeat-headers=1:scenecut=0"}


class RtspSink(Sink):
    """``--output rtsp://HOST:PORT/PATH``: H.264 at the source's frame rate, one keyframe per ``gop_s``."""

    layouts = (BGR, BGRA, I420)

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 5.0,
        max_backoff_s: float = 10.0,
        gop_s: float = 1.0,
    ) -> None:
        if urlsplit(url).scheme.lower() not in ("rtsp", "rtsps"):
            raise ConfigError(f"not an RTSP URL: {mask_credentials(url)!r} (expected rtsp://HOST:PORT/PATH)")
        self.url = url
        self.timeout_s = timeout_s
        self.max_backoff_s = max_backoff_s
        self.gop_s = gop_s
        self.reconnects = 0
        self.connected = False
        self._geometry: tuple[int, int, float] | None = None
        self._frames: LatestSlot[Frame] = LatestSlot()
        self._outage_drops = 0  # frames taken while the server was away (written by the publisher thread only)
        self._publisher: threading.Thread | None = None

    def describe(self) -> str:
        return mask_credentials(self.url)

    def open(self, width: int, height: int, fps: float) -> None:
        """Connect now so a wrong URL or a missing server fails the run at once with one clear line."""
        if self._publisher is not None:  # a second publisher would interleave two encoders' streams on the server
            raise SinkError(f"{self.describe()} is already open")
        self._geometry = (width, height, fps)
        connection = self._connect()
        log.info("%s: publishing H.264 %dx%d at %.3g fps", self.describe(), width, height, fps)
        self._publisher = threading.Thread(target=self._publish, args=(connection,), name="rtsp-out", daemon=True)
        self._publisher.start()

    def write(self, frame: Frame) -> None:
        self._frames.put(frame)

    def close(self) -> None:
        self._frames.close()
        if self._publisher is not None and self._publisher is not threading.current_thread():
            self._publisher.join(self.timeout_s + 1.0)  # bounded: a hung server cannot hang shutdown

    def counters(self) -> dict[str, int]:
        """Frames not sent (replaced before the encoder took them, or during an outage) and reconnections."""
        return {"dropped": self._frames.overwritten + self._outage_drops, "reconnects": self.reconnects}

    # -- publisher thread -------------------------------------------------------------------------------

    def _publish(self, connection: _Connection | None) -> None:
        backoff = Backoff(max_s=self.max_backoff_s)
        retry_at = 0.0
        seq = 0
        try:
            while (taken := self._frames.take(seq)) is not None:
                seq, frame = taken
                if connection is None:
                    if time.monotonic() < retry_at:
                        self._outage_drops += 1
                        continue
                    try:
                        connection = self._connect()
                    except SinkError as e:
                        delay = backoff.next_delay()
                        retry_at = time.monotonic() + delay
                        log.warning("%s; retrying in %.1f s (attempt %d)", e, delay, backoff.failures)
                        continue
                    backoff.reset()
                    self.reconnects += 1
                    log.warning("%s: reconnected (reconnect %d)", self.describe(), self.reconnects)
                try:
                    connection.send(frame)
                except Exception as e:  # any failure of the connection means: drop it and reconnect
                    self.connected = False
                    connection.abort()
                    connection = None
                    delay = backoff.next_delay()
                    retry_at = time.monotonic() + delay
                    log.warning(
                        "%s: connection lost (%s); reconnecting in %.1f s", self.describe(), masked_reason(e), delay
                    )
        finally:
            self.connected = False
            if connection is not None:
                connection.finish()

    def _connect(self) -> _Connection:
        if self._geometry is None:
            raise SinkError(f"{self.describe()} is not open")
        width, height, fps = self._geometry
        try:
            connection = _Connection(self.url, self.timeout_s, width, height, fps, self.gop_s)
        except Exception as e:
            raise SinkError(f"cannot publish to {self.describe()}: {masked_reason(e)}") from e
        self.connected = True
        return connection


class _Connection:
    """One RTSP RECORD session with its own encoder (a fresh encoder starts with a keyframe)."""

    def __init__(self, url: str, timeout_s: float, width: int, height: int, fps: float, gop_s: float) -> None:
        # TCP: one connection that either works or fails loudly (UDP RECORD is often blocked and fails silently)
        options = {"rtsp_transport": "tcp", "timeout": str(int(timeout_s * 1_000_000))}
        self.container = av.open(url, mode="w", format="rtsp", options=options, timeout=timeout_s)
        try:
            rate = Fraction(fps).limit_denominator(1001)
            self.stream = self.container.add_stream("libx264", rate=rate, options=X264_OPTIONS)
            self.stream.width = width - width % 2  # 4:2:0 needs even sizes; PyAV's reformatter scales to fit
            self.stream.height = height - height % 2
            self.stream.pix_fmt = "yuv420p"
            self.time_base = 1 / rate
            self.stream.codec_context.time_base = self.time_base
            self.stream.codec_context.gop_size = max(1, round(fps * gop_s))
            self.stream.codec_context.max_b_frames = 0
            self.container.start_encoding()  # ANNOUNCE + SETUP + RECORD: fails here when the server is away
        except BaseException:
            self.abort()
            raise
        self.started_at = time.monotonic()
        self.last_pts = -1

    def send(self, frame: Frame) -> None:
        if frame.layout == I420:  # the encoder's own format: no conversion at all
            picture = av.VideoFrame.from_ndarray(frame.image, format="yuv420p")
        else:
            picture = av.VideoFrame.from_ndarray(to_bgr(frame.image, frame.layout), format="bgr24")  # no alpha in RTSP
        self.last_pts = max(self.last_pts + 1, round((time.monotonic() - self.started_at) / self.time_base))
        picture.pts = self.last_pts
        picture.time_base = self.time_base
        for packet in self.stream.encode(picture):
            self.container.mux(packet)

    def finish(self) -> None:
        """Flush the encoder and TEARDOWN; errors here only mean the server already went away."""
        try:
            for packet in self.stream.encode(None):
                self.container.mux(packet)
        except Exception as e:
            log.debug("flushing the RTSP encoder failed: %s", masked_reason(e))
        self.abort()

    def abort(self) -> None:
        try:
            self.container.close()
        except Exception as e:
            log.debug("closing the RTSP connection failed: %s", masked_reason(e))
