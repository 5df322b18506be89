"""A sink that discards frames: for benchmarks and dry runs."""

from __future__ import annotations

from backdrop.pixels import BGR, BGRA, I420
from backdrop.stream.core.frame import Frame
from backdrop.stream.sinks.base import Sink


class NullSink(Sink):
    """Counts frames and throws them away."""

    layouts = (BGR, BGRA, I420)

    def __init__(self) -> None:
        self.frames = 0

    def open(self, width: int, height: int, fps: float) -> None:
        self.frames = 0

    def write(self, frame: Frame) -> None:
        self.frames += 1

    def close(self) -> None:
        """Nothing to release."""

    def describe(self) -> str:
        return "null"
