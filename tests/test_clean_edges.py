"""Clean edges: in the soft band the composite carries the person's colours, not the old wall's.

Frames are built from a known matte, a known person colour F and a saturated wall B as ``α·F + (1 − α)·B``,
so the right answer in the band is known: ``α·F + (1 − α)·N`` over a new background N.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from backdrop.pixels import bgr_to_i420, i420_to_bgr
from backdrop.stream.compositing.backgrounds import parse_background
from backdrop.stream.compositing.blend import I420Blender, Matte, blend, cleaned

W, H = 640, 360
WORK = (256, 144)
RED_WALL = np.array((40, 30, 220), np.float32)  # BGR
GREEN = np.array((60, 200, 40), np.float32)


def scene() -> tuple[np.ndarray, Matte, np.ndarray, np.ndarray]:
    """(frame, its matte, the true alpha at full size, the true person colours) of a head with a soft rim."""
    work = np.zeros(WORK[::-1], np.float32)
    cv2.circle(work, (128, 72), 40, 1.0, -1)
    work = np.clip(cv2.GaussianBlur(work, (0, 0), 4.0) * 1.6 - 0.3, 0.0, 1.0)  # a wide soft band, like hair
    matte = Matte(work, (W, H), clean_edges=True)
    alpha = matte.full()[..., None]
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    person = np.dstack([110 + 30 * np.sin(xx / 37), 140 + 25 * np.cos(yy / 29), 170 + 20 * np.sin((xx + yy) / 41)])
    frame = np.clip(alpha * person + (1 - alpha) * RED_WALL, 0, 255).astype(np.uint8)
    return frame, matte, alpha[..., 0], person


def band(alpha: np.ndarray) -> np.ndarray:
    return (alpha > 0.05) & (alpha < 0.95)


def error(picture: np.ndarray, truth: np.ndarray, where: np.ndarray) -> float:
    return float(np.abs(picture.astype(np.float32) - truth)[where].mean())


def test_the_band_gets_colours_closer_to_the_person_than_the_frame_has() -> None:
    frame, matte, alpha, person = scene()
    colours = cleaned(frame, matte)
    soft = band(alpha) & (alpha > 0.3)  # where F is recoverable at all (at alpha 0.05 the pixel is nearly all wall)
    assert error(colours, person, soft) < 0.5 * error(frame, person, soft)
    assert np.array_equal(colours[alpha == 1.0], frame[alpha == 1.0])  # the solid person is untouched


@pytest.mark.parametrize("layout", ["bgr", "i420"])
def test_the_old_wall_is_gone_from_the_composite(layout: str) -> None:
    frame, matte, alpha, person = scene()
    ideal = alpha[..., None] * person + (1 - alpha[..., None]) * GREEN
    plate = np.empty_like(frame)
    plate[:] = GREEN.astype(np.uint8)
    plain_matte = Matte(matte.work, matte.size, clean_edges=False)
    if layout == "bgr":
        ours, plain = (blend(frame, plate, m) for m in (matte, plain_matte))
    else:
        blender = I420Blender(W, H)
        ours, plain = (
            i420_to_bgr(blender.blend(bgr_to_i420(frame), bgr_to_i420(plate), m)) for m in (matte, plain_matte)
        )
    soft = band(alpha)
    # what is left of the wall, against the plain blend α·I + (1 − α)·N (α·(1 − α)·B of it in every soft pixel)
    assert error(ours, ideal, soft) < 0.5 * error(plain, ideal, soft)
    redness = [float((picture[..., 2].astype(int) - picture[..., 1])[soft].mean()) for picture in (ours, plain)]
    assert redness[0] < redness[1] - 10  # the pink rim: red over green in the band, less of it


@pytest.mark.parametrize(("spec", "cleans"), [("color:#28c83c", True), ("blur:21", False), ("transparent", True)])
def test_auto_cleans_edges_on_every_background_but_blur(spec: str, cleans: bool) -> None:
    """``mask.clean_edges: auto`` (the default): a blur's backdrop is the old wall itself, so its band is left alone."""
    frame, matte, _, _ = scene()
    outputs = {}
    for setting in (None, True, False):  # None: auto, the background decides
        background = parse_background(spec)
        background.open(W, H)
        outputs[setting] = background.compose(frame, dataclasses.replace(matte, clean_edges=setting))
    assert not np.array_equal(outputs[True], outputs[False])  # the setting matters on this background
    assert np.array_equal(outputs[None], outputs[cleans])
