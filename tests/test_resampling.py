"""The model input is sampled as MediaPipe's ImageToTensorCalculator samples it, from BGR and I420 alike."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from photos import load_rgb

from backdrop.errors import ModelError
from backdrop.model.contract import ModelContract, resolve_model
from backdrop.pixels import BGR, I420, RGB, bgr_to_i420


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    """A 720p BGR frame of a person."""
    return cv2.resize(cv2.cvtColor(load_rgb("astronaut.jpg"), cv2.COLOR_RGB2BGR), (1280, 720))


def mediapipe_recipe(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """MediaPipe's OpenCV converter as the OpenCV 4 it links computes it, written out in numpy: the levels.

    Its warp maps the image's corners onto the tensor's: output pixel (u, v) reads source (u·W/w, v·H/h),
    rounded to 1/32 pixel; the four neighbours are blended with integer weights summing to 2^15 and rounded,
    and pixels outside the image are black. (Checked to equal OpenCV 4.10's cv2.warpPerspective of the
    rotated-rect transform bit for bit at all the sizes below; OpenCV 5 interpolates in float instead.)
    """
    h, w = rgb.shape[:2]

    def positions(count: int, source: int) -> tuple[np.ndarray, np.ndarray]:
        fixed = np.round(np.arange(count) * (source / count) * 32).astype(np.int64)
        return fixed >> 5, fixed & 31

    (x0, fx), (y0, fy) = positions(width, w), positions(height, h)
    padded = np.zeros((h + 1, w + 1, 3), np.int64)
    padded[:h, :w] = rgb
    total = np.zeros((height, width, 3), np.int64)
    for dy, wy in ((0, 32 - fy), (1, fy)):
        for dx, wx in ((0, 32 - fx), (1, fx)):
            weight = wy[:, None, None] * wx[None, :, None] * 32
            total += weight * padded[np.minimum(y0 + dy, h)[:, None], np.minimum(x0 + dx, w)[None, :]]
    return ((total + (1 << 14)) >> 15).astype(np.uint8)


@pytest.mark.parametrize("size", [(256, 256), (256, 144), (255, 143), (1600, 900)])  # odd, and upsampling
def test_the_contract_samples_like_mediapipe(frame: np.ndarray, size: tuple[int, int]) -> None:
    contract = ModelContract("t", "t", input_height=size[1], input_width=size[0])
    expected = mediapipe_recipe(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), *size)
    levels = np.round(contract.to_model_input(frame, BGR) * 255)
    np.testing.assert_array_equal(levels, expected)


@pytest.mark.parametrize("size", [(256, 256), (255, 143), (1600, 900)])
def test_i420_and_bgr_give_the_same_input(frame: np.ndarray, size: tuple[int, int]) -> None:
    contract = ModelContract("t", "t", input_height=size[1], input_width=size[0])
    i420 = bgr_to_i420(frame)
    from_i420 = contract.to_model_input(i420, I420)
    # the very same picture as a decoder hands it over in BGR: converted by FFmpeg (PyAV)
    decoded = av.VideoFrame.from_ndarray(i420, format="yuv420p").to_ndarray(format="bgr24")
    difference = np.abs(from_i420 - contract.to_model_input(decoded, BGR)) * 255
    # the same samples; BGR is rounded to whole levels before sampling, I420 only after converting
    assert difference.mean() < 0.5 and np.percentile(difference, 99) <= 2.01


def test_the_bundled_models_say_how_they_were_fed_and_old_contracts_default_to_it(tmp_path: Path) -> None:
    for name in ("general", "landscape"):
        assert resolve_model(name).contract.resampling == "mediapipe"
    data = dataclasses.asdict(resolve_model("general").contract)
    del data["resampling"]
    (tmp_path / "old.json").write_text(json.dumps(data))
    assert ModelContract.load(tmp_path / "old.json").resampling == "mediapipe"
    with pytest.raises(ModelError, match="resampling"):
        ModelContract("m", "m", input_height=8, input_width=8, resampling="nearest")


def test_masks_agree_with_the_old_resize_except_where_the_model_is_unsure(segmenter, frame: np.ndarray) -> None:
    masks = {}
    for resampling in ("mediapipe", "resize"):
        contract = dataclasses.replace(segmenter.contract, resampling=resampling)
        masks[resampling] = segmenter.segment(contract.to_model_input(frame, BGR)[None])[0]
    new, old = masks["mediapipe"], masks["resize"]
    flipped = (new >= 0.5) != (old >= 0.5)
    sure = (np.minimum(new, old) > 0.9) | (np.maximum(new, old) < 0.1)
    assert np.count_nonzero(flipped) < 0.01 * new.size and not (flipped & sure).any()
    assert np.abs(new - old)[sure].mean() < 0.01


def test_rgb_frames_are_sampled_without_a_colour_round_trip(frame: np.ndarray) -> None:
    contract = ModelContract("t", "t", input_height=144, input_width=256)
    rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    assert np.array_equal(contract.to_model_input(rgb, RGB), contract.to_model_input(frame, BGR))


MEDIAPIPE_VENV = Path(__file__).resolve().parent.parent / ".cache" / "mpvenv"  # made by `make mediapipe-env`


def mediapipe_python() -> str:
    """The interpreter with mediapipe: $BACKDROP_MEDIAPIPE_PYTHON, else `make mediapipe-env`'s (a failure without)."""
    python = os.environ.get("BACKDROP_MEDIAPIPE_PYTHON", str(MEDIAPIPE_VENV / "bin" / "python"))
    if not Path(python).is_file():
        pytest.fail(f"no interpreter with mediapipe at {python}: run `make mediapipe-env` (`make test` does)")
    check = subprocess.run([python, "-c", "import mediapipe"], capture_output=True, text=True)
    if check.returncode:
        pytest.fail(f"{python} cannot import mediapipe (run `make mediapipe-env`): {check.stderr.strip()}")
    return python


def test_masks_agree_with_mediapipes_own_loop_on_the_photos(tmp_path: Path) -> None:
    from backdrop.benchmarks.mediapipe_agreement import main

    out = tmp_path / "agreement.json"
    assert main(["--mediapipe-python", mediapipe_python(), "--repeats", "3", "--json", str(out)]) == 0
    iou = json.loads(out.read_text())["iou"]
    assert min(iou["mediapipe_rgb"]["stills"].values()) >= 0.999
    assert min(iou["mediapipe_i420"]["stills"].values()) >= 0.99
