"""Compositing: background specs, the blend, mask post-processing — checked on real pixels."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from clips import decode

from backdrop.errors import BackgroundError
from backdrop.stream.compositing.backgrounds import (
    Blur,
    Clip,
    Color,
    MaskView,
    Picture,
    Transparent,
    cover,
    parse_background,
)
from backdrop.stream.compositing.blend import Matte, blend, plan
from backdrop.stream.compositing.matte import MatteMaker
from backdrop.stream.compositing.refine import guided_filter
from backdrop.stream.config.run import MaskConfig
from backdrop.stream.sources.demo_clip import write_clip

W, H = 320, 180


@pytest.fixture
def image() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (H, W, 3), dtype=np.uint8)


def half_alpha() -> Matte:
    """Left half person (1), right half background (0)."""
    alpha = np.zeros((H, W), np.float32)
    alpha[:, : W // 2] = 1.0
    return Matte(alpha, (W, H))


def zero_matte(width: int = W, height: int = H) -> Matte:
    return Matte(np.zeros((height, width), np.float32), (width, height))


@pytest.fixture
def picture(tmp_path: Path) -> Path:
    path = tmp_path / "bg.png"
    plate = np.zeros((100, 400, 3), np.uint8)
    plate[:, :200] = (255, 0, 0)
    plate[:, 200:] = (0, 0, 255)
    cv2.imwrite(str(path), plate)
    return path


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        ("blur", Blur),
        ("blur:31", Blur),
        ("color:#00ff00", Color),
        ("color:112233", Color),
        ("transparent", Transparent),
        ("mask", MaskView),
    ],
)
def test_background_specs(spec: str, kind: type) -> None:
    assert isinstance(parse_background(spec), kind)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("blur:abc", "blur size"),
        ("blur:0", "blur size"),
        ("color:green", "color:#RRGGBB"),
        ("color:#12345", "color:#RRGGBB"),
        ("nowhere.png", "not found"),
        ("nowhere.mp4", "not found"),
        ("plaid", "is not blur"),
    ],
)
def test_bad_background_specs(spec: str, message: str) -> None:
    with pytest.raises(BackgroundError, match=message):
        parse_background(spec)


def test_file_backgrounds_by_suffix(picture: Path, stamped_clip: Path) -> None:
    assert isinstance(parse_background(str(picture)), Picture)
    assert isinstance(parse_background(str(stamped_clip)), Clip)


def test_blend_matches_the_float_formula(image: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    backdrop = rng.integers(0, 256, image.shape, dtype=np.uint8)
    alpha = rng.random((H, W), dtype=np.float32)
    expected = image * alpha[..., None] + backdrop * (1 - alpha[..., None])
    assert np.abs(blend(image, backdrop, Matte(alpha, (W, H))).astype(np.float32) - expected).max() <= 1.0


@pytest.mark.parametrize("threshold", [False, True])
def test_band_blend_equals_blending_with_the_upsampled_matte(threshold: bool) -> None:
    """With a matte at a reduced size, only the edge band is blended, yet every pixel matches the full blend."""
    rng = np.random.default_rng(3)
    width, height = 960, 540
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    backdrop = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:135, 0:240]
    radius = np.hypot((xx - 120) / 60, (yy - 90) / 70)
    work = np.clip((1 - radius) * 6 + 0.5, 0, 1).astype(np.float32)  # a blob with a soft edge
    work = (work > 0.5).astype(np.float32) if threshold else work
    matte = Matte(work, (width, height))
    full = matte.full()
    expected = cv2.blendLinear(image, backdrop, full, 1 - full)
    assert np.array_equal(blend(image, backdrop, matte), expected)
    assert np.array_equal(blend(image, backdrop.copy(), matte, backdrop_is_scratch=True), expected)
    runs = plan(matte)
    covered = np.zeros((height, width), np.int32)
    for run in runs:
        covered[run.y0 : run.y1, run.x0 : run.x1] += 1
    assert (covered == 1).all()  # the runs tile the frame exactly once
    blended = sum((r.x1 - r.x0) * (r.y1 - r.y0) for r in runs if r.kind == "blend")
    assert blended < 0.5 * width * height  # and the expensive blend covers only part of it


def test_color_replaces_background_and_keeps_person(image: np.ndarray) -> None:
    background = parse_background("color:#00ff00")
    background.open(W, H)
    out = background.compose(image, half_alpha())
    assert np.array_equal(out[:, : W // 2], image[:, : W // 2])
    assert (out[:, W // 2 :] == (0, 255, 0)).all()


def test_picture_is_scaled_to_cover(picture: Path, image: np.ndarray) -> None:
    background = parse_background(str(picture))
    background.open(W, H)
    out = background.compose(image, zero_matte())
    # 400×100 covering 320×180 scales by 1.8 and crops the sides: blue left, red right, no bars
    assert out.shape == (H, W, 3)
    assert out[:, 5].mean(axis=0).round().tolist() == [255, 0, 0]
    assert out[:, -5].mean(axis=0).round().tolist() == [0, 0, 255]


def test_cover_crops_the_centre() -> None:
    tall = np.zeros((400, 100, 3), np.uint8)
    tall[190:210] = 255
    out = cover(tall, 100, 50)
    assert out.shape == (50, 100, 3) and out[25].min() == 255 and out[0].max() == 0


def test_video_background_loops(stamped_clip: Path) -> None:
    frames = decode(stamped_clip)
    background = parse_background(str(stamped_clip))
    size = (frames[0].shape[1], frames[0].shape[0])
    background.open(*size)
    zero = zero_matte(*size)
    black = np.zeros_like(frames[0])
    try:
        outputs = [background.compose(black, zero) for _ in range(len(frames) + 2)]
    finally:
        background.close()
    assert np.abs(outputs[0].astype(int) - frames[0]).mean() < 1.5  # FFmpeg and OpenCV round YUV → BGR apart
    assert np.abs(outputs[len(frames)].astype(int) - frames[0]).mean() < 1.5  # looped back to the start
    assert np.abs(outputs[len(frames) + 1].astype(int) - frames[1]).mean() < 1.5


def test_blur_at_reduced_size_looks_like_a_full_blur(image: np.ndarray) -> None:
    smooth = cv2.GaussianBlur(image, (0, 0), 3)  # a picture with structure at the blur's scale
    background = Blur(31)
    background.open(W, H)
    reduced = background.backdrop(smooth).astype(np.float32)
    full = cv2.GaussianBlur(smooth, (31, 31), 0).astype(np.float32)
    assert np.abs(reduced - full).mean() < 3.0
    assert reduced.std() < smooth.std()  # it did blur


def test_transparent_keeps_colour_and_writes_alpha(image: np.ndarray) -> None:
    background = parse_background("transparent")
    assert background.has_alpha
    out = background.compose(image, half_alpha())
    assert out.shape == (H, W, 4)
    assert np.array_equal(out[..., :3], image)
    assert (out[:, : W // 2, 3] == 255).all() and (out[:, W // 2 :, 3] == 0).all()


def test_mask_view_shows_the_matte(image: np.ndarray) -> None:
    out = parse_background("mask").compose(image, half_alpha())
    assert (out[:, : W // 2] == 255).all() and (out[:, W // 2 :] == 0).all()


def person_mask() -> np.ndarray:
    """A model-resolution mask: a soft disc."""
    yy, xx = np.mgrid[0:64, 0:64]
    return np.clip(1.2 - np.hypot(xx - 32, yy - 32) / 20, 0, 1).astype(np.float32)


def plain(**changes: object) -> MaskConfig:
    """A MaskConfig with every post-processing step off, then ``changes``."""
    return MaskConfig(**{"refine": "none", "feather": 0.0, "temporal": "none", **changes})


def test_matte_is_full_resolution_and_in_range(image: np.ndarray) -> None:
    matte, state = MatteMaker(MaskConfig(), W, H).matte(person_mask(), image, None)
    alpha = matte.full()
    assert alpha.shape == (H, W) and alpha.dtype == np.float32
    assert alpha.min() >= 0.0 and alpha.max() <= 1.0
    assert state.alpha.shape == (144, 256)  # the temporal state is kept at the working size


def test_threshold_mode_is_binary_before_upsampling(image: np.ndarray) -> None:
    binary = (person_mask() >= 0.5).astype(np.float32)
    thresholded = MatteMaker(plain(mode="threshold", threshold=0.5), W, H).matte(person_mask(), image, None)[0]
    assert np.array_equal(thresholded.work, MatteMaker(plain(), W, H).matte(binary, image, None)[0].work)
    assert not np.array_equal(thresholded.work, MatteMaker(plain(), W, H).matte(person_mask(), image, None)[0].work)


def test_feather_softens_the_edge(image: np.ndarray) -> None:
    hard = np.zeros((64, 64), np.float32)
    hard[:, :32] = 1.0
    sharp = MatteMaker(plain(refine_size=W), W, H).matte(hard, image, None)[0].full()
    soft = MatteMaker(plain(refine_size=W, feather=16.0), W, H).matte(hard, image, None)[0].full()  # 4 px at 180 lines
    fractional = lambda a: int(((a > 0.02) & (a < 0.98)).sum())  # noqa: E731
    assert fractional(soft) > 2 * fractional(sharp)


def test_edge_refinement_sharpens_the_edge_along_the_frame() -> None:
    """A blurry (upsampled) mask becomes a crisp transition exactly where the frame has its edge."""
    frame = np.zeros((H, W, 3), np.uint8)
    frame[:, : W // 2] = 220  # the true edge is at W/2
    coarse = np.zeros((H, W), np.float32)
    coarse[:, : W // 2] = 1.0
    coarse = cv2.GaussianBlur(coarse, (0, 0), 6)  # what a 4× bilinear upsample of a low-res mask looks like
    config = MaskConfig(refine="edge", refine_size=W, refine_radius=8, refine_eps=1e-3)
    refined = MatteMaker(config, W, H).matte(coarse, frame, None)[0].full()
    row, mid = H // 2, W // 2
    step = lambda a: float(a[row, mid - 2] - a[row, mid + 2])  # noqa: E731
    assert step(refined) > 2 * step(coarse)
    crossing = int(np.argmax(refined[row] < 0.5))  # the first pixel on the background side
    assert abs(crossing - mid) <= 1


def test_guided_filter_keeps_a_constant() -> None:
    guide = np.random.default_rng(2).random((40, 50), dtype=np.float32)
    flat = np.full((40, 50), 0.7, np.float32)
    assert np.allclose(guided_filter(guide, flat, radius=3, eps=0.01), 0.7, atol=1e-4)


def test_clip_background_from_generated_video(tmp_path: Path) -> None:
    path = write_clip(tmp_path / "bg.mp4", width=64, height=48, frames=3)
    background = parse_background(str(path))
    background.open(128, 96)
    try:
        out = background.compose(np.zeros((96, 128, 3), np.uint8), zero_matte(128, 96))
    finally:
        background.close()
    assert out.shape == (96, 128, 3) and out.mean() > 10
