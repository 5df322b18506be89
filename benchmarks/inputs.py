"""Inputs the benchmarks run on: named resolutions, the demo clip at each, and any source recorded to a file.

Every benchmark reads an H.264 file, so the pipeline and the sequential loop see identical frames and
decoding is part of the cost, as in real use. A synthetic or live source is first recorded to such a file
with Backdrop's own source and sink classes.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from backdrop.errors import ConfigError, SourceError
from backdrop.stream.config.run import SourceConfig
from backdrop.stream.core.frame import Frame
from backdrop.stream.sinks.video_file import VideoFileSink
from backdrop.stream.sources.factory import make_source

RESOLUTIONS = {"480p": (854, 480), "720p": (1280, 720), "1080p": (1920, 1080)}
_SIZE = re.compile(r"(\d+)x(\d+)")


def parse_resolution(text: str) -> tuple[str, int, int]:
    """(label, width, height) for ``480p``/``720p``/``1080p`` or ``WIDTHxHEIGHT``; ConfigError otherwise."""
    if text in RESOLUTIONS:
        return (text, *RESOLUTIONS[text])
    match = _SIZE.fullmatch(text)
    if not match or min(int(match.group(1)), int(match.group(2))) < 16:
        raise ConfigError(f"resolution {text!r}: use {', '.join(RESOLUTIONS)} or WIDTHxHEIGHT (at least 16x16)")
    width, height = int(match.group(1)), int(match.group(2))
    return f"{width}x{height}", width, height


def demo_clip(folder: Path, width: int, height: int, frames: int) -> Path:
    """The demo person clip (a real photo over a moving room) as H.264, written once per size and length."""
    from backdrop.stream.sources.demo_clip import write_clip

    path = folder / f"demo_{width}x{height}_{frames}.mp4"
    if not path.is_file():
        write_clip(path, width=width & ~1, height=height & ~1, frames=frames)
    return path


def record(spec: str, path: Path, *, max_frames: int, duration_s: float | None) -> int:
    """Record ``spec`` (testsrc:…, an rtsp/http URL, an image folder) to ``path`` for N frames or seconds.

    Returns the number of frames written.
    """
    source = make_source(SourceConfig(uri=spec))
    if source.live and duration_s is None:
        raise ConfigError(f"source {spec!r} is live: give --duration SECONDS to record it for the benchmark")
    frames = 0
    with source:
        first = source.read()
        if first is None:
            raise SourceError(f"{source.describe()} produced no frames")
        sink = VideoFileSink(path)
        sink.open(*first.size, source.fps)
        try:
            deadline = None if duration_s is None else time.monotonic() + duration_s
            frame: Frame | None = first
            while frame is not None and frames < max_frames:
                sink.write(frame)
                frames += 1
                if deadline is not None and time.monotonic() >= deadline:
                    break
                frame = source.read()
        finally:
            sink.close()
    if not frames:
        raise SourceError(f"{source.describe()} produced no frames")
    return frames
