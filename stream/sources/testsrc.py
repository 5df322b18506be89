"""A synthetic source for demos, benchmarks and tests: a scrolling colour pattern with the frame number drawn on it.

Spec: ``testsrc[:WIDTHxHEIGHT][@FPS][,frames=N][,live]``. ``live`` paces frames at FPS like a camera
(and lets the pipeline drop them); otherwise frames come as fast as they are read.
"""

from __future__ import annotations

import re
import time

import cv2
import numpy as np

from backdrop.errors import SourceError
from backdrop.stream.core.frame import Frame
from backdrop.stream.sources.base import Source

# ASCII digits, a few of them: int() of a long or non-ASCII digit string would fail with a traceback
_GEOMETRY = re.compile(r"(?:(\d{1,9})x(\d{1,9}))?(?:@(\d{1,9}(?:\.\d{1,9})?))?", re.ASCII)
_FRAMES = re.compile(r"frames=(\d{1,12})", re.ASCII)
SIDES = (16, 7680)  # smallest and largest width or height: 8K is the largest frame worth generating
MAX_FPS = 1000.0


class TestSource(Source):
    """Generated frames; finite when ``frames`` is set."""

    __test__ = False  # not a pytest test class despite the name

    def __init__(
        self, width: int = 1280, height: int = 720, *, fps: float = 30.0, frames: int | None = None, live: bool = False
    ) -> None:
        low, high = SIDES
        if not (low <= width <= high and low <= height <= high and 0 < fps <= MAX_FPS):
            raise SourceError(
                f"testsrc: {width}x{height}@{fps:g} is out of range (sides {low}…{high} pixels, fps up to {MAX_FPS:g})"
            )
        self.width, self.height, self._fps, self.frames, self.live = width, height, fps, frames, live
        self.index = 0
        self.canvas: np.ndarray | None = None  # drawn by open()

    @classmethod
    def from_spec(cls, spec: str, *, fps: float = 30.0) -> TestSource:
        options = spec.partition(":")[2].split(",") if ":" in spec else []
        width, height, frames, live = 1280, 720, None, False
        for option in filter(None, options):
            geometry = _GEOMETRY.fullmatch(option)
            count = _FRAMES.fullmatch(option)
            if option == "live":
                live = True
            elif count:
                frames = int(count.group(1))
            elif geometry:
                width = int(geometry.group(1) or width)
                height = int(geometry.group(2) or height)
                fps = float(geometry.group(3) or fps)
            else:
                raise SourceError(f"testsrc: unknown option {option!r} (use testsrc:WxH@FPS,frames=N,live)")
        return cls(width, height, fps=fps, frames=frames, live=live)

    def open(self) -> None:
        yy, xx = np.mgrid[0 : self.height, 0 : 2 * self.width].astype(np.float32)
        canvas = np.empty((self.height, 2 * self.width, 3), np.uint8)
        canvas[..., 0] = 128 + 127 * np.sin(xx * (2 * np.pi / self.width))
        canvas[..., 1] = 255 * yy / self.height
        canvas[..., 2] = 128 + 127 * np.cos((xx + yy) * (4 * np.pi / self.width))
        self.canvas = canvas
        self.index = 0
        self.started = time.monotonic()

    def read(self) -> Frame | None:
        if self.frames is not None and self.index >= self.frames:
            return None
        if self.canvas is None:
            raise SourceError(f"{self.describe()} is not open")
        if self.live:  # behave like a camera: a frame becomes available every 1/fps seconds
            delay = self.started + self.index / self._fps - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        offset = (self.index * 8) % self.width
        image = self.canvas[:, offset : offset + self.width].copy()
        cv2.putText(image, str(self.index), (20, self.height - 20), cv2.FONT_HERSHEY_SIMPLEX, 2, (255, 255, 255), 3)
        self.index += 1
        return Frame(image, index=self.index - 1, pts_s=(self.index - 1) / self._fps)

    def close(self) -> None:
        self.canvas = None

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def frame_count(self) -> int | None:
        return self.frames

    def describe(self) -> str:
        return f"testsrc:{self.width}x{self.height}@{self._fps:g}"
