"""Turning a decoded picture upright by its display rotation (phone videos store it sideways plus a matrix).

The model must see people upright, and outputs carry no rotation metadata, so a rotated file is turned
once at the source. I420 pictures are turned plane by plane, keeping a file → file run free of colour
conversions; a quarter turn swaps width and height.
"""

from __future__ import annotations

import cv2
import numpy as np

from backdrop.pixels import I420, frame_size, planes

# counterclockwise quarter turns → OpenCV's code for them
_TURNS = {1: cv2.ROTATE_90_COUNTERCLOCKWISE, 2: cv2.ROTATE_180, 3: cv2.ROTATE_90_CLOCKWISE}


def quarter_turns(degrees: float) -> int:
    """Counterclockwise quarter turns (0-3) nearest to a display rotation in degrees (counterclockwise)."""
    return round(degrees / 90) % 4


def upright(image: np.ndarray, layout: str, turns: int) -> np.ndarray:
    """``image`` (in ``layout``) turned ``turns`` quarter turns counterclockwise; the same array when 0."""
    if turns == 0:
        return image
    width, height = frame_size(image, layout)
    if turns % 2:
        width, height = height, width
    shape = (height * 3 // 2, width) if layout == I420 else (height, width, *image.shape[2:])
    out = np.empty(shape, image.dtype)
    for plane, target in zip(planes(image, layout), planes(out, layout), strict=True):
        cv2.rotate(plane, _TURNS[turns], dst=target)
    return out
