"""The pixel layouts a frame can travel through the pipeline in, and the conversions between them.

BGR (H×W×3) is what OpenCV, cameras and network streams give. I420 (planar YUV 4:2:0 in one (H·3/2)×W
array: the Y plane, then U, then V at half size) is what H.264 files decode to and encode from. A file →
file run that stays in I420 skips a full-frame colour conversion at each end and blends half as many bytes;
the pipeline picks it only when the source, the background and every sink can work in it.
"""

from __future__ import annotations

import cv2
import numpy as np

BGR = "bgr"
I420 = "i420"


def i420_size(image: np.ndarray) -> tuple[int, int]:
    """(width, height) of the picture an I420 array holds."""
    return image.shape[1], image.shape[0] * 2 // 3


def frame_size(image: np.ndarray, layout: str) -> tuple[int, int]:
    """(width, height) of the picture a frame in ``layout`` holds."""
    return i420_size(image) if layout == I420 else (image.shape[1], image.shape[0])


def i420_planes(image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of the Y (H×W), U and V (H/2×W/2) planes of an I420 array."""
    width, height = i420_size(image)
    chroma = image[height:].reshape(height, width // 2)
    return image[:height], chroma[: height // 2], chroma[height // 2 :]


def bgr_to_i420(image: np.ndarray) -> np.ndarray:
    """BT.601 limited range, as libx264 is fed and as PyAV decodes without other colour metadata."""
    return cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420)


def i420_to_bgr(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_YUV2BGR_I420)


def resize_i420(image: np.ndarray, size: tuple[int, int], interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """The I420 picture resized to ``size`` (width, height, both even), plane by plane."""
    width, height = size
    out = np.empty((height * 3 // 2, width), np.uint8)
    for source, target, scale in zip(i420_planes(image), i420_planes(out), (1, 2, 2), strict=True):
        cv2.resize(source, (width // scale, height // scale), dst=target, interpolation=interpolation)
    return out


def planes(image: np.ndarray, layout: str) -> tuple[np.ndarray, ...]:
    """The arrays to process one by one: the BGR image itself, or the three I420 planes."""
    return i420_planes(image) if layout == I420 else (image,)
