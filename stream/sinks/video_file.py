"""A video file written with PyAV: H.264 (yuv420p) for .mp4/.mkv/.mov, or an alpha codec for transparent output.

The file is written under a hidden temporary name and moved into place by ``close``, so a run that fails
or is killed never leaves a half-written file under the requested name; a stopped run (SIGINT) still
closes the container, leaving a playable file of every frame written so far.
"""

from __future__ import annotations

import contextlib
import os
from fractions import Fraction
from pathlib import Path

import av

from backdrop.errors import SinkError
from backdrop.pixels import BGR, BGRA, I420, bgr_to_i420
from backdrop.stream.config import EncoderConfig
from backdrop.stream.frame import Frame
from backdrop.stream.sinks.base import Sink

CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mkv": "matroska", ".mov": "mov"}
ALPHA_CODECS = {".mov": ("qtrle", "argb"), ".mkv": ("ffv1", "bgra")}  # (codec, pix_fmt) that keep alpha


class VideoFileSink(Sink):
    """Encodes frames into one video file at the source's frame rate."""

    def __init__(self, path: str | Path, *, alpha: bool = False, encoder: EncoderConfig | None = None) -> None:
        self.path = Path(path)
        self.alpha = alpha
        self.layouts = (BGRA,) if alpha else (BGR, I420)  # I420 frames go to the encoder untouched
        self.encoder = encoder or EncoderConfig()
        suffix = self.path.suffix.lower()
        if suffix not in CONTAINERS:
            raise SinkError(f"output {self.path}: unsupported video format (use {', '.join(CONTAINERS)})")
        if alpha and suffix not in ALPHA_CODECS:
            raise SinkError(f"output {self.path}: {suffix} cannot keep transparency; use .mov, .mkv or a PNG folder")
        self.partial = self.path.with_name(f".{self.path.name}.partial")
        self.container: av.container.OutputContainer | None = None
        self.frames = 0

    def open(self, width: int, height: int, fps: float) -> None:
        folder = self.path.parent
        if not folder.is_dir():
            raise SinkError(f"cannot write {self.path}: folder {folder} does not exist")
        if self.path.is_dir():
            raise SinkError(f"cannot write {self.path}: it is a folder")
        if not os.access(folder, os.W_OK):
            raise SinkError(f"cannot write {self.path}: permission denied")
        rate = Fraction(fps).limit_denominator(1001) if fps > 0 else Fraction(30)
        try:
            self.container = av.open(str(self.partial), "w", format=CONTAINERS[self.path.suffix.lower()])
            if self.alpha:
                codec, pix_fmt = ALPHA_CODECS[self.path.suffix.lower()]
                self.stream = self.container.add_stream(codec, rate=rate)
            else:
                codec, pix_fmt = "libx264", "yuv420p"
                self.stream = self.container.add_stream(codec, rate=rate)
                options = {"preset": self.encoder.preset, "crf": str(self.encoder.crf)}
                if self.encoder.tune:
                    options["tune"] = self.encoder.tune
                self.stream.options = options
                self.stream.codec_context.thread_count = self.encoder.threads
            # yuv420p needs even dimensions: drop a trailing odd row/column
            self.width, self.height = (width, height) if self.alpha else (width & ~1, height & ~1)
            self.stream.width, self.stream.height, self.stream.pix_fmt = self.width, self.height, pix_fmt
            self.container.start_encoding()  # opens the file and writes the header: fail now, not at frame 1
        except (av.error.FFmpegError, OSError, ValueError) as e:
            self._discard()
            raise SinkError(f"cannot write {self.path}: {getattr(e, 'strerror', None) or e}") from e

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
        try:
            self.container.mux(self.stream.encode(picture))
        except (av.error.FFmpegError, OSError) as e:
            raise SinkError(f"writing {self.path} failed: {getattr(e, 'strerror', None) or e}") from e
        self.frames += 1

    def close(self) -> None:
        """Flush the encoder, finish the container and move it into place (or remove it when empty)."""
        if self.container is None:
            return
        try:
            self.container.mux(self.stream.encode(None))
            self.container.close()
        except (av.error.FFmpegError, OSError) as e:
            self._discard()
            raise SinkError(f"finishing {self.path} failed: {getattr(e, 'strerror', None) or e}") from e
        self.container = None
        if self.frames:
            os.replace(self.partial, self.path)
        else:
            self.partial.unlink(missing_ok=True)

    def _discard(self) -> None:
        if self.container is not None:
            with contextlib.suppress(av.error.FFmpegError, OSError):  # the file is being thrown away anyway
                self.container.close()
            self.container = None
        self.partial.unlink(missing_ok=True)

    def describe(self) -> str:
        return str(self.path)
