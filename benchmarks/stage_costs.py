"""Per-stage cost at each resolution, timed one step at a time: the very steps the pipeline's threads call.

Stages: decode (PyAV file source), preprocess (the model contract's), inference (one frame), the raw matte
and the default one (edge refinement and motion-aware filter), compositing for every background mode, and
H.264 encoding (the file sink). Each cost is also given as a ratio to inference, measured in the same run. Frames are in
the layout a file → file run uses: I420, except for the backgrounds that compose BGR only.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import cv2

from backdrop.benchmarks.inputs import demo_clip
from backdrop.benchmarks.timing import summarize_ms, time_calls
from backdrop.errors import SourceError
from backdrop.model.segmenter import Segmenter
from backdrop.pixels import BGR, I420
from backdrop.stream.compositing.backgrounds import parse_background
from backdrop.stream.compositing.matte import MatteMaker
from backdrop.stream.config.run import EncoderConfig, MaskConfig
from backdrop.stream.core.frame import Frame
from backdrop.stream.core.steps import Infer, conform
from backdrop.stream.sinks.video_file import VideoFileSink
from backdrop.stream.sources.video_file import VideoFileSource

# Background modes; "image" and "video" are filled in with generated files at run time.
BACKGROUNDS = ("blur:21", "color:#00b140", "image", "video", "transparent", "mask")
BASELINE_STAGE = "inference"
ENCODER_FRAMES = 16  # distinct frames the encoder cycles through


@dataclass(frozen=True)
class StagePlan:
    """Resolutions (label, width, height) to time, and untimed/timed calls per stage."""

    resolutions: tuple[tuple[str, int, int], ...]
    warmup: int = 5
    repeats: int = 50

    @property
    def stages(self) -> int:
        return 6 + len(BACKGROUNDS)  # decode, preprocess, inference, two mattes, encode + one per background

    @property
    def cells(self) -> int:
        return len(self.resolutions) * self.stages


def _background_spec(mode: str, folder: Path, clip: Path) -> str:
    """The spec string for one background mode; image and video modes point at generated files."""
    if mode == "image":
        from backdrop.stream.sources.demo_clip import room

        path = folder / "backdrop.jpg"
        if not path.is_file():
            cv2.imwrite(str(path), room(960, 540))
        return str(path)
    if mode == "video":
        return str(clip)
    return mode


class _LoopingDecoder:
    """Each call decodes the clip's next frame, starting over at its end (the clip may be short)."""

    def __init__(self, clip: Path) -> None:
        self.clip = clip
        self.source: VideoFileSource | None = None

    def __call__(self) -> Frame:
        frame = self.source.read() if self.source else None
        if frame is None:
            self.close()
            self.source = VideoFileSource(self.clip)
            self.source.open()
            frame = self.source.read()
            if frame is None:
                raise SourceError(f"{self.clip} has no decodable frames")
        return frame

    def close(self) -> None:
        if self.source is not None:
            self.source.close()


def _read(source: VideoFileSource) -> Frame:
    frame = source.read()
    if frame is None:
        raise SourceError(f"{source.describe()} ended early")
    return frame


def _stage_calls(
    frames: list[Frame], clip: Path, folder: Path, segmenter: Segmenter
) -> Iterator[tuple[str, Callable[[], object]]]:
    """(stage name, one call of that stage's step) for the first of ``frames``, in pipeline order.

    The encoder gets the frames in turn: fed one frame over and over, x264 would only code empty differences.
    """
    frame = frames[0]
    width, height = frame.size
    decode = _LoopingDecoder(clip)
    try:
        yield "decode", decode
    finally:
        decode.close()
    infer = Infer(segmenter)
    yield "preprocess", lambda: infer.preprocess(frame)
    tensors = [infer.preprocess(frame)]
    yield BASELINE_STAGE, lambda: infer.masks(tensors)
    mask = infer.masks(tensors)[0]
    plain = MatteMaker(MaskConfig(refine="none", temporal="none"), width, height, I420)
    yield "matte (refine none)", lambda: plain.matte(mask, frame.image, None)
    refined = MatteMaker(MaskConfig(), width, height, I420)
    state = refined.matte(mask, frame.image, None)[1]  # the temporal filter runs only with a previous frame
    yield "matte (edge + motion)", lambda: refined.matte(mask, frame.image, state)
    for mode in BACKGROUNDS:
        background = parse_background(_background_spec(mode, folder, clip))
        layout = I420 if I420 in background.layouts else BGR
        background.open(width, height, layout)
        compose_frame = conform(frame, layout)
        matte, _ = MatteMaker(MaskConfig(), width, height, layout).matte(mask, compose_frame.image, None)
        try:
            yield f"composite {mode}", partial(background.compose, compose_frame.image, matte)
        finally:
            background.close()
    sink = VideoFileSink(folder / f"encode_{width}x{height}.mp4", encoder=EncoderConfig())
    sink.open(width, height, 30.0)
    moving = itertools.cycle(frames)
    try:
        yield "encode", lambda: sink.write(next(moving))
    finally:
        sink.close()


def measure_stages(
    plan: StagePlan, segmenter: Segmenter, *, work_dir: Path | None = None, on_row: Callable[[dict], None] = print
) -> dict[str, Any]:
    """The stage section of a benchmark result: one row per (resolution, stage) with ms and × inference."""
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(dir=work_dir) as scratch:
        folder = Path(scratch)
        for label, width, height in plan.resolutions:
            clip = demo_clip(folder, width, height, frames=plan.warmup + plan.repeats + 1)
            with VideoFileSource(clip) as source:
                frames = [_read(source) for _ in range(min(ENCODER_FRAMES, plan.repeats))]
            for name, call in _stage_calls(frames, clip, folder, segmenter):
                samples = time_calls(call, warmup=plan.warmup, repeats=plan.repeats)
                row = {
                    "resolution": label,
                    "size": f"{width}x{height}",
                    "stage": name,
                    "ms": summarize_ms(samples.wall),
                    "cpu_ms": samples.cpu_ms(),
                }
                rows.append(row)
                on_row(row)
    add_ratios(rows)
    return {
        "baseline": BASELINE_STAGE,
        "runtime": segmenter.name,
        "threads": segmenter.threads,
        "settings": {"warmup": plan.warmup, "repeats": plan.repeats},
        "rows": rows,
    }


def add_ratios(rows: Sequence[dict[str, Any]]) -> None:
    """``ratio``: each stage's median ÷ inference's median at the same resolution (cost in units of inference)."""
    reference = {r["resolution"]: r["ms"]["median"] for r in rows if r["stage"] == BASELINE_STAGE}
    for row in rows:
        base = reference.get(row["resolution"])
        row["ratio"] = round(row["ms"]["median"] / base, 3) if base else None
