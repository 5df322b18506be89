"""The person's own colours in the edge band, so a new background gets no rim of the old one.

A frame is ``I = α·F + (1 − α)·B``: where the matte is soft (hair, a blurred shoulder) each pixel mixes the
person's colour F with the old background B. The plain blend ``α·I + (1 − α)·N`` keeps ``α·(1 − α)·B`` of the
old wall in every soft pixel: a pink rim of a red wall around the hair on any new background.

Blur fusion (Forte, "Approximate Fast Foreground Colour Estimation", ICIP 2021) estimates the local person and
background colours F̄ and B̄ as alpha-weighted box means — a wide pass, then a narrow one on the first pass's
estimates ``F̄ + α·(I − α·F̄ − (1 − α)·B̄)``. Locally ``I ≈ α·F̄ + (1 − α)·B̄``, so the person's colour is
``F ≈ I + (1 − α)·(F̄ − B̄)`` and the composite ``α·F + (1 − α)·N`` is the plain blend plus
``α·(1 − α)·(F̄ − B̄)``: the old background's share swapped for the person's. That correction is smooth
(alpha at the working size, upsampled, is how the full-size matte is defined anyway), so it is computed at the
matte's working size — 256 px on the long side, whatever the frame — and added to the band at full size
(an 8-bit image around BIAS, upsampled run by run). The pixel's own detail (a strand of hair) stays as the
frame has it. Colour channels are independent, so the same code serves BGR and each I420 plane.
"""

from __future__ import annotations

import cv2
import numpy as np

from backdrop.pixels import BGR, I420, i420_planes

COARSE = 2  # F̄ and B̄ are read on a grid this much coarser than the working size (they are local means)
WIDE = 9  # coarse cells (≈ 90 px of a 720p frame, the paper's first radius): where F̄ and B̄ are first read
NARROW = 1  # the second pass, on the first pass's estimates (≈ 10 px at 720p)
EPSILON = 1e-3
BIAS = 128  # the correction's zero in 8 bits (OpenCV upsamples 8-bit images 18× faster than 16-bit ones)


def _box(values: np.ndarray, radius: int) -> np.ndarray:
    return cv2.boxFilter(values, -1, (2 * radius + 1, 2 * radius + 1), borderType=cv2.BORDER_REFLECT)


def local_colours(small: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(F̄, B̄) of a picture ``small`` (float32 H×W×3) under its matte ``alpha``: blur fusion's two passes, each an
    alpha-weighted box mean of the person and a (1 − alpha)-weighted one of the background."""
    a = cv2.merge([alpha, alpha, alpha])
    inverse = 1.0 - a
    share = _box(a, WIDE)  # the box mean of 1 − alpha is 1 minus this
    person = _box(small * a, WIDE) / (share + EPSILON)
    backdrop = _box(small * inverse, WIDE) / (1.0 + EPSILON - share)
    first = np.clip(person + a * (small - backdrop - a * (person - backdrop)), 0.0, 255.0)
    share = _box(a, NARROW)
    return _box(first * a, NARROW) / (share + EPSILON), _box(backdrop * inverse, NARROW) / (1.0 + EPSILON - share)


def working_picture(image: np.ndarray, layout: str, size: tuple[int, int]) -> np.ndarray:
    """The frame at the working ``size`` as float32 H×W×3: B, G, R or Y, U, V (sampled: the means blur it)."""
    if layout == I420:
        return np.dstack([cv2.resize(plane, size) for plane in i420_planes(image)]).astype(np.float32)
    if layout != BGR:
        raise ValueError(f"foreground estimation takes BGR or I420 frames, not {layout}")
    return cv2.resize(image, size).astype(np.float32)


def correction(image: np.ndarray, layout: str, work: np.ndarray, *, colours: bool = False) -> np.ndarray:
    """A uint8 H×W×3 image at the working size, BIAS for no change, that, upsampled and added to the band less
    BIAS, swaps the old background's share for the person's: ``α·(1 − α)·(F̄ − B̄)`` for a composite (at most 64
    levels either way), or with ``colours`` the person's colour itself, ``(1 − α)·(F̄ − B̄)`` on top of the
    frame's (a cut-out; clipped to ±127). F̄ and B̄ are local means, read on a grid COARSE times coarser."""
    height, width = work.shape
    coarse = (max(1, width // COARSE), max(1, height // COARSE))
    person, backdrop = local_colours(working_picture(image, layout, coarse), cv2.resize(work, coarse))
    difference = cv2.resize(person - backdrop, (width, height))
    # a cut-out's colours change only where it is soft: where alpha is 0 or 1 the frame's stay as they are
    share = np.where(work > 0.0, 1.0 - work, 0.0).astype(np.float32) if colours else work * (1.0 - work)
    change = cv2.multiply(difference, cv2.merge([share, share, share]))  # a third of numpy's broadcast multiply
    np.add(change, BIAS + 0.5, out=change)  # rounded by the conversion below
    if colours:  # a composite's change is at most 64 levels either way; a colour's may be more
        np.clip(change, 0.0, 255.0, out=change)
    return change.astype(np.uint8)  # 8-bit: fast to upsample
