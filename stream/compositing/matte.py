"""Mask post-processing: the model's low-resolution probabilities → a full-resolution alpha matte.

Steps, each switchable in MaskConfig, all at a reduced working size (``refine_size`` long side), so the cost
barely grows with the frame size: threshold (or keep soft), resize, edge refinement against the frame's
brightness (refine.py), the motion-aware temporal filter (temporal.py), alpha levels and gamma, feathering,
and a snap of near-certain values to exactly 0 or 1. The result is a Matte that stands for its bilinear
upsample to full size. The temporal state is passed in and returned explicitly rather than hidden here.
"""

from __future__ import annotations

import cv2
import numpy as np

from backdrop.pixels import BGR, luma
from backdrop.stream.compositing.blend import Matte
from backdrop.stream.compositing.refine import refine_edges
from backdrop.stream.compositing.temporal import TemporalFilter, TemporalState
from backdrop.stream.config.run import MaskConfig

SNAP = 0.02  # alpha below this becomes 0, above 1 - SNAP becomes 1 (the range between is stretched to fit)
FEATHER_LINES = 720  # mask.feather is in pixels of an output this many lines high, and scales with the height


def working_size(width: int, height: int, long_side: int) -> tuple[int, int]:
    """(width, height) with the frame's aspect ratio and at most ``long_side`` on the longer edge."""
    scale = min(1.0, long_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def stretch(alpha: np.ndarray, low: float, high: float) -> np.ndarray:
    """``alpha`` mapped linearly so ``low`` → 0 and ``high`` → 1, clipped to [0, 1] (a new array)."""
    scale = 1.0 / (high - low)
    out = cv2.addWeighted(alpha, scale, alpha, 0.0, -low * scale)
    return np.clip(out, 0.0, 1.0, out=out)


class MatteMaker:
    """Turns one model mask plus its full-resolution frame into a float32 alpha matte in [0, 1]."""

    def __init__(
        self, config: MaskConfig, width: int, height: int, layout: str = BGR, *, propagate: bool = False
    ) -> None:
        self.config = config
        self.size = (width, height)
        self.layout = layout
        self.work_size = working_size(width, height, config.refine_size)
        # propagate: some frames come without a mask (model.interval) and get the previous matte moved along the motion
        self.temporal = TemporalFilter(config.temporal, config.smoothing, propagate=propagate)
        self.feather_sigma = config.feather * (height / FEATHER_LINES) * (self.work_size[0] / width)
        self.use_levels = (config.levels_low, config.levels_high) != (0.0, 1.0)

    def guide(self, image: np.ndarray) -> np.ndarray:
        """The frame's brightness at the working size (uint8): what refinement follows and motion is read from."""
        return luma(image, self.layout, self.work_size)

    def matte(
        self, mask: np.ndarray | None, image: np.ndarray, previous: TemporalState | None
    ) -> tuple[Matte, TemporalState | None]:
        """(alpha matte, new temporal state) for ``mask`` (model resolution; None for a frame the model skipped)
        and its full-resolution ``image``.

        The matte stays at the working size; compositing upsamples only where the edge needs it.
        """
        config = self.config
        refine = config.refine == "edge"
        brightness = self.guide(image) if refine or self.temporal.needs_luma else None
        followed = self.temporal.follow(brightness, previous, fresh=mask is not None)
        if mask is not None:
            if config.mode == "threshold":
                mask = (mask >= config.threshold).astype(np.float32)
            work = cv2.resize(mask, self.work_size, interpolation=cv2.INTER_LINEAR)
        elif followed is not None:  # a frame the model skipped: the last mask, moved along the motion
            work = followed.mask
        else:
            raise ValueError("a frame without a model mask needs the previous frame's state (propagate)")
        moved_mask = work
        if refine and brightness is not None:  # always read for "edge"
            guide = brightness.astype(np.float32) * np.float32(1.0 / 255.0)
            work = refine_edges(guide, work, radius=config.refine_radius, eps=config.refine_eps)
        work, state = self.temporal(work, moved_mask, brightness, previous, followed)
        if self.use_levels:
            work = stretch(work, config.levels_low, config.levels_high)
        if config.gamma != 1.0:
            work = cv2.pow(work, config.gamma)
        if self.feather_sigma > 0:
            work = cv2.GaussianBlur(work, (0, 0), self.feather_sigma)
        # snap near-certain values to exactly 0 or 1: invisible, and it keeps the costly blend to the true edge band
        clean = None if config.clean_edges == "auto" else config.clean_edges  # None: the background decides
        return Matte(stretch(work, SNAP, 1.0 - SNAP), self.size, config.light_wrap, clean), state
