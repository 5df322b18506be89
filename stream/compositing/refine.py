"""Edge refinement: a fast guided filter that snaps the coarse model mask to the frame's edges, then tightens it.

He & Sun's "Fast Guided Filter" (2015): the linear coefficients are box-filtered at half the working size
and bilinearly upsampled, and only the final ``a·guide + b`` runs at the working size. The coefficients are
smooth by construction, so the coarser grid loses next to nothing: against the full-grid filter it moves
0.07–0.18 % of a 720p matte's pixels across 0.5, for about a third of the cost (docs/guide/matte.md).

Where the frame has an edge the filter moves the mask's edge onto it; where the frame is flat it only
averages the mask over its window, which widens a soft edge by about the window's width (the old default
doubled the edge: ≈ 44 px against the raw mask's ≈ 21 px at 720p). A contrast stretch about 0.5 after the
filter undoes that widening, so the refined edge is no wider than the raw one and sits where the frame says.
Everything is OpenCV, so it releases the GIL.
"""

from __future__ import annotations

import cv2
import numpy as np

# Contrast about 0.5 after the filter: alpha 0.3 → 0, 0.7 → 1. A radius-3 window turns a one-pixel step into a
# 7-pixel ramp where the frame is flat; 2.5× brings the default back under the raw mask's width (README numbers).
TIGHTEN = 2.5
SUBSAMPLE = 2  # the coefficient grid is this much coarser than the working size (radius 2 and up)


def _box(x: np.ndarray, radius: int) -> np.ndarray:
    return cv2.boxFilter(x, cv2.CV_32F, (2 * radius + 1, 2 * radius + 1), borderType=cv2.BORDER_REFLECT)


def guided_filter(guide: np.ndarray, source: np.ndarray, *, radius: int, eps: float) -> np.ndarray:
    """Filter ``source`` (float32 H×W in [0, 1]) so its edges follow ``guide`` (float32 gray H×W in [0, 1]).

    The window is ``2·radius + 1`` working pixels wide; on the coarse grid it becomes ``2·(radius // 2) + 1``
    cells of two pixels, the nearest whole match (a radius-1 window is too small to coarsen and runs as is).
    """
    height, width = guide.shape
    scale = SUBSAMPLE if radius >= SUBSAMPLE else 1
    coarse_radius = radius // scale
    coarse = (max(1, round(width / scale)), max(1, round(height / scale)))
    small_guide = cv2.resize(guide, coarse, interpolation=cv2.INTER_AREA)
    small_source = cv2.resize(source, coarse, interpolation=cv2.INTER_AREA)
    mean_i = _box(small_guide, coarse_radius)
    mean_p = _box(small_source, coarse_radius)
    cov_ip = _box(small_guide * small_source, coarse_radius) - mean_i * mean_p
    var_i = _box(small_guide * small_guide, coarse_radius) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    mean_a = cv2.resize(_box(a, coarse_radius), (width, height), interpolation=cv2.INTER_LINEAR)
    mean_b = cv2.resize(_box(b, coarse_radius), (width, height), interpolation=cv2.INTER_LINEAR)
    return mean_a * guide + mean_b


def refine_edges(guide: np.ndarray, mask: np.ndarray, *, radius: int, eps: float) -> np.ndarray:
    """``mask`` (float32 in [0, 1]) with its edge moved onto ``guide``'s and tightened; float32 in [0, 1]."""
    filtered = guided_filter(guide, mask, radius=radius, eps=eps)
    tight = cv2.addWeighted(filtered, TIGHTEN, filtered, 0.0, 0.5 - 0.5 * TIGHTEN)
    return np.clip(tight, 0.0, 1.0, out=tight)
