"""Motion-compensated mattes with known answers: skipped frames follow the person, cuts and changes are inferred,
camera noise is not motion, and ``model.interval: auto`` is configurable.

Synthetic clips only (a bright person shape over a dark textured wall, 640×360, working size 256×144 = 2.5 frame
pixels per working pixel), with synthetic model masks: what a frame's matte should be is the matte made from that
frame's own mask.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import cv2
import numpy as np
import pytest

from backdrop.errors import ConfigError
from backdrop.stream.compositing.blend import Matte
from backdrop.stream.compositing.matte import MatteMaker
from backdrop.stream.config.run import MaskConfig, parse_config
from backdrop.stream.core.frame import Frame
from backdrop.stream.core.schedule import InferenceSchedule

W, H = 640, 360  # work size 256×144
WORK = (256, 144)
EVERY = 3  # the model sees frames 0, 3, 6, … (model.interval 2)
IOU_BOUND = 0.98  # the skipped frames' mattes against their own (measured ≥ 0.993; plain reuse ≤ 0.93)
TRAIL_BOUND = 0.05  # alpha beyond a one-working-pixel band around the frame's own matte (measured 0.0; reuse 1.0)


def person(offset: int, lift: int = 0) -> np.ndarray:
    """A uint8 (0/255) frame-size silhouette: shoulders and head, ``offset`` px right and ``lift`` px up."""
    shape = np.zeros((H, W), np.uint8)
    cv2.ellipse(shape, (160 + offset, 380 - lift), (110, 180), 0, 0, 360, 255, -1)  # shoulders
    cv2.circle(shape, (160 + offset, 130 - lift), 60, 255, -1)  # head
    return shape


def scene(
    offset: int, rng: np.random.Generator, noise: float = 0.0, *, seed: int = 5, lift: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(frame, model mask): the bright person shape over a dark wall of 8-px blocks, camera noise of σ ``noise``."""
    wall = np.random.default_rng(seed).integers(20, 90, (H // 8, W // 8, 3), dtype=np.uint8)
    frame = cv2.resize(wall, (W, H), interpolation=cv2.INTER_NEAREST)
    shape = person(offset, lift)
    frame[shape > 0] = (190, 200, 210)
    if noise:
        frame = np.clip(frame + rng.normal(0, noise, frame.shape), 0, 255).astype(np.uint8)
    mask = cv2.resize(shape.astype(np.float32) / 255, (256, 256), interpolation=cv2.INTER_AREA)
    return frame, cv2.GaussianBlur(mask, (0, 0), 1.0)  # the model's soft edge


def silhouette(offset: int) -> np.ndarray:
    """The person's pixels at the working size (bool)."""
    return cv2.resize(person(offset), WORK, interpolation=cv2.INTER_AREA) >= 128


def run(maker: MatteMaker, masks: Sequence[np.ndarray | None], frames: list[np.ndarray]) -> list[Matte]:
    """The mattes of a clip, with the temporal state carried from frame to frame as the Compositor does."""
    state, mattes = None, []
    for mask, frame in zip(masks, frames, strict=True):
        matte, state = maker.matte(mask, frame, state)
        mattes.append(matte)
    return mattes


def iou(alpha: np.ndarray, reference: np.ndarray) -> float:
    """Intersection over union of the alpha ≥ 0.5 regions."""
    a, b = alpha >= 0.5, reference >= 0.5
    return float((a & b).sum() / (a | b).sum())


def trail(alpha: np.ndarray, reference: np.ndarray) -> float:
    """The most alpha kept beyond a one-pixel band around the reference matte (working size)."""
    support = cv2.dilate((reference > 0).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    return float(alpha[~support].max(initial=0.0))


# --- 1. skipped frames get the last mask moved along the motion -------------------------------------------------


@pytest.mark.parametrize("lift", [0, 100])  # 100: where a flow on too coarse a grid left the trailing edge behind
def test_skipped_frames_follow_a_moving_person(lift: int) -> None:
    rng = np.random.default_rng(1)
    offsets = np.concatenate([[0], np.cumsum(rng.integers(8, 16, 17))])  # 8–15 frame px (3–6 working px) a frame
    clip = [scene(int(x), rng, noise=4.0, lift=lift) for x in offsets]
    frames, masks = [f for f, _ in clip], [m for _, m in clip]
    skipped = [i for i in range(len(frames)) if i % EVERY]
    own = run(MatteMaker(MaskConfig(temporal="none"), W, H), masks, frames)  # each frame's matte from its own mask
    sparse = [m if i % EVERY == 0 else None for i, m in enumerate(masks)]
    moved = run(MatteMaker(MaskConfig(), W, H, propagate=True), sparse, frames)
    for index in skipped:
        assert iou(moved[index].work, own[index].work) >= IOU_BOUND, index
        assert trail(moved[index].work, own[index].work) < TRAIL_BOUND, index
    # the test can tell: the last inferred mask as it was (the old behaviour) lags and trails on every skipped frame
    reused = [masks[i - i % EVERY] for i in range(len(frames))]
    stale = run(MatteMaker(MaskConfig(), W, H), reused, frames)
    for index in skipped:
        assert iou(stale[index].work, own[index].work) < IOU_BOUND, index
        assert trail(stale[index].work, own[index].work) > 0.5, index


# --- 2. a cut is inferred at once ----------------------------------------------------------------------------------


@pytest.mark.parametrize("cut", [13, 14])  # 1 or 2 frames after the inferred frame 12
def test_a_cut_is_inferred_at_once_at_a_fixed_interval(cut: int) -> None:
    rng = np.random.default_rng(2)
    shot_a = [scene(0, rng, noise=6.0)[0] for _ in range(cut)]
    shot_b = [cv2.add(scene(300, rng, noise=6.0, seed=9)[0], 60) for _ in range(8)]  # another room, another light
    schedule = InferenceSchedule(5)
    due = [schedule.due(Frame(image, index=i)) for i, image in enumerate(shot_a + shot_b)]
    inferred = [i for i, answer in enumerate(due) if answer]
    assert inferred == [0, 6, 12, cut, cut + 6]  # one in six, the cut at once, then one in six from the cut
    assert (schedule.inferred, schedule.skipped) == (5, len(due) - 5)


# --- 3. noise is not motion ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("interval", "every"), [("auto", 9), (2, 3)])
def test_noise_alone_does_not_trigger_inference(interval: int | Literal["auto"], every: int) -> None:
    rng = np.random.default_rng(3)
    schedule = InferenceSchedule(interval, max_interval=8)
    due = [schedule.due(Frame(scene(0, rng, noise=14.0)[0], index=i)) for i in range(36)]
    assert [i for i, answer in enumerate(due) if answer] == list(range(0, 36, every))


def test_auto_infers_a_moving_person_on_every_frame() -> None:
    rng = np.random.default_rng(4)
    offsets = np.concatenate([[0], np.cumsum(rng.integers(8, 16, 23))])
    schedule = InferenceSchedule("auto", max_interval=8)
    due = [schedule.due(Frame(scene(int(x), rng, noise=14.0)[0], index=i)) for i, x in enumerate(offsets)]
    assert sum(due) >= 0.9 * len(due)  # measured: all 24


def own_matte(mask: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """The frame's own matte at the working size (no temporal filter): what the filter blends into."""
    return MatteMaker(MaskConfig(temporal="none"), W, H).matte(mask, frame, None)[0].work


def test_motion_weight_ignores_noise_and_drops_where_the_move_fails() -> None:
    rng = np.random.default_rng(0)
    maker = MatteMaker(MaskConfig(), W, H)
    temporal = maker.temporal
    full = 0.99 * temporal.strength
    first, mask = scene(0, rng, noise=14.0)
    _, state = maker.matte(mask, first, None)
    assert state is not None

    # a still scene under heavy noise: the previous matte keeps (nearly) full weight everywhere …
    frame, mask = scene(0, rng, noise=14.0)
    still = temporal.follow(maker.guide(frame), state, fresh=True)
    assert still is not None
    assert (temporal.weight(still, own_matte(mask, frame)) >= full).mean() > 0.98  # measured ≥ 0.9996
    # … because the threshold follows the frame's noise: a fixed one (no noise allowance) keeps none
    blind = cv2.LUT(cv2.dilate(still.residual, temporal.reach), temporal.weights_for(0.0))
    assert (blind >= full).mean() < 0.5  # measured 0.0

    # the person moved 20 px: where the moved matte does not hold this frame's silhouette, it gets no weight
    frame, mask = scene(20, rng, noise=14.0)
    moved = temporal.follow(maker.guide(frame), state, fresh=True)
    assert moved is not None
    own = own_matte(mask, frame)
    weight = temporal.weight(moved, own)
    changed = silhouette(20) != silhouette(0)  # newly covered or uncovered
    wrong = changed & (np.abs(moved.alpha - own) > 0.5)  # the moved previous matte still shows the old silhouette
    assert wrong.sum() > 20  # measured ~57 of 1792: the flow does not explain every changed pixel
    assert (weight[wrong] == 0).mean() >= 0.95  # measured 1.0
    assert (weight * np.abs(moved.alpha - own))[changed].mean() < 0.02  # measured 0.003
    # the weight alone does not keep the old silhouette out, the move does: unmoved, it would be pulled in
    assert (weight * np.abs(state.alpha - own))[changed].mean() > 0.1  # measured 0.22


# --- 4. configuration --------------------------------------------------------------------------------------------


def test_interval_auto_parses() -> None:
    model = parse_config({"model": {"interval": "auto", "max_interval": 4}}).model
    assert (model.interval, model.max_interval) == ("auto", 4)
    assert parse_config({"model": {"interval": 3}}).model.interval == 3
    assert parse_config(None).model.interval == 0  # every frame unless asked


@pytest.mark.parametrize(
    ("model", "key"),
    [
        ({"interval": "fast"}, "model.interval"),
        ({"interval": 2.5}, "model.interval"),
        ({"interval": True}, "model.interval"),
        ({"interval": "auto", "max_interval": 0}, "model.max_interval"),
    ],
)
def test_bad_intervals_are_refused_in_one_line(model: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config({"model": model})
    message = str(error.value)
    assert message.startswith(f"{key}:") and "\n" not in message
