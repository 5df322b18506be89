"""Edge refinement: a fast guided filter that snaps a coarse mask to the edges of the full frame.

He & Sun's guided filter, run at a reduced working size (the "fast" variant): the coefficients are cheap
box filters there, and the caller upsamples the result. Everything is OpenCV, so it releases the GIL.
"""

from __future__ import annotations

import cv2
import numpy as np


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
