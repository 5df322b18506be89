"""Temporal stability without lag: blend each matte with the previous one only where the frame did not change.

A plain moving average (``ema``) calms the flicker of a still person but drags the matte behind anyone who
moves and keeps the last shot's silhouette after a cut. The ``motion`` filter weighs the previous matte per
pixel by how still the frame is there: the brightness difference between this frame and the last, at the
working size, sets the weight from full ``strength`` (no change beyond noise) down to 0 (a clear change, with a
margin around it that covers the matte's soft edge). A frame whose mean brightness change is large starts a
new shot: the filter forgets everything. ``ema`` (one weight everywhere, no cut detection) stays as the plain
average to compare against, and for footage whose brightness changes without motion (flickering lights).
The state is passed in and returned, never hidden in the object.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

STILL = 6  # |Δ brightness| (0–255, after a 3×3 average) at or below which a pixel counts as unchanged: noise
MOVING = 20  # … at or above which it has changed: the previous matte gets no weight there
REACH = 5  # kernel (working pixels) over which a change also drops the weight of its neighbours
CUT = 30.0  # mean |Δ brightness| over the frame above which the frame starts a new shot


@dataclass(frozen=True)
class TemporalState:
    """What the filter carries to the next frame: its output matte and the frame's brightness (working size)."""

    alpha: np.ndarray  # float32
    luma: np.ndarray  # uint8


class TemporalFilter:
    """``mode`` motion, ema or none; ``strength`` is the previous matte's weight where the frame is still."""

    def __init__(self, mode: str, strength: float) -> None:
        self.mode = mode if strength > 0 else "none"
        self.strength = np.float32(strength)
        still = np.clip((MOVING - np.arange(256, dtype=np.float32)) / (MOVING - STILL), 0.0, 1.0)
        self.weights = (still * self.strength).reshape(1, 256)  # |Δ brightness| → weight of the previous matte
        self.reach = np.ones((REACH, REACH), np.uint8)

    @property
    def needs_luma(self) -> bool:
        return self.mode != "none"

    def cut(self, luma: np.ndarray, previous: np.ndarray) -> bool:
        """Whether this frame starts a new shot (``motion`` only: ``ema`` is the plain average, for comparison)."""
        return self.mode == "motion" and cv2.norm(luma, previous, cv2.NORM_L1) > CUT * luma.size

    def weight(self, luma: np.ndarray, previous: np.ndarray) -> np.ndarray | float:
        """The previous matte's weight: per pixel (float32) for ``motion``, one number for ``ema``."""
        if self.mode == "ema":
            return float(self.strength)
        change = cv2.dilate(cv2.blur(cv2.absdiff(luma, previous), (3, 3)), self.reach)
        return cv2.LUT(change, self.weights)

    def __call__(
        self, alpha: np.ndarray, luma: np.ndarray | None, previous: TemporalState | None
    ) -> tuple[np.ndarray, TemporalState | None]:
        """(filtered ``alpha``, next state) for this frame's ``alpha`` and brightness ``luma`` (working size)."""
        if self.mode == "none":
            return alpha, None
        if luma is None:
            raise ValueError(f"temporal filter {self.mode!r} needs the frame's brightness (luma)")
        if previous is None or previous.alpha.shape != alpha.shape or self.cut(luma, previous.luma):
            return alpha, TemporalState(alpha, luma)
        out = cv2.add(alpha, cv2.multiply(cv2.subtract(previous.alpha, alpha), self.weight(luma, previous.luma)))
        return out, TemporalState(out, luma)
