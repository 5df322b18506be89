"""The temporal matte metrics give exact, hand-computed values on hand-built masks."""

from __future__ import annotations

import numpy as np
import pytest

from backdrop.model.evaluation import temporal_metrics as tm


def square(side: int, *, size: int = 40, value: float = 1.0, dx: int = 0) -> np.ndarray:
    """A ``size``² matte, 0 except a centred ``side``² square of ``value``, moved right by ``dx``."""
    alpha = np.zeros((size, size), np.float32)
    top = (size - side) // 2
    alpha[top : top + side, top + dx : top + dx + side] = value
    return alpha


def left_half(size: int = 100) -> np.ndarray:
    alpha = np.zeros((size, size), np.float32)
    alpha[:, : size // 2] = 1.0
    return alpha


def test_crossings_count_the_pixels_that_change_side_of_one_half() -> None:
    assert tm.crossings(square(10), square(10, dx=2)) == 2 * 2 * 10
    assert tm.crossings(square(10), square(10, value=0.6)) == 0  # softer, but still person


def test_edge_band_is_both_sides_of_the_edge_and_ignores_the_frame_border() -> None:
    band = tm.edge_band(square(10), radius=1)  # radius 1: a plus-shaped kernel
    assert np.count_nonzero(band) == 4 * 10 + (4 * 10 - 4)  # the 4-neighbours outside, the rim inside
    half = tm.edge_band(left_half(), radius=1)
    assert np.count_nonzero(half) == 2 * 100 and half[:, 49:51].all()


def test_edge_flicker_is_the_mean_change_inside_the_band_only() -> None:
    before = square(10)
    after = np.clip(before + 0.1, 0, 1)  # the backdrop brightens by 0.1, the person stays at 1
    assert tm.edge_flicker(before, after, radius=1) == pytest.approx(0.1 * 40 / 76, abs=1e-6)
    far = before.copy()
    far[0, 0] = 0.4  # a change far from the edge is not edge flicker
    assert tm.edge_flicker(before, far, radius=1) == 0.0
    assert tm.edge_flicker(np.zeros((8, 8), np.float32), np.full((8, 8), 0.3, np.float32), radius=1) == 0.0


def test_edge_length_follows_pixel_centres_and_leaves_out_the_frame_border() -> None:
    assert tm.edge_length(square(10)) == pytest.approx(4 * 9)
    assert tm.edge_length(left_half()) == pytest.approx(99)
    assert tm.edge_length(np.ones((20, 20), np.float32)) == 0.0


def test_soft_edge_width_is_the_soft_area_over_the_edge_length() -> None:
    alpha = np.zeros((100, 200), np.float32)
    alpha[:, :50] = 1.0
    alpha[:, 50:54] = [0.8, 0.6, 0.4, 0.2]  # four soft columns; the 0.5 edge runs down column 51
    assert tm.soft_edge_width(alpha) == pytest.approx(4 * 100 / 99)
    assert tm.soft_edge_width(left_half()) == 0.0  # a hard edge
    assert tm.soft_edge_width(np.full((10, 10), 0.3, np.float32)) == 0.0  # no edge at all


def test_see_through_is_the_share_of_the_eroded_person_below_opaque() -> None:
    alpha = square(40, size=60)
    alpha[28:32, 28:32] = 0.7  # a translucent patch inside the person
    interior = (40 - 2 * 3) ** 2  # eroded by 3 px on every side
    assert tm.see_through(alpha, margin=3) == pytest.approx(16 / interior)
    assert tm.see_through(square(40, size=60), margin=3) == 0.0
    assert tm.see_through(square(4, size=20), margin=3) == 0.0  # nothing left inside


def test_ghost_pixels_split_into_trailing_and_missing() -> None:
    filtered, unfiltered = square(10), square(10, dx=3)  # the filtered matte is 3 px behind
    assert tm.ghost_pixels(filtered, unfiltered) == (3 * 10, 3 * 10)
    assert tm.ghost_pixels(square(10, value=0.4), np.zeros((40, 40), np.float32)) == (0, 0)  # within 0.5


def test_iou_of_the_half_regions() -> None:
    assert tm.iou(square(10), square(10, dx=5)) == pytest.approx(50 / 150)
    assert tm.iou(np.zeros((4, 4), np.float32), np.zeros((4, 4), np.float32)) == 1.0
