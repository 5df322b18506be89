"""End to end through the threaded pipeline with the real model and real codecs."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from clips import CLIP_FRAMES, decode, run_cli
from photos import ASSETS
from rtsp_fixtures import wait_until

from backdrop.errors import SourceError
from backdrop.pixels import BGR
from backdrop.stream.compositing.backgrounds import parse_background
from backdrop.stream.config.run import MaskConfig
from backdrop.stream.core.frame import Frame
from backdrop.stream.core.pipeline import Pipeline
from backdrop.stream.core.schedule import InferenceSchedule
from backdrop.stream.core.steps import Infer
from backdrop.stream.sinks.base import Sink
from backdrop.stream.sinks.video_file import VideoFileSink
from backdrop.stream.sources.demo_clip import read_stamp
from backdrop.stream.sources.testsrc import TestSource
from backdrop.stream.sources.video_file import VideoFileSource

GREEN = (0, 255, 0)
EVENT_TIMEOUT_S = 60.0  # how long a test waits for an event before failing: a failure bound, not a measurement


def model_alpha(segmenter, image: np.ndarray) -> np.ndarray:
    """The model's own mask for ``image``, upsampled to its size."""
    height, width = segmenter.contract.input_size
    small = cv2.cvtColor(cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB)
    mask = segmenter.segment(small[None].astype(np.float32) / 255.0)[0]
    return cv2.resize(mask, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)


def regions(alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sure person, sure background) pixels: the model is confident and the edge is ≥ 8 px away."""
    kernel = np.ones((17, 17), np.uint8)
    person = cv2.erode((alpha > 0.9).astype(np.uint8), kernel).astype(bool)
    background = cv2.erode((alpha < 0.1).astype(np.uint8), kernel).astype(bool)
    return person, background


@pytest.fixture(scope="module")
def green_run(tmp_path_factory: pytest.TempPathFactory, stamped_clip: Path) -> dict:
    """One CLI run of the stamped clip onto green, to an .mp4 and a PNG folder at once, with stats."""
    out = tmp_path_factory.mktemp("green")
    capsys = pytest.MonkeyPatch()  # run_cli needs capsys; use the CLI directly here instead
    del capsys
    from backdrop.cli import main

    code = main(
        [
            "run",
            "--source",
            str(stamped_clip),
            "--background",
            "color:#00ff00",
            "--output",
            str(out / "out.mp4"),
            "--output",
            str(out / "frames/"),
            "--output",
            "null",
            "--runtime",
            "onnxruntime",
            "--stats-json",
            str(out / "stats.json"),
        ]
    )
    return {"code": code, "dir": out, "stats": json.loads((out / "stats.json").read_text())}


def test_every_frame_arrives_in_order(green_run: dict) -> None:
    assert green_run["code"] == 0
    frames = decode(green_run["dir"] / "out.mp4")
    assert [read_stamp(f) for f in frames] == list(range(CLIP_FRAMES))
    pngs = sorted((green_run["dir"] / "frames").glob("*.png"))
    assert [read_stamp(cv2.imread(str(p))) for p in pngs] == list(range(CLIP_FRAMES))


def test_output_keeps_the_source_frame_rate(green_run: dict) -> None:
    import av

    with av.open(str(green_run["dir"] / "out.mp4")) as container:
        assert container.streams.video[0].average_rate == 30


def test_background_replaced_and_person_kept(green_run: dict, stamped_clip: Path, segmenter) -> None:
    inputs = decode(stamped_clip)
    outputs = decode(green_run["dir"] / "out.mp4")
    for index in (0, 17, CLIP_FRAMES - 1):
        person, background = regions(model_alpha(segmenter, inputs[index]))
        assert person.mean() > 0.1 and background.mean() > 0.2  # the clip has plenty of both
        out = outputs[index].astype(np.int16)
        assert np.abs(out[person] - inputs[index][person]).mean() < 4  # codec noise only
        assert np.abs(out[background] - GREEN).mean() < 4


def test_stats_json(green_run: dict) -> None:
    main, run = green_run["stats"]["streams"]["main"], green_run["stats"]["run"]
    assert main["frames_in"] == main["frames_out"] == CLIP_FRAMES and main["dropped"] == 0
    assert run["fps"] > 0 and main["latency_p95_ms"] >= main["latency_p50_ms"] > 0
    assert {"capture", "preprocess", "inference", "composite"} <= set(run["stages"])
    assert all(set(times) == {"p50_ms", "p95_ms"} for times in run["stages"].values())
    assert main["reconnects"] == 0 and run["damage"] is None


def test_transparent_output_has_alpha(tmp_path: Path, stamped_clip: Path, segmenter, capsys) -> None:
    code, err = run_cli(
        capsys, "run", "--source", stamped_clip, "--background", "transparent", "--output", tmp_path / "alpha.mkv",
        "--output", tmp_path / "rgba/", "--max-frames", 5, "--runtime", "onnxruntime",
    )  # fmt: skip
    assert code == 0, err
    frames = decode(tmp_path / "alpha.mkv", "bgra")
    pngs = [cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in sorted((tmp_path / "rgba").glob("*.png"))]
    assert len(frames) == len(pngs) == 5
    source = decode(stamped_clip)[0]
    person, background = regions(model_alpha(segmenter, source))
    for image in (frames[0], pngs[0]):
        assert image.shape[2] == 4
        assert image[..., 3][person].min() > 200 and image[..., 3][background].max() < 55
        # outside the soft band the colour is untouched and the alpha carries the cut (FFmpeg and OpenCV round
        # YUV → BGR a level apart); in the band the colours are the person's estimated ones (test_clean_edges.py)
        solid = (image[..., 3] == 0) | (image[..., 3] == 255)
        assert np.abs(image[..., :3].astype(int) - source)[solid].mean() < 1.5


def test_max_frames_on_a_live_source(tmp_path: Path, capsys) -> None:
    code, err = run_cli(
        capsys, "run", "--source", "testsrc:160x120@120,live", "--background", "blur:9", "--output",
        tmp_path / "live.mp4", "--max-frames", 9, "--runtime", "onnxruntime",
    )  # fmt: skip
    assert code == 0, err
    assert len(decode(tmp_path / "live.mp4")) == 9


class RecordingSink(Sink):
    """Keeps the stamps it receives; optionally slow (a stand-in for a sink that cannot keep up)."""

    def __init__(self, *, delay_s: float = 0.0, fail_at: int | None = None) -> None:
        self.delay_s, self.fail_at = delay_s, fail_at
        self.indices: list[int] = []
        self.stats_seen: list[dict] = []

    def open(self, width: int, height: int, fps: float) -> None:
        self.size = (width, height)

    def write(self, frame: Frame) -> None:
        if self.fail_at is not None and len(self.indices) == self.fail_at:
            raise RuntimeError("disk on fire")
        if self.delay_s:
            time.sleep(self.delay_s)  # simulated work, not synchronisation
        self.indices.append(int(frame.image[0, 0, 0]) + 256 * int(frame.image[0, 0, 1]))

    def update_stats(self, stats: dict) -> None:
        self.stats_seen.append(stats)

    def close(self) -> None:
        self.closed = True


class SignallingFileSink(VideoFileSink):
    """A video file that sets ``written`` once it holds a frame: lets a test order events without sleeping."""

    def __init__(self, path: Path, written: threading.Event, **kwargs: object) -> None:
        super().__init__(path, **kwargs)
        self.written = written

    def write(self, frame: Frame) -> None:
        super().write(frame)
        self.written.set()


class CountingSource(TestSource):
    """testsrc that writes its frame index into pixel (0, 0) (blue + 256 × green) and can fail mid-stream."""

    def __init__(
        self,
        *,
        fail_at: int | None = None,
        fail_once: threading.Event | None = None,
        still: bool = False,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)
        self.fail_at = fail_at
        self.fail_once = fail_once  # when given, the failure waits for it (e.g. until a frame has been written)
        self.still: np.ndarray | None = None if not still else np.full((self.height, self.width, 3), 90, np.uint8)

    def read(self) -> Frame | None:
        if self.fail_at is not None and self.index == self.fail_at:
            if self.fail_once is not None:
                self.fail_once.wait(timeout=60)
            raise SourceError("camera unplugged")
        index = self.index
        frame = super().read()
        if frame is not None:
            if self.still is not None:  # the same picture every frame (but for the stamp): nothing to re-infer
                frame.image[:] = self.still
            frame.image[0, 0, :2] = (index % 256, index // 256)
        return frame


def make_pipeline(source, segmenter, sinks, **kwargs) -> Pipeline:
    source.open()
    # transparent keeps every colour pixel, so the index stamped at (0, 0) reaches the sink
    background = parse_background("transparent")
    return Pipeline(source, segmenter, background, sinks, mask=MaskConfig(refine="none"), **kwargs)


class HeldSink(RecordingSink):
    """A sink that cannot keep up, made exact: after its first frame it waits until the test ``release``s it."""

    def __init__(self) -> None:
        super().__init__()
        self.holding = threading.Event()  # set while the first frame's write waits
        self.release = threading.Event()

    def write(self, frame: Frame) -> None:
        super().write(frame)
        if len(self.indices) == 1:
            self.holding.set()
            self.release.wait(EVENT_TIMEOUT_S)


class HeldModel:
    """Inference that cannot keep up with the camera, made exact: the first call waits for ``release``."""

    def __init__(self, inner) -> None:
        self.inner, self.contract = inner, inner.contract
        self.holding = threading.Event()
        self.release = threading.Event()

    def segment(self, batch: np.ndarray) -> np.ndarray:
        if not self.holding.is_set():
            self.holding.set()
            self.release.wait(EVENT_TIMEOUT_S)
        return self.inner.segment(batch)


def run_in_background(pipeline: Pipeline) -> tuple[threading.Thread, dict]:
    """``pipeline.run()`` on a thread; the dict receives its stats, or the error it raised."""
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["stats"] = pipeline.run()
        except BaseException as e:
            outcome["error"] = e

    runner = threading.Thread(target=run, name="pipeline-under-test", daemon=True)
    runner.start()
    return runner, outcome


def finished(runner: threading.Thread, outcome: dict) -> dict:
    runner.join(EVENT_TIMEOUT_S)
    assert not runner.is_alive(), "the pipeline did not finish"
    assert "error" not in outcome, outcome.get("error")
    return outcome["stats"]


def test_fast_live_source_into_slow_stage_drops_to_bound_latency(segmenter) -> None:
    stages, queue_slots = 5, 2
    source = CountingSource(width=160, height=120, fps=250.0, live=True)
    sink = HeldSink()
    pipeline = make_pipeline(source, segmenter, [sink], queue_size=queue_slots, max_frames=25)
    runner, outcome = run_in_background(pipeline)
    try:
        assert sink.holding.wait(EVENT_TIMEOUT_S), "no frame reached the sink"
        # the camera goes on while the output is stuck: far more frames than the pipeline has room for
        wait_until(
            lambda: pipeline.stats.frames_in >= 100 and sink.stats_seen,
            EVENT_TIMEOUT_S,
            "frames while the sink is held",
        )
        captured = pipeline.stats.frames_in  # frames numbered below this were read while the sink was held
    finally:
        sink.release.set()
    stats = finished(runner, outcome)
    assert stats["frames_out"] == 25 and len(sink.indices) == 25
    assert sink.indices == sorted(sink.indices)  # drops never reorder
    assert sink.stats_seen and {"frames_out", "dropped", "reconnects", "latency_ms"} <= set(sink.stats_seen[-1])
    # Latency is bounded in frames: once the sink goes on, only the frames that fit in the pipeline's slots
    # (a queue's and a stage's for each stage) are older than the release; every other one held up was dropped.
    held_up = [index for index in sink.indices[1:] if index < captured]
    assert len(held_up) <= stages * (queue_slots + 1), (held_up, captured)
    assert stats["dropped"] >= captured - 1 - stages * (queue_slots + 1)


def test_a_live_run_that_falls_behind_drops_frames_before_working_on_them(segmenter) -> None:
    source = CountingSource(width=160, height=120, fps=250.0, live=True)
    model = HeldModel(segmenter)
    pipeline = make_pipeline(source, model, [RecordingSink()], queue_size=2, max_frames=20)
    runner, outcome = run_in_background(pipeline)
    try:
        assert model.holding.wait(EVENT_TIMEOUT_S), "no frame reached the model"
        # more frames than the queue and the stage before the model hold
        wait_until(lambda: pipeline.stats.frames_in >= 20, EVENT_TIMEOUT_S, "frames while inference is held")
    finally:
        model.release.set()
    stats = finished(runner, outcome)
    assert stats["frames_out"] == 20 and stats["drops"]["queue:preprocess"] > 0  # dropped on the way in
    # never after preprocessing or inference: past the entrance the stages wait for each other
    assert stats["drops"]["queue:inference"] == 0 and stats["drops"]["queue:composite"] == 0


class LossySource(CountingSource):
    """A source that reports drops and reconnects of its own, as a network source does."""

    def counters(self) -> dict[str, int]:
        return {"dropped": 4, "reconnects": 1}


class LossySink(RecordingSink):
    """A sink that reports drops and reconnects of its own, as the RTSP output does."""

    def counters(self) -> dict[str, int]:
        return {"dropped": 2, "reconnects": 3}

    def describe(self) -> str:
        return "lossy"


def test_drops_and_reconnects_of_sources_and_sinks_reach_the_stats(segmenter) -> None:
    source = LossySource(width=64, height=48, frames=3)
    stats = make_pipeline(source, segmenter, [LossySink(), RecordingSink()]).run()
    assert stats["frames_out"] == 3 and stats["reconnects"] == 4
    assert stats["drops"]["lossy"] == 2 and stats["drops"][source.describe()] == 4
    assert stats["dropped"] == 6  # finite source: the queues themselves drop nothing


def test_finite_source_into_slow_stage_loses_nothing(segmenter) -> None:
    source = CountingSource(width=160, height=120, frames=30)
    sink = RecordingSink(delay_s=0.01)
    stats = make_pipeline(source, segmenter, [sink], queue_size=2).run()
    assert sink.indices == list(range(30)) and stats["dropped"] == 0


def test_sink_failure_stops_the_run_with_that_error(tmp_path: Path, segmenter) -> None:
    source = CountingSource(width=160, height=120, frames=100_000)
    recording = VideoFileSink(tmp_path / "partial.mkv", alpha=True)
    pipeline = make_pipeline(source, segmenter, [RecordingSink(fail_at=12), recording], batch_size=2)
    outcome: dict[str, BaseException] = {}
    runner = threading.Thread(target=lambda: outcome.setdefault("error", _raises(pipeline.run)))
    runner.start()
    runner.join(timeout=60)
    assert not runner.is_alive(), "the pipeline hung after a stage failed"
    assert isinstance(outcome["error"], RuntimeError) and str(outcome["error"]) == "disk on fire"
    assert len(decode(tmp_path / "partial.mkv")) >= 1  # the other sink was still finished properly


def test_source_failure_stops_the_run_and_keeps_the_file(tmp_path: Path, segmenter) -> None:
    written = threading.Event()  # the camera is unplugged once the recording holds a frame, not before
    recording = SignallingFileSink(tmp_path / "partial.mov", written, alpha=True)
    source = CountingSource(width=160, height=120, fail_at=8, fail_once=written)
    pipeline = make_pipeline(source, segmenter, [recording])
    with pytest.raises(SourceError, match="camera unplugged"):
        pipeline.run()
    assert 1 <= len(decode(tmp_path / "partial.mov")) <= 8


def _raises(function) -> BaseException | None:
    try:
        function()
    except BaseException as e:
        return e
    return None


def test_source_with_no_frames(tmp_path: Path, segmenter) -> None:
    with pytest.raises(SourceError, match="no frames"):
        make_pipeline(CountingSource(width=64, height=48, frames=0), segmenter, [RecordingSink()]).run()


def test_video_file_source_feeds_pipeline_api(stamped_clip: Path, segmenter) -> None:
    sink = RecordingSink()
    with VideoFileSource(stamped_clip) as source:
        stats = Pipeline(source, segmenter, parse_background("mask"), [sink], max_frames=10).run()
    assert len(sink.indices) == 10 and stats["frames_in"] == 10 and stats["frame_count"] == 10


class BatchSpy:
    """The real segmenter, noting the size of each batch it is given."""

    def __init__(self, segmenter) -> None:
        self.segmenter, self.contract, self.sizes = segmenter, segmenter.contract, []

    def segment(self, batch: np.ndarray) -> np.ndarray:
        self.sizes.append(len(batch))
        return self.segmenter.segment(batch)


def test_inference_batches_waiting_frames_and_keeps_order(segmenter) -> None:
    spy = BatchSpy(segmenter)
    sink = RecordingSink()
    stats = make_pipeline(CountingSource(width=160, height=120, frames=60), spy, [sink], batch_size=4).run()
    assert sink.indices == list(range(60)) and stats["frames_out"] == 60
    assert sum(spy.sizes) == 60 and max(spy.sizes) > 1 and max(spy.sizes) <= 4


def test_an_interval_infers_one_frame_in_n_and_still_writes_every_frame(segmenter) -> None:
    spy = BatchSpy(segmenter)
    sink = RecordingSink()
    source = CountingSource(width=160, height=120, frames=60, still=True)
    stats = make_pipeline(source, spy, [sink], interval=2).run()
    assert sink.indices == list(range(60)) and stats["frames_out"] == 60
    assert sum(spy.sizes) == 20 and stats["frames_inferred"] == 20  # frames 0, 3, 6, …


def test_frames_between_inferred_ones_get_no_mask_and_a_cut_is_inferred_at_once(segmenter) -> None:
    person, other = (Frame(cv2.imread(str(ASSETS / name)), BGR, 0) for name in ("astronaut.jpg", "grace_hopper.jpg"))
    infer = Infer(BatchSpy(segmenter), InferenceSchedule(interval=2))
    tensors = [infer.preprocess(frame) for frame in (person, person, other, other, other, other)]
    assert [t is not None for t in tensors] == [True, False, True, False, False, True]  # the cut does not wait
    masks = infer.masks(tensors)
    assert [m is None for m in masks] == [t is None for t in tensors]  # a skipped frame's matte follows the motion
    np.testing.assert_array_equal(masks[2], segmenter.segment(tensors[2][None])[0])
