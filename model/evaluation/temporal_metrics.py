"""Matte quality on video, without ground truth: how the edge flickers, how soft it is, what shows through.

Each function takes full-resolution alpha mattes (float32 H×W in [0, 1], 1 = person) and returns one
number, so a test can check it on hand-built masks and `backdrop eval --video` can sum it over a clip.
"The person" is the region where alpha ≥ 0.5 throughout; "the edge" is the boundary of that region.
"""

from __future__ import annotations

import cv2
import numpy as np

HALF = 0.5
SOFT = (0.1, 0.9)  # alpha strictly between these is "soft": neither clearly person nor clearly backdrop
OPAQUE = 0.9  # person pixels below this let the backdrop show through


def person(alpha: np.ndarray) -> np.ndarray:
    """The person region: alpha ≥ 0.5, as uint8 0/1 (what OpenCV's morphology takes)."""
    return (alpha >= HALF).astype(np.uint8)


def disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def edge_band(alpha: np.ndarray, radius: int) -> np.ndarray:
    """Pixels within ``radius`` of the 0.5 edge (dilated person minus eroded person), boolean.

    The image border is not an edge: morphology replicates it, so a person cut off by the frame adds no band.
    """
    region = person(alpha)
    kernel = disk(radius)
    grown = cv2.dilate(region, kernel, borderType=cv2.BORDER_REPLICATE)
    shrunk = cv2.erode(region, kernel, borderType=cv2.BORDER_REPLICATE)
    return grown > shrunk


def edge_flicker(previous: np.ndarray, current: np.ndarray, radius: int) -> float:
    """Mean |Δalpha| between two consecutive mattes inside either one's edge band (0 when there is no edge)."""
    band = edge_band(previous, radius) | edge_band(current, radius)
    if not band.any():
        return 0.0
    return float(np.mean(np.abs(current[band] - previous[band]), dtype=np.float64))


def crossings(previous: np.ndarray, current: np.ndarray) -> int:
    """Pixels whose alpha crosses 0.5 between two consecutive mattes (either way)."""
    return int(np.count_nonzero((previous >= HALF) != (current >= HALF)))


def edge_length(alpha: np.ndarray) -> float:
    """Length in pixels of the 0.5 edge: the person's contours through pixel centres, less the image border."""
    contours, _ = cv2.findContours(person(alpha), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    height, width = alpha.shape
    total = 0.0
    for contour in contours:
        points = contour[:, 0, :].astype(np.float64)
        following = np.roll(points, -1, axis=0)
        steps = np.hypot(*(following - points).T)
        # a step from one border pixel to the next along the same border is the frame's edge, not the person's
        along_border = np.zeros(len(points), bool)
        for axis, last in ((0, width - 1), (1, height - 1)):
            for line in (0, last):
                along_border |= (points[:, axis] == line) & (following[:, axis] == line)
        total += float(steps[~along_border].sum())
    return total


def soft_edge_width(alpha: np.ndarray) -> float:
    """Area with 0.1 < alpha < 0.9 over the length of the 0.5 edge, in pixels (0 when there is no edge).

    For a straight linear ramp this is the ramp's width between alpha 0.1 and 0.9.
    """
    length = edge_length(alpha)
    if length == 0:
        return 0.0
    soft = np.count_nonzero((alpha > SOFT[0]) & (alpha < SOFT[1]))
    return float(soft / length)


def see_through(alpha: np.ndarray, margin: int) -> float:
    """Share of the person's interior (the person eroded by ``margin`` px) with alpha < 0.9 (0 when none)."""
    interior = cv2.erode(person(alpha), disk(margin), borderType=cv2.BORDER_REPLICATE).astype(bool)
    if not interior.any():
        return 0.0
    return float(np.count_nonzero(alpha[interior] < OPAQUE) / np.count_nonzero(interior))


def ghost_pixels(filtered: np.ndarray, unfiltered: np.ndarray) -> tuple[int, int]:
    """(trailing, missing): pixels where the filtered matte differs from the unfiltered one by more than 0.5.

    Trailing pixels are person in the filtered matte only (a ghost left where the person was); missing ones
    are person in the unfiltered matte only (the filtered matte has not caught up).
    """
    apart = np.abs(filtered - unfiltered) > HALF
    trailing = np.count_nonzero(apart & (filtered > unfiltered))
    return int(trailing), int(np.count_nonzero(apart) - trailing)


def iou(alpha: np.ndarray, reference: np.ndarray) -> float:
    """IoU of the two 0.5 regions (1 when both are empty)."""
    ours, theirs = alpha >= HALF, reference >= HALF
    union = np.count_nonzero(ours | theirs)
    return float(np.count_nonzero(ours & theirs) / union) if union else 1.0


def dtssd(
    previous: np.ndarray, current: np.ndarray, reference_previous: np.ndarray, reference_current: np.ndarray
) -> float:
    """Temporal consistency against a reference (Erofeev et al. 2015, as Robust Video Matting reports it):
    the root mean square of the difference between the two mattes' frame-to-frame changes, ×100 (0 = the matte
    changes exactly as the reference does; flicker or lag the reference does not have raise it)."""
    change = (current - previous) - (reference_current - reference_previous)
    return float(np.sqrt(np.mean(np.square(change, dtype=np.float64)))) * 100


def mean_abs_difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(a - b), dtype=np.float64))
