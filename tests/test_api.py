"""The Python API (backdrop.api): the README's example runs as written, and each entry point keeps its promises."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from clips import CLIP_FRAMES, decode
from photos import ASSETS

from backdrop import Backdrop, MaskConfig, frames, run
from backdrop.benchmarks.rtsp_servers import LineWatcher, stop_process
from backdrop.errors import BackdropError, ConfigError, SinkError, SourceError
from backdrop.model.contract import BUILTIN_MODELS, WEIGHTS_DIR
from backdrop.stream.config.run import RunConfig, with_overrides
from backdrop.stream.core.frame import Frame
from backdrop.stream.core.steps import Infer
from backdrop.stream.sources.demo_clip import read_stamp, write_clip

README = Path(__file__).resolve().parent.parent / "docs" / "guide" / "python-api.md"  # the docs page of the API
MARKER = "<!-- api-example -->"
README_EXAMPLE = """\
import cv2
from backdrop import Backdrop, frames, load_config, run
from backdrop.stream.config.run import with_overrides

with Backdrop(background="color:#00ff00") as bd:  # one picture, or frames from your own loop
    photo = cv2.imread("portrait.jpg")
    cv2.imwrite("green.png", bd.composite(photo))  # BGR in, BGR out
    alpha = bd.matte(photo)  # float32 H×W, 1 = person

config = with_overrides(load_config("file"), {"source.uri": "talk.mp4", "outputs": ["talk-green.mp4"]})
stats = run(config)  # what `backdrop run --config file` does, with the same errors
print(f"{stats['frames_out']} frames at {stats['fps']:.0f} fps")

for frame in frames(with_overrides(config, {"outputs": ["null"]})):  # output frames as they are made
    if frame.index == 5:
        cv2.imwrite("frame5.png", frame.image)
        break  # leaving the loop stops the run
"""

GREEN = (0, 255, 0)
CLIP_OVERRIDES = {"outputs": ["null"], "model.runtime": "onnxruntime", "background": "color:#00ff00"}


def test_readme_shows_the_example() -> None:
    text = README.read_text(encoding="utf-8")
    assert MARKER in text, f"{README} lost its {MARKER} marker before the API example"
    assert README_EXAMPLE in text


def test_readme_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    shutil.copy(ASSETS / "astronaut.jpg", tmp_path / "portrait.jpg")
    write_clip(tmp_path / "talk.mp4", width=320, height=180, frames=10)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(README_EXAMPLE, "README example", "exec"), namespace)
    assert capsys.readouterr().out.startswith("10 frames at ")
    assert cv2.imread("green.png").shape == (384, 384, 3) and namespace["alpha"].shape == (384, 384)
    assert len(decode(tmp_path / "talk-green.mp4")) == 10
    assert cv2.imread("frame5.png").shape == (180, 320, 3)
    # nothing it was not asked for (the bundled file config once left result.stats.json here)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "frame5.png", "green.png", "portrait.jpg", "talk-green.mp4", "talk.mp4"
    ]  # fmt: skip


def test_import_backdrop_stays_light() -> None:
    code = "import sys, backdrop; print(sorted({'cv2', 'onnxruntime', 'numpy', 'av'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return cv2.imread(str(ASSETS / "astronaut.jpg"))


def sure_regions(segmenter, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sure person, sure background): the model's own mask is confident and its edge is ≥ 8 px away."""
    infer = Infer(segmenter)
    frame = Frame(image)
    alpha = cv2.resize(infer.masks([infer.preprocess(frame)])[0], frame.size, interpolation=cv2.INTER_LINEAR)
    kernel = np.ones((17, 17), np.uint8)
    return tuple(cv2.erode(region.astype(np.uint8), kernel).astype(bool) for region in (alpha > 0.9, alpha < 0.1))


def test_composite_replaces_the_background_and_keeps_the_person(photo: np.ndarray, segmenter) -> None:
    person, background = sure_regions(segmenter, photo)
    assert person.mean() > 0.1 and background.mean() > 0.1  # the photo has plenty of both
    with Backdrop(runtime="onnxruntime", background="color:#00ff00", threads=1) as bd:
        out = bd.composite(photo)
        alpha = bd.matte(photo)
    assert out.shape == photo.shape and out.dtype == np.uint8
    assert np.abs(out[person].astype(int) - photo[person]).mean() < 2
    assert np.abs(out[background].astype(int) - GREEN).mean() < 2
    assert alpha.shape == photo.shape[:2] and alpha.dtype == np.float32
    assert alpha[person].min() > 0.8 and alpha[background].max() < 0.2


def test_transparent_gives_bgra_and_a_new_size_reopens(photo: np.ndarray) -> None:
    with Backdrop(runtime="onnxruntime", background="transparent", threads=1) as bd:
        full = bd.composite(photo)
        small = bd.composite(np.ascontiguousarray(photo[:200, :300]))
    assert full.shape == (*photo.shape[:2], 4) and small.shape == (200, 300, 4)
    solid, soft = full[..., 3] == 255, (full[..., 3] > 0) & (full[..., 3] < 255)
    kept = np.abs(full[..., :3][solid].astype(int) - photo[solid])
    assert kept.max() <= 2  # the person untouched (an 8-bit 255 may be 0.998); the alpha carries the cut …
    assert (full[..., :3][soft] != photo[soft]).any()  # … and the soft edge has the person's estimated colours
    with Backdrop(runtime="onnxruntime", background="transparent", mask=MaskConfig(clean_edges=False), threads=1) as bd:
        assert np.array_equal(bd.composite(photo)[..., :3], photo)  # mask.clean_edges: false keeps the frame's


def test_smoothing_carries_over_frames_until_reset(photo: np.ndarray) -> None:
    empty = np.full_like(photo, 128)  # a grey frame with nobody in it
    ema = MaskConfig(temporal="ema", smoothing=0.8)  # the motion filter would see a cut here and forget at once
    with Backdrop(runtime="onnxruntime", background="blur:9", mask=ema, threads=1) as bd:
        bd.matte(photo)
        assert bd.matte(empty).max() > 0.5  # the person fades out over frames
        bd.reset()
        assert bd.matte(empty).max() < 0.1  # as on a first frame


@pytest.mark.parametrize(
    ("image", "error"),
    [
        (np.zeros((4, 4), np.uint8), "uint8 array of shape (4, 4)"),
        (np.zeros((4, 4, 3), np.float32), "float32 array"),
        ("photo.jpg", "got a str"),
    ],
)
def test_composite_rejects_what_is_not_a_bgr_image(image: object, error: str) -> None:
    with (
        Backdrop(runtime="onnxruntime", threads=1) as bd,
        pytest.raises(BackdropError, match=re.escape(error)),
    ):
        bd.composite(image)


@pytest.mark.parametrize(
    ("height", "width", "error"),
    [
        (0, 0, "image is 0x0 pixels: empty (frames need at least 2x2)"),
        (0, 5, "image is 5x0 pixels: empty"),
        (1, 1, "image is 1x1 pixels: too small to segment (frames need at least 2x2)"),
        (1, 7, "image is 7x1 pixels: too small to segment"),
        (7, 1, "image is 1x7 pixels: too small to segment"),
        (2, 2, None),  # the smallest that works, with every odd size above it
        (3, 3, None),
        (2, 9, None),
        (9, 2, None),
        (17, 33, None),
    ],
)
@pytest.mark.parametrize("background", ["color:#00ff00", "transparent"])
def test_images_too_small_to_segment_are_one_line_errors(
    height: int, width: int, error: str | None, background: str
) -> None:
    image = np.random.default_rng(0).integers(0, 256, (height, width, 3), np.uint8)
    with Backdrop(runtime="onnxruntime", background=background, threads=1) as bd:
        if error is None:
            assert bd.composite(image).shape[:2] == (height, width) and bd.matte(image).shape == (height, width)
            return
        for call in (bd.composite, bd.matte):
            with pytest.raises(SourceError) as raised:
                call(image)
            assert str(raised.value).startswith(error)


def test_bad_arguments_fail_before_the_model_loads() -> None:
    with pytest.raises(BackdropError, match="blur size"):
        Backdrop(background="blur:4")
    with pytest.raises(BackdropError, match=r"mask\.smoothing"):
        Backdrop(mask=MaskConfig(smoothing=1.5))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"background": None}, "background: expected a spec such as 'blur:21', 'color:#00ff00' or a file, got None"),
        ({"background": 21}, "background: expected a spec such as 'blur:21', 'color:#00ff00' or a file, got 21"),
        ({"model": None}, "model: expected a model name (general, landscape) or a path, got None"),
        ({"model": b"general"}, "model: expected a model name (general, landscape) or a path, got b'general'"),
        ({"runtime": None}, "runtime: expected a runtime name such as 'auto' or 'onnxruntime', got None"),
        ({"mask": "soft"}, "mask: expected a MaskConfig, a mapping of its fields or None, got 'soft'"),
        ({"mask": MaskConfig(smoothing="0.5")}, "mask.smoothing: expected float, got '0.5'"),
        ({"mask": MaskConfig(mode=None)}, "mask.mode: expected str, got None"),
        ({"mask": MaskConfig(refine_size=100.5)}, "mask.refine_size: expected int, got 100.5"),
        ({"mask": MaskConfig(feather=True)}, "mask.feather: expected float, got True"),
        ({"mask": {"smoothing": 2}}, "mask.smoothing: must be in [0, 1)"),
        ({"mask": {"smoth": 0.5}}, "unknown key 'mask.smoth'"),
        ({"threads": "2"}, "threads: expected a whole number or None, got '2'"),
        ({"threads": 2.0}, "threads: expected a whole number or None, got 2.0"),
        ({"threads": True}, "threads: expected a whole number or None, got True"),
        ({"threads": 0}, "threads: must be in [1, 256]"),
    ],
)
def test_bad_arguments_are_one_line_config_errors_naming_the_argument(arguments: dict, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        Backdrop(**arguments)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_paths_and_mask_mappings_are_accepted() -> None:
    model = WEIGHTS_DIR / BUILTIN_MODELS["general"]
    background = ASSETS / "astronaut.jpg"
    with Backdrop(model, runtime="onnxruntime", background=background, mask={"temporal": "ema"}, threads=1) as bd:
        assert bd.mask == MaskConfig(temporal="ema")


def clip_config(clip: Path, **overrides: object) -> RunConfig:
    return with_overrides(RunConfig(), {"source.uri": str(clip), **CLIP_OVERRIDES, **overrides})


def test_frames_yields_every_frame_in_order(stamped_clip: Path) -> None:
    seen = [(frame.index, read_stamp(frame.image)) for frame in frames(clip_config(stamped_clip))]
    assert seen == [(i, i) for i in range(CLIP_FRAMES)]


def new_threads(before: set[threading.Thread]) -> list[threading.Thread]:
    """Threads started since ``before`` that are still running once each has had time to finish."""
    started = set(threading.enumerate()) - before
    for thread in started:
        thread.join(timeout=10)
    return [thread for thread in started if thread.is_alive()]


@pytest.mark.parametrize("source", ["stamped", "testsrc:160x120@30,live"])
def test_leaving_the_loop_stops_the_run(source: str, stamped_clip: Path) -> None:
    """A finite clip (the writer is blocked on the full hand-off) and an endless live source both stop."""
    config = clip_config(stamped_clip if source == "stamped" else source, **{"pipeline.queue_size": 1})
    before = set(threading.enumerate())
    for frame in frames(config):
        if frame.index == 3:
            break
    assert not any(thread.name == "backdrop-frames" for thread in threading.enumerate())  # joined before break ends
    assert new_threads(before) == []


ABANDONED = """\
import sys
from backdrop import frames
from backdrop.stream.config.run import RunConfig, with_overrides

source, output = sys.argv[1:]
overrides = {"source.uri": source, "outputs": [output], "model.runtime": "onnxruntime", "pipeline.queue_size": 1}
run = frames(with_overrides(RunConfig(), overrides))
for _ in range(3):
    next(run)
print("leaving", flush=True)
"""


@pytest.mark.parametrize("source", ["stamped", "testsrc:160x120@30,live"])
def test_an_abandoned_generator_does_not_keep_the_process_alive(
    source: str, stamped_clip: Path, tmp_path: Path
) -> None:
    """A script that takes a few frames and ends without closing its generator exits at once, outputs finished."""
    output = tmp_path / "out.mp4"
    uri = str(stamped_clip) if source == "stamped" else source
    process = subprocess.Popen(
        [sys.executable, "-c", ABANDONED, uri, str(output)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    stdout = LineWatcher(process.stdout)
    try:
        stdout.wait_for("leaving", timeout=60)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pytest.fail("still running 10 s after leaving its loop: the abandoned run keeps the process alive")
    finally:
        stop_process(process)
    assert process.returncode == 0, process.stderr.read()
    assert len(decode(output)) >= 3 and not list(tmp_path.glob(".*partial"))  # stopped as a loop left early is


def test_an_error_of_the_run_is_raised_in_the_loop(stamped_clip: Path, tmp_path: Path) -> None:
    config = clip_config(stamped_clip, outputs=[str(tmp_path / "missing" / "out.mp4")])
    before = set(threading.enumerate())
    with pytest.raises(SinkError, match="does not exist"):
        for _ in frames(config):
            pass
    assert new_threads(before) == []


def test_run_hands_every_frame_to_on_frame(tmp_path: Path) -> None:
    received: list[Frame] = []
    progress: list[bool] = []
    config = clip_config("testsrc:160x120,frames=12", **{"pipeline.stats_json": str(tmp_path / "stats.json")})
    stats = run(config, on_frame=received.append, on_progress=lambda stats, final: progress.append(final))
    assert len(received) == stats["frames_out"] == 12
    assert [frame.index for frame in received] == list(range(12))
    assert received[0].image.shape == (120, 160, 3) and progress[-1] is True
    assert '"frames_out": 12' in (tmp_path / "stats.json").read_text()


def test_an_exception_in_on_frame_ends_the_run() -> None:
    def explode(frame: Frame) -> None:
        raise RuntimeError("callback failed")

    with pytest.raises(RuntimeError, match="callback failed"):
        run(clip_config("testsrc:160x120,frames=12"), on_frame=explode)


@pytest.mark.parametrize("entry", [run, lambda config: list(frames(config))], ids=["run", "frames"])
def test_a_bad_source_raises_source_error(entry, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"missing\.mp4"):
        entry(clip_config(tmp_path / "missing.mp4"))
