"""Temporal stability by motion compensation: the previous matte follows the picture before it is blended in.

A per-frame segmenter's edge jitters under camera noise; averaging mattes over time calms it, but a plain
average (``ema``) drags the matte behind anyone who moves and keeps the last shot's silhouette after a cut.
The ``motion`` filter first moves the previous matte to where this frame's pixels came from — dense optical
flow between the two frames' brightness at the working size (OpenCV's DIS at its fastest preset), or no move
at all where that explains the pixel as well (the flow's sub-pixel noise would otherwise shake a still edge) —
and then blends it in per pixel by how well the move explains this frame: full ``strength`` where only noise
is left, none where it is not (occlusions, new objects, motion the flow missed), with a margin that covers the
matte's soft edge, and less where the model is sure and the past disagrees. "Only noise" is measured per frame
(the median residual), so a grainy webcam is smoothed too, up to NOISY. A moving person is smoothed as well as
a still one, and nothing trails. A frame whose mean brightness change is large starts a new shot: the filter
forgets it all.

The same move carries the model's last mask across frames the model skips (``model.interval``, see
stream/core/schedule.py): such a frame is refined and filtered from that moved mask, never from the old
silhouette as it was. ``ema`` (one weight everywhere, no flow, no cut detection) stays as the plain average to
compare against, and for footage whose brightness changes without motion (flickering lights). The state is
passed in and returned, never hidden in the object.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

STILL = 4  # |warp residual| (0–255, after a 3×3 average) at or below which a pixel counts as explained: noise
MOVING = 12  # … at or above which it is not: the previous matte gets no weight there
REACH = 5  # kernel (working pixels) over which an unexplained pixel also drops the weight of its neighbours
CUT = 30.0  # mean |Δ brightness| over the frame above which the frame starts a new shot
NOISE_SPAN = 2.5  # residuals up to this many times the frame's typical one are noise …
NOISY = 24  # … up to this: camera noise of σ 14 (a dim webcam) reaches it; a frame that changed everywhere must not
SURE_POWER = 8  # |2·alpha − 1| to this power: how sure the model is (0.9 → 0.43, 0.99 → 0.85)
STAY_BIAS = 2  # a pixel keeps the previous matte unmoved unless the flow's move explains it this much better
MIN_FLOW_SIDE = 16  # DIS needs 12 pixels on a side: tinier pictures are flowed at this size


@dataclass(frozen=True)
class TemporalState:
    """What the filter carries to the next frame, all at the working size: its output matte, the latest model mask
    (before refinement, moved along the motion to this frame when the model skipped it) and the frame's brightness."""

    alpha: np.ndarray  # float32
    mask: np.ndarray  # float32
    luma: np.ndarray  # uint8


@dataclass(frozen=True)
class Followed:
    """The previous frame's state moved to this frame, and how well the move explains it."""

    alpha: np.ndarray
    mask: np.ndarray
    residual: np.ndarray  # uint8 |Δ brightness| left after the move (3×3 average)


class MotionWarp:
    """Moves working-size images of the previous frame to where this frame's pixels came from.

    One per stream: the DIS object keeps buffers between calls and must not be shared across threads.
    """

    def __init__(self) -> None:
        self.flow = cv2.DISOpticalFlow.create(cv2.DISOpticalFlow_PRESET_ULTRAFAST)
        self.grid: np.ndarray | None = None

    def maps(self, luma: np.ndarray, previous: np.ndarray) -> np.ndarray:
        """A float32 H×W×2 map for cv2.remap: for each pixel of ``luma``, its position in ``previous``.

        DIS at its fastest preset works down to a quarter of its input (64×36 cells at the 256×144 working size):
        on a coarser input it underestimated a moving person's motion and the matte's trailing edge lagged.
        """
        height, width = luma.shape
        size = (max(MIN_FLOW_SIDE, width), max(MIN_FLOW_SIDE, height))
        images = [cv2.resize(image, size) if size != (width, height) else image for image in (luma, previous)]
        # images[0](x) ≈ images[1](x + flow(x)); the stub lacks None, the documented "allocate the flow"
        flow = self.flow.calc(images[0], images[1], None)  # type: ignore[call-overload]
        if size != (width, height):
            flow = cv2.resize(flow, (width, height)) * np.array([width / size[0], height / size[1]], np.float32)
        if self.grid is None or self.grid.shape[:2] != luma.shape:
            xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
            self.grid = np.dstack([xs, ys])
        return cv2.add(flow, self.grid)

    @staticmethod
    def warp(image: np.ndarray, maps: np.ndarray) -> np.ndarray:
        return cv2.remap(image, maps, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def noise_level(residual: np.ndarray) -> float:
    """The median of a uint8 residual: what the noise leaves where the warp explains the frame (most of it)."""
    counts = cv2.calcHist([residual], [0], None, [256], [0, 256]).ravel()
    return float(np.searchsorted(np.cumsum(counts), residual.size / 2))


class TemporalFilter:
    """``mode`` motion, ema or none; ``strength`` is the previous matte's weight where the warp explains the frame.

    ``propagate`` keeps the state whatever the mode, so frames without a model mask (``model.interval``) can be
    given the previous mask and matte moved along the motion.
    """

    def __init__(self, mode: str, strength: float, *, propagate: bool = False) -> None:
        self.mode = mode if strength > 0 else "none"
        self.strength = np.float32(strength)
        self.propagate = propagate
        self.reach = np.ones((REACH, REACH), np.uint8)
        self.motion = MotionWarp()

    @property
    def needs_luma(self) -> bool:
        return self.mode != "none" or self.propagate

    def cut(self, luma: np.ndarray, previous: np.ndarray) -> bool:
        """Whether this frame starts a new shot (not for ``ema``: it is the plain average, for comparison)."""
        return self.mode != "ema" and cv2.norm(luma, previous, cv2.NORM_L1) > CUT * luma.size

    def follow(self, luma: np.ndarray | None, previous: TemporalState | None, *, fresh: bool) -> Followed | None:
        """The previous state moved to this frame (brightness ``luma``), or None where nothing should follow: no
        previous frame, or a frame with a ``fresh`` model mask that starts a new shot or needs no motion.

        Per pixel, the flow's move or none, whichever explains this frame better (by STAY_BIAS): where nothing
        moved, the flow's sub-pixel noise would otherwise shake a still edge.
        """
        if luma is None or previous is None or previous.luma.shape != luma.shape:
            return None
        if fresh and (self.mode != "motion" or self.cut(luma, previous.luma)):
            return None
        maps = self.motion.maps(luma, previous.luma)
        moved = cv2.blur(cv2.absdiff(luma, self.motion.warp(previous.luma, maps)), (3, 3))
        stayed = cv2.blur(cv2.absdiff(luma, previous.luma), (3, 3))
        stay = cv2.compare(stayed, cv2.add(moved, STAY_BIAS), cv2.CMP_LE)
        alpha, mask = (self.motion.warp(image, maps) for image in (previous.alpha, previous.mask))
        cv2.copyTo(previous.alpha, stay, alpha)
        cv2.copyTo(previous.mask, stay, mask)
        return Followed(alpha, mask, cv2.min(moved, stayed))

    def weights_for(self, noise: float) -> np.ndarray:
        """|warp residual| → weight of the previous matte, as a LUT: full ``strength`` up to what noise explains."""
        still = min(max(STILL, NOISE_SPAN * noise), NOISY)
        explained = np.clip((still + MOVING - STILL - np.arange(256, dtype=np.float32)) / (MOVING - STILL), 0.0, 1.0)
        return (explained * self.strength).reshape(1, 256)

    def weight(self, followed: Followed, alpha: np.ndarray) -> np.ndarray:
        """The moved previous matte's weight per pixel: ``strength`` where the move explains the frame (up to
        noise), none where it does not — and less where the model is sure of this frame's ``alpha`` (near 0 or
        1) and the moved matte disagrees: a confident answer is not held back by a doubtful past (a grainy
        frame's dip inside the person would otherwise linger as see-through and widen the edge)."""
        residual = followed.residual
        weight = cv2.LUT(cv2.dilate(residual, self.reach), self.weights_for(noise_level(residual)))
        sure = cv2.pow(np.abs(alpha * 2.0 - 1.0), SURE_POWER)
        doubt = cv2.multiply(sure, cv2.absdiff(alpha, followed.alpha))
        return cv2.multiply(weight, 1.0 - doubt)

    def __call__(
        self,
        alpha: np.ndarray,
        mask: np.ndarray,
        luma: np.ndarray | None,
        previous: TemporalState | None,
        followed: Followed | None,
    ) -> tuple[np.ndarray, TemporalState | None]:
        """(filtered matte, next state) for this frame's matte ``alpha``, the model ``mask`` it was made from (both at
        the working size) and its brightness ``luma``; ``followed`` is ``follow``'s answer for this frame."""
        if not self.needs_luma:
            return alpha, None
        if luma is None:
            raise ValueError(f"temporal filter {self.mode!r} needs the frame's brightness (luma)")
        if self.mode == "ema" and previous is not None and previous.alpha.shape == alpha.shape:
            alpha = cv2.addWeighted(previous.alpha, float(self.strength), alpha, 1.0 - float(self.strength), 0.0)
        elif self.mode == "motion" and followed is not None:
            alpha = cv2.add(alpha, cv2.multiply(cv2.subtract(followed.alpha, alpha), self.weight(followed, alpha)))
        return alpha, TemporalState(alpha, mask, luma)
