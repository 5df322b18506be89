"""The unit that flows through the pipeline: one picture with its layout and bookkeeping."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from backdrop.pixels import BGR, frame_size


@dataclass
class Frame:
    """A uint8 picture in ``layout`` (see backdrop.pixels), with where and when it came from.

    ``index`` counts frames of one stream from 0; ``stream`` names the stream (empty in a single-stream run);
    ``pts_s`` is the source's own presentation time in seconds when it has one (files), which file outputs
    keep; ``captured_at`` is time.monotonic() when it was read, from which latency is measured.
    """

    image: np.ndarray
    layout: str = BGR
    index: int = 0
    stream: str = ""
    pts_s: float | None = None
    captured_at: float = field(default_factory=time.monotonic)

    @property
    def time_s(self) -> float:
        """When the frame is shown, in seconds on its stream's clock: the source's own time, else (live sources)
        when it was captured, so frames dropped on the way leave their time empty instead of closing up."""
        return self.pts_s if self.pts_s is not None else self.captured_at

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the picture."""
        return frame_size(self.image, self.layout)

    def with_image(self, image: np.ndarray, layout: str | None = None) -> Frame:
        """The same frame (index, stream, times) holding another picture, e.g. the composited one."""
        return replace(self, image=image, layout=layout or self.layout)
