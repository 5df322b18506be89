"""A video file written with PyAV: H.264 (yuv420p) for .mp4/.mkv/.mov, or an alpha codec for transparent output.

Names. The file is written under a hidden ``.NAME.PID.partial`` and moved into place by ``close``: a run that
fails leaves nothing, a stopped one (SIGINT) a finished file of every frame written so far, and none ever
leaves a half-written file under the requested name.

Crash safety. A killed run (SIGKILL, power loss) leaves its partial playable up to about FRAGMENT_S before
the kill: MP4/MOV are fragmented (a moof+mdat at every keyframe and at least every FRAGMENT_S), Matroska
closes a cluster at least as often, and what the muxer writes goes to the OS at once. Fragments need not
start at a keyframe (the one a frame needs is in an earlier, complete fragment), so the encoder keeps its
long keyframe interval (one a second makes the demo clip 70 % larger); muxing fragments costs no measurable
time. Such a partial is the only copy of that recording, so a later run writing the same name keeps it
and names it in one warning; the process id in each run's partial name keeps it from being overwritten.

One writer. While open, the sink holds the name's write lock (stream.sinks.write_lock): a second writer of
the same name, in this process or another, is refused when it opens, before it looks at any partial, so a
live recording's partial is never taken for an interrupted one; the lock dies with a killed process.

Time. Frames that carry the source's timestamp (``pts_s``: files) keep it, shifted so the first frame is
at 0, on a 1/90000 s clock, so variable-frame-rate input stays variable; frames without one (live
sources) keep when they were captured, but at least a frame's time (at the rate given to ``open``) after the
one before: a recording lasts as long as the camera was recorded even where frames were dropped on the way
(numbered at the fixed rate, a minute with a third dropped played in 40 s), and frames that come in a burst
(or from a loop that makes them) keep the fixed rate.

Audio. Given ``audio_from`` (the source file), its audio is written alongside (stream.sinks.audio_track).
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
from fractions import Fraction
from pathlib import Path

import av

from backdrop.errors import SinkError
from backdrop.pixels import BGR, BGRA, I420, bgr_to_i420
from backdrop.stream.config.run import EncoderConfig
from backdrop.stream.core.frame import Frame
from backdrop.stream.sinks.audio_track import AudioTrack
from backdrop.stream.sinks.base import Sink
from backdrop.stream.sinks.write_lock import WriteLock

CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mkv": "matroska", ".mov": "mov"}
ALPHA_CODECS = {".mov": ("qtrle", "argb"), ".mkv": ("ffv1", "bgra")}  # (codec, pix_fmt) that keep alpha
TIME_BASE = Fraction(1, 90000)  # the packets' clock: fine enough for any frame rate, as in MPEG transport streams
FRAGMENT_S = 1  # most a killed recording loses: fragments and clusters are no longer
_FRAGMENTED = {"movflags": "frag_keyframe+empty_moov+default_base_moof", "frag_duration": str(FRAGMENT_S * 10**6)}
CRASH_SAFE_OPTIONS = {  # per container; flush_packets: written bytes reach the OS now, not when a buffer fills
    "mp4": {**_FRAGMENTED, "flush_packets": "1"},
    "mov": {**_FRAGMENTED, "flush_packets": "1"},
    "matroska": {"cluster_time_limit": str(FRAGMENT_S * 1000), "flush_packets": "1"},
}

log = logging.getLogger(__name__)


def is_video_file(spec: str) -> bool:
    """True when an output or source spec names a video file this sink writes (by its suffix, not a URL)."""
    return "://" not in spec and Path(spec).suffix.lower() in CONTAINERS


def _video_stream(container: av.container.OutputContainer, codec: str, rate: Fraction) -> av.video.stream.VideoStream:
    """A new stream of ``container`` encoded with video ``codec``."""
    stream = container.add_stream(codec, rate=rate)
    if not isinstance(stream, av.video.stream.VideoStream):
        raise SinkError(f"{codec} is not a video codec")
    return stream


class VideoFileSink(Sink):
    """Encodes frames into one video file at their own timestamps, with the audio of ``audio_from`` if given."""

    def __init__(
        self,
        path: str | Path,
        *,
        alpha: bool = False,
        encoder: EncoderConfig | None = None,
        audio_from: Path | None = None,
        crash_safe: bool = True,
    ) -> None:
        self.path = Path(path)
        self.crash_safe = crash_safe  # off only to measure what crash safety costs (benchmarks/crash_safety_cost.py)
        self.alpha = alpha
        self.layouts = (BGRA,) if alpha else (BGR, I420)  # I420 frames go to the encoder untouched
        self.encoder = encoder or EncoderConfig()
        suffix = self.path.suffix.lower()
        if suffix not in CONTAINERS:
            raise SinkError(f"output {self.path}: unsupported video format (use {', '.join(CONTAINERS)})")
        if alpha and suffix not in ALPHA_CODECS:
            raise SinkError(f"output {self.path}: {suffix} cannot keep transparency; use .mov, .mkv or a PNG folder")
        self.audio_from = audio_from
        self.partial = self.path.with_name(f".{self.path.name}.{os.getpid()}.partial")
        self.lock = WriteLock(self.path)
        self.container: av.container.OutputContainer | None = None
        self.audio: AudioTrack | None = None
        self.frames = 0
        self.origin_s: float | None = None  # the first frame's time: it is written at 0
        self.last_pts = -1
        self.last_time_s: float | None = None  # the last frame's time (see Time in the module docstring)

    def open(self, width: int, height: int, fps: float) -> None:
        folder = self.path.parent
        if not folder.is_dir():
            raise SinkError(f"cannot write {self.path}: folder {folder} does not exist")
        if self.path.is_dir():
            raise SinkError(f"cannot write {self.path}: it is a folder")
        if not os.access(folder, os.W_OK):
            raise SinkError(f"cannot write {self.path}: permission denied")
        rate = Fraction(fps).limit_denominator(1001) if fps > 0 else Fraction(30)
        self.frame_s = float(1 / rate)
        self.lock.acquire()  # before the leftovers: a live writer's partial is not one
        self._name_leftovers()
        container_format = CONTAINERS[self.path.suffix.lower()]
        try:
            self.container = av.open(
                str(self.partial),
                "w",
                format=container_format,
                container_options=CRASH_SAFE_OPTIONS[container_format] if self.crash_safe else {},
            )
            if self.alpha:
                codec, pix_fmt = ALPHA_CODECS[self.path.suffix.lower()]
                self.stream = _video_stream(self.container, codec, rate)
            else:
                codec, pix_fmt = "libx264", "yuv420p"
                self.stream = _video_stream(self.container, codec, rate)
                options: dict[str, object] = {"preset": self.encoder.preset, "crf": str(self.encoder.crf)}
                if self.encoder.tune:
                    options["tune"] = self.encoder.tune
                self.stream.options = options
                self.stream.codec_context.thread_count = self.encoder.threads
            # yuv420p needs even dimensions: drop a trailing odd row/column
            self.width, self.height = (width, height) if self.alpha else (width & ~1, height & ~1)
            self.stream.width, self.stream.height, self.stream.pix_fmt = self.width, self.height, pix_fmt
            self.stream.time_base = self.stream.codec_context.time_base = TIME_BASE
            if self.audio_from is not None:
                self.audio = AudioTrack(self.audio_from, self.container)
            self.container.start_encoding()  # opens the file and writes the header: fail now, not at frame 1
        except (av.error.FFmpegError, OSError, ValueError) as e:
            self._discard()
            raise SinkError(f"cannot write {self.path}: {getattr(e, 'strerror', None) or e}") from e
        except SinkError:
            self._discard()
            raise

    def _name_leftovers(self) -> None:
        """Warn about (and keep) the partial files of runs killed while writing this output (the lock is held:
        no live process writes them)."""
        pattern = f".{glob.escape(self.path.name)}.*partial"
        leftovers = sorted(
            str(self.path.with_name(p.name)) for p in self.path.parent.glob(pattern) if p != self.partial
        )
        if leftovers:
            log.warning("found %s from an interrupted run (kept; playable up to the kill)", ", ".join(leftovers))

    def write(self, frame: Frame) -> None:
        if self.container is None:
            raise SinkError(f"{self.path} is not open")
        if frame.layout == BGRA:
            picture = av.VideoFrame.from_ndarray(frame.image, format="bgra")
        elif frame.layout == I420:  # always of even size
            picture = av.VideoFrame.from_ndarray(frame.image, format="yuv420p")
        else:
            # OpenCV's BGR→I420 is several times faster than letting swscale convert inside the encoder
            i420 = bgr_to_i420(frame.image[: self.height, : self.width])
            picture = av.VideoFrame.from_ndarray(i420, format="yuv420p")
        time_s = self._time(frame)
        if self.origin_s is None:
            self.origin_s = time_s
        # strictly increasing, as encoders require, even where a damaged source repeats a timestamp
        self.last_pts = max(round((time_s - self.origin_s) / TIME_BASE), self.last_pts + 1)
        self.last_time_s = time_s
        picture.pts, picture.time_base = self.last_pts, TIME_BASE
        try:
            self.container.mux(self.stream.encode(picture))
            if self.audio is not None:
                self.audio.mux_until(time_s + self.frame_s, self.origin_s)
        except (av.error.FFmpegError, OSError) as e:
            raise SinkError(f"writing {self.path} failed: {getattr(e, 'strerror', None) or e}") from e
        self.frames += 1

    def _time(self, frame: Frame) -> float:
        """The frame's time in seconds: its source's, or for a live frame when it was captured, at least a frame
        after the last one."""
        if frame.pts_s is not None or self.last_time_s is None:
            return frame.time_s
        return max(frame.captured_at, self.last_time_s + self.frame_s)

    def close(self) -> None:
        """Flush the encoder, finish the container and move it into place (or remove it when empty)."""
        if self.container is None:
            self.lock.release()
            return
        try:
            self.container.mux(self.stream.encode(None))
            if self.audio is not None:
                self.audio.flush()
            self.container.close()
        except (av.error.FFmpegError, OSError) as e:
            self._discard()
            raise SinkError(f"finishing {self.path} failed: {getattr(e, 'strerror', None) or e}") from e
        self.container = None
        self._release_audio()
        try:
            if self.frames:
                os.replace(self.partial, self.path)
            else:
                self.partial.unlink(missing_ok=True)
        finally:
            self.lock.release()

    def _discard(self) -> None:
        if self.container is not None:
            with contextlib.suppress(av.error.FFmpegError, OSError):  # the file is being thrown away anyway
                self.container.close()
            self.container = None
        self._release_audio()
        self.partial.unlink(missing_ok=True)
        self.lock.release()

    def _release_audio(self) -> None:
        if self.audio is not None:
            self.audio.close()
            self.audio = None

    def describe(self) -> str:
        return str(self.path)
