"""File → file runs stay in the decoder's I420; everything else runs in BGR. Both must give the same picture."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from clips import CLIP_FRAMES, decode

from backdrop.errors import ModelError
from backdrop.model.contract import ModelContract
from backdrop.pixels import BGR, I420, RGB, bgr_to_i420, i420_planes, i420_to_bgr, resize_i420
from backdrop.stream.compositing.backgrounds import parse_background
from backdrop.stream.compositing.blend import I420Blender, Matte, blend
from backdrop.stream.compositing.matte import MatteMaker
from backdrop.stream.config.run import MaskConfig
from backdrop.stream.core.pipeline import Pipeline
from backdrop.stream.sinks.null import NullSink
from backdrop.stream.sinks.png_folder import PngFolderSink
from backdrop.stream.sinks.video_file import VideoFileSink
from backdrop.stream.sources.demo_clip import read_stamp
from backdrop.stream.sources.testsrc import TestSource
from backdrop.stream.sources.video_file import VideoFileSource

W, H = 320, 180


@pytest.fixture(scope="module")
def photo_frame(stamped_clip: Path) -> np.ndarray:
    return decode(stamped_clip)[5]


def soft_matte(width: int = W, height: int = H) -> Matte:
    """A left-to-right ramp over a working size a quarter of the frame: 0, fractional and 1 columns."""
    ramp = np.clip(np.linspace(-0.5, 1.5, width // 4, dtype=np.float32), 0, 1)
    return Matte(np.tile(ramp, (height // 4, 1)), (width, height))


def test_i420_planes_are_views_in_order() -> None:
    image = np.arange(H * 3 // 2 * W, dtype=np.uint32).astype(np.uint8).reshape(H * 3 // 2, W)
    luma, u, v = i420_planes(image)
    assert luma.shape == (H, W) and u.shape == v.shape == (H // 2, W // 2)
    luma[0, 0], u[0, 0], v[-1, -1] = 1, 2, 3
    assert image[0, 0] == 1 and image[H, 0] == 2 and image[-1, -1] == 3


def test_resize_i420_matches_resizing_the_picture(photo_frame: np.ndarray) -> None:
    small = i420_to_bgr(resize_i420(bgr_to_i420(photo_frame), (128, 72)))
    expected = cv2.resize(photo_frame, (128, 72), interpolation=cv2.INTER_LINEAR)
    assert np.abs(small.astype(int) - expected).mean() < 3


@pytest.mark.parametrize("size", [(256, 144), (255, 143)])  # odd model sizes are served too
def test_preprocess_gives_the_same_tensor_from_either_layout(photo_frame: np.ndarray, size: tuple[int, int]) -> None:
    contract = ModelContract("test", "test", input_height=size[1], input_width=size[0])
    from_bgr = contract.to_model_input(photo_frame, BGR)
    from_i420 = contract.to_model_input(bgr_to_i420(photo_frame), I420)
    from_rgb = contract.to_model_input(cv2.cvtColor(photo_frame, cv2.COLOR_BGR2RGB), RGB)
    assert np.array_equal(from_rgb, from_bgr)
    assert from_i420.shape == from_bgr.shape == (size[1], size[0], 3) and from_i420.dtype == np.float32
    assert np.abs(from_i420 - from_bgr).mean() < 5 / 255  # an odd size resamples twice: a little softer


def test_model_input_follows_the_contracts_channel_order_and_value_range(photo_frame: np.ndarray) -> None:
    rgb01 = ModelContract("a", "a", input_height=64, input_width=96).to_model_input(photo_frame, BGR)
    bgr_signed = ModelContract(
        "b", "b", input_height=64, input_width=96, channel_order="BGR", value_range=(-1.0, 1.0)
    ).to_model_input(photo_frame, BGR)
    np.testing.assert_allclose(bgr_signed, rgb01[..., ::-1] * 2 - 1, atol=1e-6)
    assert rgb01.min() >= 0 and rgb01.max() <= 1 and bgr_signed.min() < 0


@pytest.mark.parametrize(
    ("fields", "message"), [({"channel_order": "YUV"}, "channel_order"), ({"value_range": (1.0, 0.0)}, "value_range")]
)
def test_a_contract_with_an_unknown_channel_order_or_range_is_refused(fields: dict, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        ModelContract("m", "m", input_height=8, input_width=8, **fields)


def test_i420_blend_keeps_person_takes_backdrop_and_mixes_the_edge(photo_frame: np.ndarray) -> None:
    frame = cv2.resize(photo_frame, (W, H))
    backdrop = np.zeros_like(frame)
    backdrop[:] = (0, 255, 0)
    matte = soft_matte()
    mixed = i420_to_bgr(I420Blender(W, H).blend(bgr_to_i420(frame), bgr_to_i420(backdrop), matte))
    reference = blend(frame, backdrop, matte)
    alpha = matte.full()
    person, background = alpha[0] == 1, alpha[0] == 0
    # colour conversions and 4:2:0 chroma cost a few levels; the sure regions are the frame / the backdrop
    assert np.abs(mixed[:, person].astype(int) - frame[:, person]).mean() < 4
    assert np.abs(mixed[:, background].astype(int) - backdrop[:, background]).mean() < 4
    assert np.abs(mixed.astype(int) - reference).mean() < 4


def test_i420_blend_is_exact_where_the_matte_is_0_or_1(photo_frame: np.ndarray) -> None:
    frame, backdrop = bgr_to_i420(cv2.resize(photo_frame, (W, H))), np.full((H * 3 // 2, W), 77, np.uint8)
    blender = I420Blender(W, H)
    for value, expected in ((1.0, frame), (0.0, backdrop)):
        matte = Matte(np.full((H // 4, W // 4), value, np.float32), (W, H))
        assert np.array_equal(blender.blend(frame, backdrop, matte), expected)


@pytest.mark.parametrize("spec", ["blur:21", "color:#3366cc", "picture.png"])
def test_backgrounds_give_the_same_picture_in_either_layout(photo_frame: np.ndarray, spec: str, tmp_path: Path) -> None:
    if spec == "picture.png":
        spec = str(tmp_path / spec)
        cv2.imwrite(spec, cv2.flip(photo_frame, 1))
    background = parse_background(spec)
    height, width = photo_frame.shape[:2]
    matte = soft_matte(width, height)
    background.open(width, height, BGR)
    from_bgr = background.compose(photo_frame, matte)
    background.open(width, height, I420)
    from_i420 = i420_to_bgr(background.compose(bgr_to_i420(photo_frame), matte))
    assert np.abs(from_i420.astype(int) - from_bgr).mean() < 3


def test_guided_matte_follows_the_same_guide_in_either_layout(photo_frame: np.ndarray) -> None:
    height, width = photo_frame.shape[:2]
    mask = cv2.resize((cv2.cvtColor(photo_frame, cv2.COLOR_BGR2GRAY) > 100).astype(np.float32), (256, 144))
    bgr, _ = MatteMaker(MaskConfig(), width, height, BGR).matte(mask, photo_frame, None)
    i420, _ = MatteMaker(MaskConfig(), width, height, I420).matte(mask, bgr_to_i420(photo_frame), None)
    assert np.abs(bgr.work - i420.work).mean() < 0.01


def pipeline_layout(source, background: str, sinks: list) -> str:
    return Pipeline(source, None, parse_background(background), sinks).layout()  # type: ignore[arg-type]


def test_layout_is_i420_only_when_source_background_and_every_sink_allow_it(stamped_clip: Path, tmp_path: Path) -> None:
    mp4 = VideoFileSink(tmp_path / "out.mp4")
    with VideoFileSource(stamped_clip) as source:
        assert source.layout == I420
        assert pipeline_layout(source, "blur", [mp4, NullSink()]) == I420
        assert pipeline_layout(source, "color:#00ff00", [mp4, PngFolderSink(tmp_path / "png")]) == BGR
        assert pipeline_layout(source, "transparent", [VideoFileSink(tmp_path / "a.mov", alpha=True)]) == BGR
    assert pipeline_layout(TestSource(64, 48, frames=2), "blur", [mp4]) == BGR  # OpenCV-drawn frames


@pytest.mark.parametrize(("pix_fmt", "size"), [("yuv420p", (161, 91)), ("yuv444p", (160, 90))])
def test_video_that_is_not_even_sized_420_is_read_as_bgr(tmp_path: Path, pix_fmt: str, size: tuple[int, int]) -> None:
    clip = tmp_path / f"{pix_fmt}.mkv"
    with av.open(str(clip), "w") as container:
        stream = container.add_stream("ffv1", rate=30)
        stream.width, stream.height, stream.pix_fmt = *size, pix_fmt
        black = av.VideoFrame.from_ndarray(np.zeros((size[1], size[0], 3), np.uint8), format="bgr24")
        container.mux([*stream.encode(black), *stream.encode(None)])
    with VideoFileSource(clip) as source:
        assert source.layout == BGR
        frame = source.read()
        assert frame.layout == BGR and frame.image.shape == (size[1], size[0], 3)


def test_i420_run_matches_the_bgr_run_frame_for_frame(stamped_clip: Path, tmp_path: Path, segmenter) -> None:
    """The same clip through the I420 path (mp4 only) and the BGR path (mp4 + PNGs) gives the same video."""
    outputs = {}
    for name, extra in (("i420", []), ("bgr", [PngFolderSink(tmp_path / "png")])):
        out = tmp_path / f"{name}.mp4"
        with VideoFileSource(stamped_clip) as source:
            pipeline = Pipeline(source, segmenter, parse_background("blur:21"), [VideoFileSink(out), *extra])
            assert pipeline.layout() == (I420 if name == "i420" else BGR)
            pipeline.run()
        outputs[name] = decode(out)
    assert [read_stamp(f) for f in outputs["i420"]] == list(range(CLIP_FRAMES))
    difference = [np.abs(a.astype(int) - b).mean() for a, b in zip(outputs["i420"], outputs["bgr"], strict=True)]
    assert max(difference) < 2.5
