"""Mask post-processing: the model's low-resolution probabilities → a full-resolution alpha matte.

Steps, each switchable in MaskConfig: threshold (or keep soft), temporal EMA, guided refinement against
the frame at a reduced working size, feathering. All of it runs at the working size, so the cost barely
grows with the frame size; the result is a Matte that stands for its bilinear upsample to full size.
The temporal state is passed in and returned explicitly rather than hidden in the object.
"""

from __future__ import annotations

import cv2
import numpy as np

from backdrop.pixels import BGR, luma
from backdrop.stream.compositing.blend import Matte
from backdrop.stream.compositing.refine import guided_filter
from backdrop.stream.config import MaskConfig

SNAP = 0.02  # alpha below this becomes 0, above 1 - SNAP becomes 1 (the range between is stretched to fit)
SNAP_SCALE = 1.0 / (1.0 - 2.0 * SNAP)


def working_size(width: int, height: int, long_side: int) -> tuple[int, int]:
    """(width, height) with the frame's aspect ratio and at most ``long_side`` on the longer edge."""
    scale = min(1.0, long_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


class MatteMaker:
    """Turns one model mask plus its full-resolution frame into a float32 alpha matte in [0, 1]."""

    def __init__(self, config: MaskConfig, width: int, height: int, layout: str = BGR) -> None:
        self.config = config
        self.size = (width, height)
        self.layout = layout
        self.work_size = working_size(width, height, config.refine_size)
        self.feather_sigma = config.feather * self.work_size[0] / width

    def smooth(self, mask: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
        """Threshold and temporally smooth the model-resolution mask; the result is the next ``previous``."""
        if self.config.mode == "threshold":
            mask = (mask >= self.config.threshold).astype(np.float32)
        if self.config.smoothing > 0 and previous is not None and previous.shape == mask.shape:
            mask = cv2.addWeighted(previous, self.config.smoothing, mask, 1.0 - self.config.smoothing, 0.0)
        return mask

    def guide(self, image: np.ndarray) -> np.ndarray:
        """The frame's brightness at the working size, float32 in [0, 1]: what the guided filter follows."""
        return luma(image, self.layout, self.work_size).astype(np.float32) * np.float32(1.0 / 255.0)

    def matte(self, mask: np.ndarray, image: np.ndarray, previous: np.ndarray | None) -> tuple[Matte, np.ndarray]:
        """(alpha matte, new temporal state) for ``mask`` (model resolution) and its full-resolution ``image``.

        The matte stays at the working size; compositing upsamples only where the edge needs it.
        """
        state = self.smooth(mask, previous)
        work = cv2.resize(state, self.work_size, interpolation=cv2.INTER_LINEAR)
        if self.config.refine == "guided":
            work = guided_filter(self.guide(image), work, radius=self.config.refine_radius, eps=self.config.refine_eps)
        if self.feather_sigma >= 0.3:
            work = cv2.GaussianBlur(work, (0, 0), self.feather_sigma)
        # snap near-certain values to exactly 0 or 1: invisible, and it keeps the costly blend to the true edge band
        work = cv2.addWeighted(work, SNAP_SCALE, work, 0.0, -SNAP * SNAP_SCALE)
        np.clip(work, 0.0, 1.0, out=work)
        return Matte(work, self.size), state
