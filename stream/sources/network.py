"""Live input from RTSP cameras, media servers and HTTP streams (MJPEG, HLS, any URL FFmpeg opens).

A dropped connection must never end a run. Each connection attempt runs in its own receiver thread; a
supervisor thread is the watchdog: it tracks the time of the last decoded frame and abandons a receiver
that stalls for ``read_timeout_s``. FFmpeg's own timeouts are not enough on their own — they restart with
every packet, so a relay that trickles one stale packet after the publisher died keeps a reader alive, and
cv2 goes further and returns stale frames for 30 s. An abandoned receiver exits by itself once its blocking
call returns (bounded by the FFmpeg timeouts); the supervisor does not wait for it but reconnects with capped
exponential backoff, so ``close()`` never hangs. Only the newest frame is kept: a live source must not queue.
"""

from __future__ import annotations

import logging
import threading
import time
from urllib.parse import urlsplit

import av
import cv2
import numpy as np

from backdrop.errors import ConfigError, SourceError
from backdrop.stream.redact import mask_credentials, masked_reason
from backdrop.stream.sources.base import Source

log = logging.getLogger(__name__)

TRANSPORTS = ("tcp", "udp")
INITIAL_BACKOFF_S = 0.5
FALLBACK_FPS = 30.0
PLAUSIBLE_FPS = (1.0, 240.0)
SUPERVISOR_JOIN_S = 1.0
# Errors that retrying cannot fix when they happen on the very first connection: report them instead.
FATAL_ON_FIRST_OPEN = (av.error.HTTPUnauthorizedError, av.error.HTTPForbiddenError, av.error.ProtocolNotFoundError)


class NetworkSource(Source):
    """Frames from a network stream, reconnecting forever (until ``close()``) when it drops or stalls.

    ``reconnects`` counts successful reconnections after the first connection (the pipeline's stats report it),
    ``connected`` says whether frames are flowing now, ``dropped`` counts frames replaced before being read.
    """

    live = True

    def __init__(
        self,
        url: str,
        *,
        transport: str = "tcp",
        open_timeout_s: float = 5.0,
        read_timeout_s: float = 2.0,
        max_backoff_s: float = 10.0,
    ) -> None:
        if "://" not in url:
            raise ConfigError(f"not a stream URL: {mask_credentials(url)!r} (expected rtsp://… or http://…)")
        if transport not in TRANSPORTS:
            raise ConfigError(f"unknown RTSP transport {transport!r}: use one of {', '.join(TRANSPORTS)}")
        for name, value in (("open", open_timeout_s), ("read", read_timeout_s), ("backoff", max_backoff_s)):
            if value <= 0:
                raise ConfigError(f"{name} timeout must be positive, got {value}")
        self.url = url
        self.transport = transport
        self.open_timeout_s = open_timeout_s
        self.read_timeout_s = read_timeout_s
        self.max_backoff_s = max_backoff_s
        self.reconnects = 0
        self.connected = False
        self.dropped = 0  # frames replaced by a newer one before anybody read them
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._generation = 0
        self._ended: str | None = None  # why the current receiver stopped
        self._fatal: SourceError | None = None
        self._frame: np.ndarray | None = None
        self._frame_seq = 0
        self._read_seq = 0
        self._last_frame_at = 0.0
        self._frames_this_connection = 0
        self._lost_at: float | None = None
        self._size: tuple[int, int] | None = None  # (width, height) fixed by the first connection
        self._fps = FALLBACK_FPS

    # -- Source interface -------------------------------------------------------------------------------

    def open(self) -> None:
        """Connect (retrying with backoff while the server is unreachable) and wait for the first frame."""
        if self._supervisor is not None:
            return
        self._supervisor = threading.Thread(target=self._supervise, name="network-source-watchdog", daemon=True)
        self._supervisor.start()
        try:
            with self._changed:
                while self._frame is None and self._fatal is None and not self._stop.is_set():
                    self._changed.wait()
        except BaseException:  # Ctrl-C while waiting for a server that is not there: leave no thread behind
            self.close()
            raise
        if self._fatal is not None:
            self.close()
            raise self._fatal
        if self._frame is None:
            raise SourceError(f"{self.describe()}: closed before the first frame arrived")

    def read(self) -> np.ndarray | None:
        """The newest frame not returned yet; blocks while reconnecting; None once closed."""
        with self._changed:
            while self._frame_seq == self._read_seq and not self._stop.is_set():
                self._changed.wait()
            if self._stop.is_set():
                return None
            self._read_seq = self._frame_seq
            return self._frame

    def interrupt(self) -> None:
        """A stop during an outage: give up reconnecting so the blocked ``read()`` returns None."""
        self.close()

    def close(self) -> None:
        """Stop reconnecting and release the connection without waiting on a blocked network call."""
        self._stop.set()
        with self._changed:
            self._generation += 1
            self.connected = False
            self._changed.notify_all()
        if (
            self._supervisor is not None
            and self._supervisor.is_alive()
            and self._supervisor is not threading.current_thread()
        ):
            self._supervisor.join(SUPERVISOR_JOIN_S)
        # Receivers are not joined: one blocked in FFmpeg sees it was abandoned once its call times out.

    @property
    def fps(self) -> float:
        return self._fps

    def describe(self) -> str:
        return mask_credentials(self.url)

    # -- watchdog and reconnect policy ------------------------------------------------------------------

    def _supervise(self) -> None:
        failures = 0
        while not self._stop.is_set():
            generation = self._start_receiver()
            reason, delivered = self._watch(generation)
            if reason is None:
                return
            self._abandon(generation)
            if self._fatal is not None:
                return
            if delivered:
                failures = 0
                self._lost_at = time.monotonic()
            delay = min(self.max_backoff_s, INITIAL_BACKOFF_S * 2**failures)
            failures += 1
            if delivered:
                log.warning("%s: stream lost (%s); reconnecting in %.1f s", self.describe(), reason, delay)
            else:
                log.warning(
                    "%s: cannot connect (%s); retrying in %.1f s (attempt %d)", self.describe(), reason, delay, failures
                )
            if self._stop.wait(delay):
                return

    def _start_receiver(self) -> int:
        with self._changed:
            self._generation += 1
            generation = self._generation
            self._ended = None
            self._frames_this_connection = 0
        threading.Thread(target=self._receive, args=(generation,), name="network-source-rx", daemon=True).start()
        return generation

    def _watch(self, generation: int) -> tuple[str | None, bool]:
        """Wait until the receiver ends or stalls: (why, whether it delivered frames); (None, _) once closed."""
        started = time.monotonic()
        with self._changed:
            while not self._stop.is_set() and self._generation == generation:
                delivered = self._frames_this_connection > 0
                if self._ended is not None:
                    return self._ended, delivered
                if delivered:
                    deadline = self._last_frame_at + self.read_timeout_s
                else:  # connecting, or waiting for the first keyframe
                    deadline = started + self.open_timeout_s + self.read_timeout_s
                left = deadline - time.monotonic()
                if left <= 0:
                    if delivered:
                        return f"no frame for {self.read_timeout_s:.1f} s", True
                    return f"no frame within {self.open_timeout_s + self.read_timeout_s:.1f} s", False
                self._changed.wait(left)
            return None, False

    def _abandon(self, generation: int) -> None:
        with self._changed:
            if self._generation == generation:
                self._generation += 1
            self.connected = False

    # -- one connection (runs in a receiver thread) -----------------------------------------------------

    def _receive(self, generation: int) -> None:
        try:
            container = av.open(self.url, options=self._options(), timeout=(self.open_timeout_s, self.read_timeout_s))
        except Exception as e:  # the top of a thread: every failure becomes a reason to reconnect (or a fatal error)
            self._end(generation, e)
            return
        try:
            if not container.streams.video:
                raise SourceError("no video stream")
            stream = container.streams.video[0]
            fps = _nominal_fps(stream)
            for packet in container.demux(stream):
                for frame in packet.decode():
                    if not self._deliver(generation, frame.to_ndarray(format="bgr24"), fps):
                        return
                if self._generation != generation:
                    return
            self._end(generation, EOFError("the server ended the stream"))
        except Exception as e:
            self._end(generation, e)
        finally:
            container.close()

    def _options(self) -> dict[str, str]:
        timeout_us = str(int(self.read_timeout_s * 1_000_000))
        options = {"fflags": "nobuffer", "flags": "low_delay"}
        if urlsplit(self.url).scheme.lower() in ("rtsp", "rtsps"):
            options |= {"rtsp_transport": self.transport, "timeout": timeout_us}
        else:
            options["rw_timeout"] = timeout_us
        return options

    def _deliver(self, generation: int, image: np.ndarray, fps: float) -> bool:
        """Publish a decoded frame; False when this receiver has been abandoned and must stop."""
        with self._changed:
            if self._generation != generation or self._stop.is_set():
                return False
            if self._size is None:
                self._size = (image.shape[1], image.shape[0])
                self._fps = fps
                log.info("%s: connected, %dx%d at %.3g fps", self.describe(), *self._size, fps)
            elif self._frames_this_connection == 0 and self._lost_at is not None:
                self.reconnects += 1
                log.warning(
                    "%s: reconnected after %.1f s (reconnect %d)",
                    self.describe(),
                    time.monotonic() - self._lost_at,
                    self.reconnects,
                )
            if (image.shape[1], image.shape[0]) != self._size:
                image = cv2.resize(image, self._size, interpolation=cv2.INTER_AREA)  # sinks keep their geometry
            if self._frame_seq != self._read_seq and self._frame is not None:
                self.dropped += 1
            self._frame = image
            self._frame_seq += 1
            self._frames_this_connection += 1
            self._last_frame_at = time.monotonic()
            self.connected = True
            self._changed.notify_all()
            return True

    def _end(self, generation: int, error: BaseException) -> None:
        reason = masked_reason(error)
        with self._changed:
            if self._generation != generation:
                return
            if self._size is None and isinstance(error, (*FATAL_ON_FIRST_OPEN, SourceError)):
                self._fatal = SourceError(f"cannot open {self.describe()}: {reason}")
            self._ended = reason
            self._changed.notify_all()


def _nominal_fps(stream: av.video.stream.VideoStream) -> float:
    """The frame rate the bitstream declares, else FFmpeg's estimate from timestamps, else FALLBACK_FPS."""
    for rate in (stream.codec_context.framerate, stream.average_rate, stream.guessed_rate):
        if rate and PLAUSIBLE_FPS[0] <= float(rate) <= PLAUSIBLE_FPS[1]:
            return float(rate)
    log.info("stream declares no plausible frame rate; assuming %.0f fps", FALLBACK_FPS)
    return FALLBACK_FPS
