"""A sink that discards frames: for benchmarks and dry runs."""

from __future__ import annotations

import numpy as np

from backdrop.stream.pixels import BGR, I420
from backdrop.stream.sinks.base import Sink


class NullSink(Sink):
    """Counts frames and throws them away."""

    layouts = (BGR, I420)

    def __init__(self) -> None:
        self.frames = 0

    def open(self, width: int, height: int, fps: float) -> None:
        self.frames = 0

    def write(self, image: np.ndarray) -> None:
        self.frames += 1

    def close(self) -> None:
        """Nothing to release."""

    def describe(self) -> str:
        return "null"
