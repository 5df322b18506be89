"""Per-stage cost at each resolution, timed one step at a time: the very steps the pipeline's threads call.

Stages: decode (PyAV file source), preprocess (the model contract's), inference (one frame), the raw matte,
the motion step on its own (flow + warp), the default matte (edge refinement and motion-aware filter, its
temporal state carried from call to call), compositing for every background mode, and H.264 encoding (the file
sink). Each cost is also given as a ratio to inference, measured in the same run. Frames are in the layout a
file → file run uses: I420, except for the backgrounds that compose BGR only. The steps that follow the motion
walk the clip's consecutive frames (which move: the person sways, the room drifts) forth and back.
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
import numpy as np

from backdrop.benchmarks.inputs import demo_clip
from backdrop.benchmarks.timing import summarize_ms, time_calls
from backdrop.errors import SourceError
from backdrop.model.segmenter import Segmenter
from backdrop.pixels import BGR, I420
from backdrop.stream.compositing.backgrounds import parse_background
from backdrop.stream.compositing.matte import MatteMaker
from backdrop.stream.compositing.temporal import TemporalState
from backdrop.stream.config.run import EncoderConfig, MaskConfig
from backdrop.stream.core.frame import Frame
from backdrop.stream.core.steps import Infer, conform
from backdrop.stream.sinks.video_file import VideoFileSink
from backdrop.stream.sources.video_file import VideoFileSource

# Background modes; "image" and "video" are filled in with generated files at run time.
BACKGROUNDS = ("blur:21", "color:#00b140", "image", "video", "transparent", "mask")
BASELINE_STAGE = "inference"
ENCODER_FRAMES = 16  # distinct frames the encoder and the motion steps cycle through
FLOW_STAGE = "flow + warp"
DEFAULT_MATTE_STAGE = "matte (edge + motion)"


def pipeline_stages(background: str) -> tuple[str, ...]:
    """The stages a file → file run with ``background`` goes through, each frame once (the motion step is part of
    the default matte), as named in this section's rows."""
    return ("decode", "preprocess", BASELINE_STAGE, DEFAULT_MATTE_STAGE, f"composite {background}", "encode")


@dataclass(frozen=True)
class StagePlan:
    """Resolutions (label, width, height) to time, and untimed/timed calls per stage."""

    resolutions: tuple[tuple[str, int, int], ...]
    warmup: int = 5
    repeats: int = 50

    @property
    def stages(self) -> int:
        # decode, preprocess, inference, two mattes, flow + warp, encode + one per background
        return 7 + len(BACKGROUNDS)

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


def _back_and_forth(count: int) -> Iterator[int]:
    """0, 1, …, count - 1, count - 2, …, 1, 0, 1, … forever: each index next to the one before it, so every step
    is one frame's motion (a jump from the last frame back to the first could count as a cut and skip the flow)."""
    return itertools.cycle([*range(count), *range(count - 2, 0, -1)] if count > 1 else [0])


class _CarriedMatte:
    """Each call makes the next frame's matte from the state the call before returned, as a stream does."""

    def __init__(self, maker: MatteMaker, frames: Sequence[Frame], masks: Sequence[np.ndarray | None]) -> None:
        self.maker, self.frames, self.masks = maker, frames, masks
        self.order = _back_and_forth(len(frames))
        self.state: TemporalState | None = None
        self()  # from the second call on, there is a previous frame to follow

    def __call__(self) -> object:
        index = next(self.order)
        matte, self.state = self.maker.matte(self.masks[index], self.frames[index].image, self.state)
        return matte


class _FlowAndWarp:
    """Each call moves one frame's temporal state to the frame after (or before) it: TemporalFilter.follow, i.e.
    the flow's maps between the two working-size lumas, the warp of the previous luma and the residual against
    it, and the warps of the previous matte and mask. The states are the default matte's, carried along the clip."""

    def __init__(self, maker: MatteMaker, frames: Sequence[Frame], masks: Sequence[np.ndarray | None]) -> None:
        if len(frames) < 2:
            raise ValueError("the flow needs two frames")
        self.temporal = maker.temporal
        self.lumas = [maker.guide(frame.image) for frame in frames]
        carried = _CarriedMatte(maker, frames, masks)  # its first call made frame 0's state
        self.states = [carried.state]
        for _ in frames[1:]:
            carried()
            self.states.append(carried.state)
        self.order = _back_and_forth(len(frames))
        self.previous = next(self.order)
        for current in range(1, len(frames)):  # each step below must run the flow: no cut, no missing state
            for before, after in ((current - 1, current), (current, current - 1)):
                if self.temporal.follow(self.lumas[after], self.states[before], fresh=True) is None:
                    raise RuntimeError(f"frames {before} → {after} of the clip do not run the flow")

    def __call__(self) -> object:
        current = next(self.order)
        followed = self.temporal.follow(self.lumas[current], self.states[self.previous], fresh=True)
        self.previous = current
        return followed


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
    So do the steps that follow the motion (each with the model's mask of its frame): between a frame and itself,
    the flow would find nothing to follow.
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
    masks = [infer.masks([infer.preprocess(each)])[0] for each in frames]
    mask = masks[0]
    plain = MatteMaker(MaskConfig(refine="none", temporal="none"), width, height, I420)
    yield "matte (refine none)", lambda: plain.matte(mask, frame.image, None)
    yield FLOW_STAGE, _FlowAndWarp(MatteMaker(MaskConfig(), width, height, I420), frames, masks)
    # The default matte of a stream: working-size luma, mask resize, edge refinement, flow + warp of the previous
    # state (the row above), the motion-aware blend, feathering and the snap; the state carried between calls.
    yield DEFAULT_MATTE_STAGE, _CarriedMatte(MatteMaker(MaskConfig(), width, height, I420), frames, masks)
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
                frames = [_read(source) for _ in range(max(2, min(ENCODER_FRAMES, plan.repeats)))]
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
