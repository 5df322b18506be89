"""Edge refinement: a fast guided filter that snaps the coarse model mask to the frame's edges, then tightens it.

He & Sun's guided filter, run at a reduced working size (the "fast" variant): the coefficients are cheap
box filters there, and the caller upsamples the result. Where the frame has an edge the filter moves the
mask's edge onto it; where the frame is flat it only averages the mask over its window, which widens a soft
edge by about the window's width (the old default doubled the edge: ≈ 44 px against the raw mask's ≈ 21 px
at 720p). A contrast stretch about 0.5 after the filter undoes that widening, so the refined edge is no
wider than the raw one and sits where the frame says. Everything is OpenCV, so it releases the GIL.
"""

from __future__ import annotations

import cv2
import numpy as np

# Contrast about 0.5 after the filter: alpha 0.3 → 0, 0.7 → 1. A radius-3 window turns a one-pixel step into a
# 7-pixel ramp where the frame is flat; 2.5× brings the default back under the raw mask's width (README numbers).
TIGHTEN = 2.5


def guided_filter(guide: np.ndarray, source: np.ndarray, *, radius: int, eps: float) -> np.ndarray:
    """Filter ``source`` (float32 H×W in [0, 1]) so its edges follow ``guide`` (float32 gray H×W in [0, 1])."""
    ksize = (2 * radius + 1, 2 * radius + 1)

    def box(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, cv2.CV_32F, ksize, borderType=cv2.BORDER_REFLECT)

    mean_i = box(guide)
    mean_p = box(source)
    cov_ip = box(guide * source) - mean_i * mean_p
    var_i = box(guide * guide) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return box(a) * guide + box(b)


def refine_edges(guide: np.ndarray, mask: np.ndarray, *, radius: int, eps: float) -> np.ndarray:
    """``mask`` (float32 in [0, 1]) with its edge moved onto ``guide``'s and tightened; float32 in [0, 1]."""
    filtered = guided_filter(guide, mask, radius=radius, eps=eps)
    tight = cv2.addWeighted(filtered, TIGHTEN, filtered, 0.0, 0.5 - 0.5 * TIGHTEN)
    return np.clip(tight, 0.0, 1.0, out=tight)
