"""Which frames the model sees: every frame, one in N + 1 (``model.interval: N``), or those where the scene changed.

The frames between inferred ones get the previous matte moved along the motion (stream.compositing.temporal), which
holds while the picture stays close to the last inferred frame. So the schedule compares each frame with that
frame on a thumbnail: the share of cells whose brightness moved by more than camera noise can (CELL_CHANGE, on
cells that average ≥ 64 pixels, where noise of σ 14 leaves σ < 2.5). With a fixed interval, a cut or a large change
(LARGE_SHARE of the picture) is inferred at once instead of waiting its turn; ``auto`` infers whenever a
noticeable part changed (AUTO_SHARE), so a still talking head is inferred a few times a second and a scene in
motion on every frame, never more than ``max_interval`` frames apart.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

from backdrop.pixels import luma
from backdrop.stream.compositing.matte import working_size
from backdrop.stream.core.frame import Frame

THUMB_SIDE = 32  # long side of the thumbnail, in cells
SAMPLE_SIDE = 256  # the frame is first sampled to this long side (cheap), then averaged into the cells
CELL_CHANGE = 10  # |Δ brightness| (0–255) of a cell beyond which it changed
LARGE_SHARE = 0.25  # a fixed interval infers at once when this share of the cells changed (a cut, a big move)
AUTO_SHARE = 0.01  # auto infers when this share changed (a still talking head: about 2 frames in 5)


class InferenceSchedule:
    """Decides, frame by frame in order, whether the model runs; counts both answers."""

    def __init__(self, interval: int | Literal["auto"] = 0, max_interval: int = 8) -> None:
        self.interval = interval
        self.max_gap = max_interval if interval == "auto" else interval
        self.share = AUTO_SHARE if interval == "auto" else LARGE_SHARE
        self.reference: np.ndarray | None = None  # the thumbnail of the latest inferred frame
        self.gap = 0  # frames since the latest inferred one
        self.inferred = 0
        self.skipped = 0

    def due(self, frame: Frame) -> bool:
        """Whether ``frame`` (the next in the stream) is inferred."""
        if self.interval == 0:
            self.inferred += 1
            return True
        thumb = self.thumbnail(frame)
        infer = self.reference is None or self.gap >= self.max_gap or self.changed(thumb, self.reference)
        if infer:
            self.reference, self.gap = thumb, 0
            self.inferred += 1
        else:
            self.gap += 1
            self.skipped += 1
        return infer

    @staticmethod
    def thumbnail(frame: Frame) -> np.ndarray:
        width, height = frame.size
        sample = luma(frame.image, frame.layout, working_size(width, height, SAMPLE_SIDE))
        return cv2.resize(sample, working_size(width, height, THUMB_SIDE), interpolation=cv2.INTER_AREA)

    def changed(self, thumb: np.ndarray, reference: np.ndarray) -> bool:
        if thumb.shape != reference.shape:
            return True
        moved = np.count_nonzero(cv2.absdiff(thumb, reference) > CELL_CHANGE)
        return bool(moved > self.share * thumb.size)
