"""Live input from RTSP cameras, media servers and HTTP streams (MJPEG, HLS, any URL FFmpeg opens).

A wrong URL must fail at once, and a dropped connection must never end a run. Until the stream has delivered
its first frame a failure is retried only ``open_retries`` times, then reported: a closed port, a 404 or an
HTML page do not fix themselves. Once it has played, outages are retried forever (or for ``give_up_after_s``).

Each connection attempt runs in its own receiver thread; a supervisor thread is the watchdog: it tracks the
time of the last decoded frame and abandons a receiver that stalls for ``read_timeout_s``. FFmpeg's own
timeouts are not enough on their own — they restart with every packet, so a relay that trickles one stale
packet after the publisher died keeps a reader alive, and cv2 goes further and returns stale frames for 30 s.
An abandoned receiver exits by itself once its blocking call returns (bounded by the FFmpeg timeouts); the
supervisor does not wait for it but reconnects with capped exponential backoff, so ``close()`` never hangs.
Only the newest frame is kept: a live source must not queue.

Frames are handed on in I420 when the stream's size is even (nearly always): the decoder's own planes, copied
once, rather than a BGR conversion of every decoded frame, including the ones a busy pipeline never reads.
The pipeline then composes in I420 and file or RTSP outputs encode those planes directly.

A finite file served over HTTP (FFmpeg reports a duration and the format is not a live one) is no live
stream: ``read()`` decodes it in the caller's thread at the pipeline's pace, every frame once, and it ends.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import av
import numpy as np

from backdrop.errors import ConfigError, SourceError
from backdrop.pixels import BGR, I420
from backdrop.stream.core.backoff import Backoff
from backdrop.stream.core.frame import Frame
from backdrop.stream.core.latest import LatestSlot
from backdrop.stream.core.redact import mask_credentials, masked_reason
from backdrop.stream.sources.base import Source

log = logging.getLogger(__name__)

FALLBACK_FPS = 30.0
PLAUSIBLE_FPS = (1.0, 240.0)
SUPERVISOR_JOIN_S = 1.0
# Errors that retrying cannot fix when they happen on the very first connection: report them instead.
FATAL_ON_FIRST_OPEN = (av.error.HTTPUnauthorizedError, av.error.HTTPForbiddenError, av.error.ProtocolNotFoundError)
# Live by nature even when a duration is reported (an RTSP server may announce a range): never a finite file.
LIVE_FORMATS = frozenset({"rtsp", "rtp", "sdp", "mpjpeg"})
AV_FORMATS = {BGR: "bgr24", I420: "yuv420p"}


class NetworkSource(Source):
    """Frames from a network stream, reconnecting (until ``close()``) when it drops or stalls after playing.

    ``reconnects`` counts successful reconnections after the first connection, ``connected`` says whether
    frames are flowing now; ``counters()`` reports reconnects and the frames replaced before being read.
    The settings are SourceConfig's fields and their ranges are checked there, once (``SourceConfig.validate``).
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
        open_retries: int = 2,
        give_up_after_s: float | None = None,
    ) -> None:
        if "://" not in url:
            raise ConfigError(f"not a stream URL: {mask_credentials(url)!r} (expected rtsp://… or http://…)")
        self.url = url
        self.transport = transport
        self.open_timeout_s = open_timeout_s
        self.read_timeout_s = read_timeout_s
        self.max_backoff_s = max_backoff_s
        self.open_retries = open_retries
        self.give_up_after_s = give_up_after_s
        self.reconnects = 0
        self.connected = False
        self._frames: LatestSlot[np.ndarray] = LatestSlot()
        self._read_seq = 0
        self._changed = threading.Condition()  # guards the connection state below
        self._stop = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._generation = 0
        self._ended: str | None = None  # why the current receiver stopped
        self._fatal: SourceError | None = None
        self._file: av.container.InputContainer | None = None  # a finite file, decoded by read()
        self._file_frames: Iterator[av.VideoFrame] = iter(())
        self._file_lock = threading.Lock()  # close() must not close the file under a read()
        self._file_index = 0
        self._last_frame_at = 0.0
        self._frames_this_connection = 0
        self._lost_at: float | None = None
        self._size: tuple[int, int] | None = None  # (width, height) fixed by the first connection
        self._layout = BGR  # and the pixel layout: I420 when that size is even
        self._fps = FALLBACK_FPS

    # -- Source interface -------------------------------------------------------------------------------

    def open(self) -> None:
        """Connect and wait for the first frame (or a finite file); SourceError after ``open_retries`` retries."""
        if self._supervisor is not None:
            return
        self._supervisor = threading.Thread(target=self._supervise, name="network-source-watchdog", daemon=True)
        self._supervisor.start()
        try:
            with self._changed:
                self._changed.wait_for(
                    lambda: self._size is not None or not self.live or self._fatal is not None or self._stop.is_set()
                )
        except BaseException:  # Ctrl-C while waiting for a server that is not there: leave no thread behind
            self.close()
            raise
        if self._fatal is not None:
            self.close()
            raise self._fatal
        if self._size is None and self.live:
            raise SourceError(f"{self.describe()}: closed before the first frame arrived")

    def read(self) -> Frame | None:
        """The newest frame not returned yet (blocks while reconnecting), or a file's next frame; None at the end.

        Raises SourceError once an outage outlasted ``give_up_after_s``.
        """
        if not self.live:
            return self._read_file()
        taken = self._frames.take(self._read_seq)
        if taken is None:
            if self._fatal is not None and not self._stop.is_set():
                raise self._fatal
            return None
        self._read_seq, image = taken
        return Frame(image, self._layout, self._read_seq - 1)

    def interrupt(self) -> None:
        """A stop during an outage: give up reconnecting so the blocked ``read()`` returns None."""
        self.close()

    def close(self) -> None:
        """Stop reconnecting and release the connection without waiting on a blocked network call."""
        self._stop.set()
        self._frames.close()
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
        with self._file_lock:  # waits for a read() in progress, bounded by FFmpeg's read timeout
            if self._file is not None:
                self._file.close()
                self._file = None

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def layout(self) -> str:
        return self._layout

    def describe(self) -> str:
        return mask_credentials(self.url)

    def counters(self) -> dict[str, int]:
        """Frames replaced by a newer one before anybody read them, and reconnections after the first one."""
        return {"dropped": self._frames.overwritten, "reconnects": self.reconnects}

    # -- watchdog and reconnect policy ------------------------------------------------------------------

    def _supervise(self) -> None:
        backoff = Backoff(max_s=self.max_backoff_s)
        while not self._stop.is_set():
            generation = self._start_receiver()
            reason, delivered = self._watch(generation)
            if reason is None:
                return
            self._abandon(generation)
            if delivered:
                backoff.reset()
                self._lost_at = time.monotonic()
            error = self._fatal or self._verdict(reason, backoff.failures)
            if error is not None:
                self._fail(error)
                return
            delay = backoff.next_delay()
            if self._lost_at is not None and self.give_up_after_s is not None:  # try once more at the deadline
                delay = min(delay, max(0.0, self._lost_at + self.give_up_after_s - time.monotonic()))
            if delivered:
                log.warning("%s: stream lost (%s); reconnecting in %.1f s", self.describe(), reason, delay)
            else:
                log.warning(
                    "%s: cannot connect (%s); retrying in %.1f s (attempt %d)",
                    self.describe(),
                    reason,
                    delay,
                    backoff.failures,
                )
            if self._stop.wait(delay):
                return

    def _verdict(self, reason: str, failures: int) -> SourceError | None:
        """The error that ends the source after a failed attempt, or None to retry.

        A stream that never played gets ``open_retries`` quick retries; one that played is retried until
        ``give_up_after_s`` of continuous outage (forever by default).
        """
        if self._lost_at is None:  # no connection has played yet
            if failures >= self.open_retries:
                return SourceError(f"cannot open {self.describe()}: {reason}")
            return None
        outage = time.monotonic() - self._lost_at
        if self.give_up_after_s is not None and outage >= self.give_up_after_s:
            return SourceError(f"{self.describe()}: gave up after {outage:.1f} s without a frame ({reason})")
        return None

    def _fail(self, error: SourceError) -> None:
        """End the source: open() or the next read() raises ``error``."""
        with self._changed:
            self._fatal = error
            self._changed.notify_all()
        self._frames.close()

    def _start_receiver(self) -> int:
        with self._changed:
            self._generation += 1
            generation = self._generation
            self._ended = None
            self._frames_this_connection = 0
        threading.Thread(target=self._receive, args=(generation,), name="network-source-rx", daemon=True).start()
        return generation

    def _watch(self, generation: int) -> tuple[str | None, bool]:
        """Wait until the receiver ends or stalls: (why, whether it delivered frames); (None, _) once closed or
        once a finite file went to read()."""
        started = time.monotonic()
        with self._changed:
            while not self._stop.is_set() and self._generation == generation and self.live:
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

    def _adopt(self, generation: int, container: av.container.InputContainer, fps: float) -> bool:
        """Hand a finite file to read(), which decodes it at the pipeline's pace; False if abandoned meanwhile."""
        with self._changed:
            if self._generation != generation or self._stop.is_set():
                return False
            self._file = container
            self._file_frames = container.decode(video=0)
            context = container.streams.video[0].codec_context
            self._fix_geometry(context.width, context.height, context.pix_fmt)
            self._fps = fps
            self.live = False
            log.info(
                "%s: a file of %.1f s, read once at the pipeline's pace",
                self.describe(),
                (container.duration or 0) / av.time_base,  # known: only a file with a duration is adopted
            )
            self._changed.notify_all()
            return True

    def _read_file(self) -> Frame | None:
        with self._file_lock:
            if self._file is None:  # closed
                return None
            try:
                frame = next(self._file_frames, None)
            except av.FFmpegError as e:
                raise SourceError(f"{self.describe()}: {masked_reason(e)}") from e
        if frame is None:
            return None
        self._file_index += 1
        return Frame(self._image(frame), self._layout, self._file_index - 1, pts_s=frame.time)

    # -- one connection (runs in a receiver thread) -----------------------------------------------------

    def _receive(self, generation: int) -> None:
        try:
            container = av.open(self.url, options=self._options(), timeout=(self.open_timeout_s, self.read_timeout_s))
        except Exception as e:  # the top of a thread: every failure becomes a reason to reconnect (or a fatal error)
            self._end(generation, e)
            return
        owned = True  # closed here unless read() adopts it
        try:
            if not container.streams.video:
                raise SourceError("no video stream")
            stream = container.streams.video[0]
            fps = _nominal_fps(stream)
            if self._size is None and _is_finite(container):
                container.seek(0)  # nobuffer dropped the packets read while probing: rewind to the first frame
                if self._adopt(generation, container, fps):
                    owned = False  # read() owns it now
                return
            for packet in container.demux(stream):
                for frame in packet.decode():
                    if not self._deliver(generation, frame, fps):
                        return
                if self._generation != generation:
                    return
            self._end(generation, EOFError("the server ended the stream"))
        except Exception as e:
            self._end(generation, e)
        finally:
            if owned:
                container.close()

    def _options(self) -> dict[str, str]:
        timeout_us = str(int(self.read_timeout_s * 1_000_000))
        options = {"fflags": "nobuffer", "flags": "low_delay"}
        if urlsplit(self.url).scheme.lower() in ("rtsp", "rtsps"):
            options |= {"rtsp_transport": self.transport, "timeout": timeout_us}
        else:
            options["rw_timeout"] = timeout_us
        return options

    def _fix_geometry(self, width: int, height: int, pix_fmt: str | None) -> None:
        """The size and layout every frame will have, from the first one (later ones are scaled to it).

        I420 only when the decoder gives it as it is (8-bit 4:2:0, limited range, even size): MJPEG's full-range
        yuvj420p would need a range conversion that swscale does not make, so such streams come as BGR.
        """
        self._size = (width, height)
        self._layout = I420 if pix_fmt == "yuv420p" and width % 2 == 0 and height % 2 == 0 else BGR

    def _image(self, frame: av.VideoFrame) -> np.ndarray:
        """The decoded frame in the source's layout and size (a no-op reformat when it already matches)."""
        if self._size is None:
            raise SourceError(f"{self.describe()}: a frame came before the stream's size was fixed")
        width, height = self._size
        return frame.to_ndarray(format=AV_FORMATS[self._layout], width=width, height=height)

    def _deliver(self, generation: int, frame: av.VideoFrame, fps: float) -> bool:
        """Publish a decoded frame; False when this receiver has been abandoned and must stop."""
        with self._changed:
            if self._generation != generation or self._stop.is_set():
                return False
            if self._size is None:
                self._fix_geometry(frame.width, frame.height, frame.format.name)
                self._fps = fps
                log.info("%s: connected, %dx%d at %.3g fps", self.describe(), frame.width, frame.height, fps)
        image = self._image(frame)  # outside the lock: the watchdog never waits for a conversion
        with self._changed:
            if self._generation != generation or self._stop.is_set():
                return False
            if self._frames_this_connection == 0 and self._lost_at is not None:
                self.reconnects += 1
                log.warning(
                    "%s: reconnected after %.1f s (reconnect %d)",
                    self.describe(),
                    time.monotonic() - self._lost_at,
                    self.reconnects,
                )
            self._frames.put(image)
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


def _is_finite(container: av.container.InputContainer) -> bool:
    """A file with an end, not a stream: FFmpeg knows its duration and the format is not a live one."""
    return bool(container.duration) and LIVE_FORMATS.isdisjoint(container.format.name.split(","))


def _nominal_fps(stream: av.video.stream.VideoStream) -> float:
    """The frame rate the bitstream declares, else FFmpeg's estimate from timestamps, else FALLBACK_FPS."""
    for rate in (stream.codec_context.framerate, stream.average_rate, stream.guessed_rate):
        if rate and PLAUSIBLE_FPS[0] <= float(rate) <= PLAUSIBLE_FPS[1]:
            return float(rate)
    log.info("stream declares no plausible frame rate; assuming %.0f fps", FALLBACK_FPS)
    return FALLBACK_FPS
