"""Motion-compensated mattes against MediaPipe's loop and against our own interval 0, on clips with known motion.

The clips (benchmarks/motion_clips.py) are written losslessly and scored by `backdrop eval --video`'s own code
(backdrop/video_evaluation.py), so every figure is one a user can reproduce on footage of their own:

* still person under camera noise (σ 6 and σ 14, a dim webcam): edge-band flicker, soft edge width and
  see-through of the default matte, against MediaPipe's loop on the same decoded frames (its masks, from its
  own interpreter: ``make mediapipe-env``) — flicker and width as ratios;
* the camera panning across a still person: pixels where the matte and the frame's own matte differ by more
  than 0.5 (a lagging or ghost edge), as a share of the frame;
* a person moving across the frame, three shots with hard cuts: IoU with the frame's own matte on the first
  frame after each cut; ``model.interval: 1`` against interval 0 (IoU mean and worst, dtSSD) and the CPU time
  per frame of the whole per-frame work (preprocess, inference, matte, composite) at each;
* a mostly still talking head: ``model.interval: auto`` — how many frames it infers, and its IoU against
  interval 0;
* the default matte's time per frame (flow included) at the clip size.

    python -m backdrop.benchmarks.matte_motion --json out/matte_motion.json --sheet out/edges.jpg [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any, Literal

import av
import cv2
import numpy as np

from backdrop.benchmarks.machine import cpu_model
from backdrop.benchmarks.mediapipe_agreement import mediapipe_masks
from backdrop.benchmarks.motion_clips import MotionClip, Shot
from backdrop.benchmarks.report import publish
from backdrop.model.evaluation import temporal_metrics as tm
from backdrop.model.evaluation.contact_sheet import EdgeCrops
from backdrop.model.segmenter import Segmenter, load_segmenter
from backdrop.pixels import BGR
from backdrop.stream.compositing.backgrounds import parse_background
from backdrop.stream.compositing.matte import MatteMaker
from backdrop.stream.config.run import MaskConfig, ModelConfig, RunConfig
from backdrop.stream.core.frame import Frame
from backdrop.stream.core.schedule import InferenceSchedule
from backdrop.stream.core.steps import Compositor, FrameSteps, Infer
from backdrop.video_evaluation import EDGE_BAND, MatteChain, evaluate_video

SHEET_CLIP = "astronaut σ14"  # the clip whose edges the contact sheet shows: hair, under a dim webcam's noise


def config(interval: int | Literal["auto"] = 0) -> RunConfig:
    return dataclasses.replace(RunConfig(), model=ModelConfig(runtime="onnxruntime", interval=interval))


def decoded(path: Path) -> Iterator[np.ndarray]:
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="bgr24")


def still_noise(
    folder: Path, segmenter: Segmenter, size: tuple[int, int], frames: int, mediapipe: str | None, sheet: Path | None
) -> dict[str, Any]:
    """Flicker, edge width and see-through of the default matte on still people under noise, against MediaPipe."""
    results = {}
    for noise in (6.0, 14.0):
        shots = [Shot(photo, "still", frames, noise=noise) for photo in ("grace_hopper.jpg", "astronaut.jpg")]
        for shot in shots:
            name = f"{shot.photo.split('.')[0]} σ{noise:g}"
            clip = MotionClip([shot], *size, segmenter).write(folder / f"still_{name.replace(' ', '_')}.mp4")
            drawn = sheet is not None and mediapipe is not None and name == SHEET_CLIP
            report = evaluate_video(clip, config(), sheet=folder / "ours.png" if drawn else None)
            row: dict[str, Any] = {"ours": report["matte"], "unfiltered": report["unfiltered"]}
            if mediapipe:
                masks, _ = mediapipe_masks(mediapipe, [], clip, frames)
                if drawn and sheet is not None:
                    side_by_side(folder / "ours.png", edge_sheet(clip, masks, folder / "mediapipe.png"), sheet)
                band = max(1, round(EDGE_BAND * size[1]))
                theirs = {
                    "edge_flicker": float(np.mean([tm.edge_flicker(a, b, band) for a, b in itertools.pairwise(masks)])),
                    "soft_edge_width_px": float(np.mean([tm.soft_edge_width(m) for m in masks])),
                }
                row["mediapipe"] = theirs
                row["flicker_ratio"] = round(report["matte"]["edge_flicker"] / theirs["edge_flicker"], 3)
                row["width_ratio"] = round(report["matte"]["soft_edge_width_px"] / theirs["soft_edge_width_px"], 3)
            results[name] = row
    return results


def edge_sheet(clip: Path, masks: list[np.ndarray], path: Path) -> Path:
    """`eval --video`'s contact sheet of ``clip`` drawn with ``masks`` (MediaPipe's) instead of our matte."""
    crops = EdgeCrops()
    for index, (image, mask) in enumerate(zip(decoded(clip), masks, strict=False)):
        crops.offer(index, partial(list, (image,)), mask)  # one version of each frame: its own picture
    return crops.write(path)


def side_by_side(left: Path, right: Path, out: Path) -> None:
    """Two contact sheets next to each other under their names, a white gap between: ours | MediaPipe's loop."""
    sheets = []
    for path, title in ((left, "Backdrop (default matte)"), (right, "MediaPipe's loop")):
        sheet = cv2.imread(str(path))
        if sheet is None:
            raise OSError(f"cannot read {path}")
        header = np.full((28, sheet.shape[1], 3), 255, np.uint8)
        cv2.putText(header, title, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
        sheets.append(np.vstack([header, sheet]))
    gap = np.full((sheets[0].shape[0], 16, 3), 255, np.uint8)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), np.hstack([sheets[0], gap, sheets[1]]), [cv2.IMWRITE_JPEG_QUALITY, 85])


def panning(folder: Path, segmenter: Segmenter, size: tuple[int, int], frames: int) -> dict[str, Any]:
    clip = MotionClip([Shot("grace_hopper.jpg", "pan", frames)], *size, segmenter).write(folder / "pan.mp4")
    report = evaluate_video(clip, config())
    area = size[0] * size[1]
    return {
        "confident_disagreement": round(report["ghosting"]["pixels_per_frame"] / area, 5),
        "worst_frame": round(report["ghosting"]["worst_pixels"] / area, 5),
        "iou_with_own_matte": report["against_unfiltered"]["iou_mean"],
    }


def cpu_per_frame(path: Path, segmenter: Segmenter, size: tuple[int, int], interval: int | Literal["auto"]) -> float:
    """CPU milliseconds per frame of every per-frame step over the clip, in this process (sequential)."""
    infer = Infer(segmenter, InferenceSchedule(interval))
    background = parse_background("color:#00ff00")
    background.open(*size, BGR)
    steps = FrameSteps(infer, Compositor(MaskConfig(), background, *size, BGR, propagate=infer.skips), BGR)
    frames = list(decoded(path))
    started = time.process_time()
    for index, image in enumerate(frames):
        steps(Frame(image, BGR, index))
    return (time.process_time() - started) * 1000 / len(frames)


def steadiness(path: Path, segmenter: Segmenter, size: tuple[int, int]) -> list[float]:
    """Per frame, the IoU of the model's own matte (no filter) with the previous frame's: how much the model
    itself changes its mind (1.0 for the first frame). No interval can follow a change the model was not asked."""
    chain = MatteChain(MaskConfig(temporal="none"), size, BGR)
    ious, previous = [], None
    for image in decoded(path):
        alpha = chain(segmenter.segment(segmenter.contract.to_model_input(image)[None])[0], image)
        ious.append(1.0 if previous is None else tm.iou(alpha, previous))
        previous = alpha
    return ious


def moving(folder: Path, segmenter: Segmenter, size: tuple[int, int], frames: int) -> dict[str, Any]:
    shots = [
        Shot("grace_hopper.jpg", "moving", frames),
        Shot("astronaut.jpg", "moving", frames, room_offset=0.5),
        Shot("grace_hopper.jpg", "moving", frames, room_offset=1.2),
    ]
    clip = MotionClip(shots, *size, segmenter)
    path = clip.write(folder / "moving.mp4")
    every = evaluate_video(path, config(0))
    one = evaluate_video(path, config(1))
    own = every["against_unfiltered"]["per_frame"]
    own_steadiness = steadiness(path, segmenter, size)
    agreement = one["against_interval_0"]
    cpu: dict[int, list[float]] = {0: [], 1: []}
    for _ in range(3):  # interleaved, so machine load hits both alike
        for interval in cpu:
            cpu[interval].append(cpu_per_frame(path, segmenter, size, interval))
    cpu_ms = {interval: statistics.median(values) for interval, values in cpu.items()}
    shots_at = [0, *clip.cuts, len(clip)]
    per_shot = [
        {
            "photo": shot.photo,
            "interval_1_iou_min": min(agreement["per_frame"][start:end]),
            "model_own_iou_min": round(min(own_steadiness[start + 1 : end]), 4),
        }
        for shot, start, end in zip(shots, shots_at, shots_at[1:], strict=False)
    ]
    return {
        "frames": len(clip),
        "cuts": clip.cuts,
        "first_frame_after_cut_iou": [own[cut] for cut in clip.cuts],
        "interval_0": {"edge_flicker": every["matte"]["edge_flicker"], "frames_inferred": every["frames_inferred"]},
        "interval_1": {
            "iou_mean": agreement["iou_mean"],
            "iou_min": agreement["iou_min"],
            "iou_at_cuts": [agreement["per_frame"][cut] for cut in clip.cuts],
            "dtssd": agreement["dtssd"],
            "frames_inferred": one["frames_inferred"],
        },
        "per_shot": per_shot,
        "cpu_ms_per_frame": {f"interval_{k}": round(v, 2) for k, v in cpu_ms.items()},
        "cpu_ratio_interval_1": round(cpu_ms[1] / cpu_ms[0], 3),
    }


def talking(folder: Path, segmenter: Segmenter, size: tuple[int, int], frames: int) -> dict[str, Any]:
    shots = [Shot("grace_hopper.jpg", "talking", frames), Shot("astronaut.jpg", "talking", frames, room_offset=0.6)]
    clip = MotionClip(shots, *size, segmenter)
    path = clip.write(folder / "talking.mp4")
    auto = evaluate_video(path, config("auto"))
    return {
        "frames": len(clip),
        "frames_inferred": auto["frames_inferred"],
        "inferred_share": round(auto["frames_inferred"] / len(clip), 3),
        "iou_mean": auto["against_interval_0"]["iou_mean"],
        "iou_min": auto["against_interval_0"]["iou_min"],
        "dtssd": auto["against_interval_0"]["dtssd"],
    }


def matte_cost(path: Path, segmenter: Segmenter, size: tuple[int, int]) -> dict[str, float]:
    """Median milliseconds per frame of the default matte (flow included) and of the matte without a filter."""
    frames = list(decoded(path))[:60]
    contract = segmenter.contract
    masks = [segmenter.segment(contract.to_model_input(image)[None])[0] for image in frames]
    makers = {"default": MatteMaker(MaskConfig(), *size), "no_filter": MatteMaker(MaskConfig(temporal="none"), *size)}
    times: dict[str, list[float]] = {name: [] for name in makers}
    states: dict[str, Any] = dict.fromkeys(makers)
    for mask, image in zip(masks, frames, strict=True):
        for name, maker in makers.items():  # interleaved
            started = time.perf_counter()
            _, states[name] = maker.matte(mask, image, states[name])
            times[name].append((time.perf_counter() - started) * 1000)
    return {name: round(statistics.median(values), 3) for name, values in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--mediapipe-python", default=".cache/mpvenv/bin/python", help="an interpreter with mediapipe ('' for none)"
    )
    parser.add_argument("--quick", action="store_true", help="short clips (a smoke run, not a measurement)")
    parser.add_argument("--size", default="1280x720", help="WIDTHxHEIGHT of the clips")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--sheet", type=Path, help=f"edge crops of the {SHEET_CLIP} clip, ours | MediaPipe's (.jpg)")
    args = parser.parse_args(argv)
    mediapipe = args.mediapipe_python if args.mediapipe_python and Path(args.mediapipe_python).exists() else None
    if mediapipe is None:
        print(f"no MediaPipe interpreter at {args.mediapipe_python}: its columns are left out", file=sys.stderr)
    width, height = (int(side) for side in args.size.split("x"))
    size = (width, height)
    still_frames, shot_frames = (8, 12) if args.quick else (60, 100)
    with tempfile.TemporaryDirectory() as tmp, load_segmenter("general", "onnxruntime", threads=1) as segmenter:
        folder = Path(tmp)
        result = {
            "machine": cpu_model(),
            "date": time.strftime("%Y-%m-%d"),
            "size": args.size,
            "still": still_noise(folder, segmenter, size, still_frames, mediapipe, args.sheet),
            "pan": panning(folder, segmenter, size, still_frames),
            "moving": moving(folder, segmenter, size, shot_frames),
            "talking": talking(folder, segmenter, size, shot_frames + shot_frames // 2),
        }
        result["matte_ms_per_frame"] = matte_cost(folder / "moving.mp4", segmenter, size)
    publish(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
