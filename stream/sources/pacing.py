"""Playing a file or folder at its own frame rate, like a player, for outputs someone watches live.

A finite source is read as fast as the pipeline takes frames, which is right for file → file and wrong for a
window or preview: a 10 s clip would flash by in 3 s. ``PacedSource`` holds each frame back until its
presentation time (its PTS, or its index over the frame rate) has come on the wall clock; it never drops one.
A pipeline slower than the clip delays frames instead, and the clock restarts from the late frame, so falling
behind once is not followed by a burst of catching up.
"""

from __future__ import annotations

import threading
import time

from backdrop.stream.config.run import RunConfig
from backdrop.stream.core.frame import Frame
from backdrop.stream.sinks.targets import is_path_output
from backdrop.stream.sources.base import Source

MAX_LAG_S = 0.25  # a frame later than this restarts the clock from it


def paces(config: RunConfig) -> bool:
    """Whether a finite source should be played at its own rate: ``source.pace``, or with ``auto``, whether any
    output is watched live (every output that is not a path or ``null``: window, http://, rtsp://, vcam)."""
    if config.source.pace != "auto":
        return config.source.pace
    return any(spec != "null" and not is_path_output(spec) for spec in config.outputs)


def paced(source: Source, config: RunConfig) -> Source:
    """``source`` played at its own rate when :func:`paces` says so and it is not live (which paces itself)."""
    return PacedSource(source) if paces(config) and not source.live else source


class PacedSource(Source):
    """``source``'s frames, each released at its presentation time; everything else is the source's own."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.live = source.live
        self.woken = threading.Event()  # a stop: release the held frame at once
        self.start: tuple[float, float] | None = None  # (wall clock, presentation time) of the clock's origin

    def open(self) -> None:
        self.source.open()

    def read(self) -> Frame | None:
        frame = self.source.read()
        if frame is None:
            return None
        shown = frame.pts_s if frame.pts_s is not None else frame.index / self.source.fps
        now = time.monotonic()
        if self.start is None:
            self.start = (now, shown)
        due = self.start[0] + shown - self.start[1]
        if now - due > MAX_LAG_S:
            self.start = (now, shown)
        elif due > now:
            self.woken.wait(due - now)
        frame.captured_at = time.monotonic()  # latency counts from the frame's release, not from its decoding
        return frame

    def close(self) -> None:
        self.source.close()

    def interrupt(self) -> None:
        self.woken.set()
        self.source.interrupt()

    @property
    def layout(self) -> str:
        return self.source.layout

    @property
    def fps(self) -> float:
        return self.source.fps

    @property
    def frame_count(self) -> int | None:
        return self.source.frame_count

    @property
    def damage(self) -> str | None:  # type: ignore[override]
        return self.source.damage

    def counters(self) -> dict[str, int]:
        return self.source.counters()

    def describe(self) -> str:
        return self.source.describe()
