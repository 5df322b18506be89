"""How closely Backdrop's masks agree with MediaPipe's own selfie-segmentation loop, per input resampling.

MediaPipe runs in its own interpreter (it pins numpy < 2, so it lives in a separate venv and never in
Backdrop's): this script re-runs itself there as a worker that returns MediaPipe's full-resolution masks
for the stills in backdrop/assets and the clip's frames, decoded by OpenCV on both sides (checked by hash).
Backdrop's side runs the same model's ONNX export on the contract's input, per resampling, from the RGB
frames and from their I420 twins (the clip's own decoded planes), and scales the mask back with bilinear
interpolation as MediaPipe's TensorsToSegmentationCalculator does. Neither side filters over time. It
also scores MediaPipe's masks with `backdrop eval --video`'s temporal metrics, can save them as a
reference folder, and times the preprocessing (median per 720p frame, BGR and I420, old and new
interleaved in one loop so machine load hits both alike).

    python -m backdrop.benchmarks.mediapipe_agreement --mediapipe-python .cache/mpvenv/bin/python \\
        --clip out/demo_input.mp4 --json out/mediapipe_agreement.json --save-masks out/mediapipe_masks

Set up the interpreter once with ``make mediapipe-env`` (MediaPipe's wheel in a venv of its own, .cache/mpvenv).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ASSETS = Path(__file__).resolve().parents[1] / "backdrop" / "assets"


def _read_bgr(path: Path) -> np.ndarray:
    image = cv2.imread(str(path))
    if image is None:
        raise OSError(f"cannot read image {path}")
    return image


def read_frames(stills: list[Path], clip: Path | None, max_frames: int) -> list[tuple[str, np.ndarray]]:
    """(name, RGB uint8) for every still and up to ``max_frames`` frames of the clip, decoded by OpenCV."""
    frames = [(p.name, cv2.cvtColor(_read_bgr(p), cv2.COLOR_BGR2RGB)) for p in stills]
    if clip is not None:
        capture = cv2.VideoCapture(str(clip))
        while len(frames) < len(stills) + max_frames:
            ok, bgr = capture.read()
            if not ok:
                break
            frames.append((f"{clip.name}#{len(frames) - len(stills)}", cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
        capture.release()
    return frames


def digest(image: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()


def mediapipe_worker(request: Path, out: Path) -> None:
    """Runs under MediaPipe's interpreter: its masks for the request's frames (model 0, general)."""
    import mediapipe as mp

    spec = json.loads(request.read_text())
    frames = read_frames([Path(p) for p in spec["stills"]], Path(spec["clip"]) if spec["clip"] else None, spec["max"])
    masks, digests = {}, []
    # one graph per still (no state carries between unrelated pictures), one for the whole clip
    for index, (_, rgb) in enumerate(frames):
        if index <= len(spec["stills"]):
            graph = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)
        masks[f"m{index}"] = graph.process(rgb).segmentation_mask.astype(np.float16)
        digests.append(digest(rgb))
    np.savez_compressed(out, **masks)
    out.with_suffix(".json").write_text(json.dumps({"mediapipe": mp.__version__, "digests": digests}))


def mediapipe_masks(python: str, stills: list[Path], clip: Path | None, max_frames: int) -> tuple[list, dict]:
    with tempfile.TemporaryDirectory() as tmp:
        request, out = Path(tmp) / "request.json", Path(tmp) / "masks.npz"
        request.write_text(json.dumps({"stills": [str(p) for p in stills], "clip": str(clip or ""), "max": max_frames}))
        subprocess.run([python, __file__, "--worker", str(request), str(out)], check=True, capture_output=True)
        with np.load(out) as data:
            masks = [data[f"m{i}"].astype(np.float32) for i in range(len(data.files))]
        return masks, json.loads(out.with_suffix(".json").read_text())


def i420_twins(frames: list, stills: int, clip: Path | None) -> list[np.ndarray]:
    """Each frame in I420 as Backdrop's file source would get it: the clip's own decoded planes (checked to be
    what FFmpeg turned into the RGB both sides saw), the stills converted by FFmpeg (PyAV)."""
    import av

    twins = [
        av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p").to_ndarray()
        for _, rgb in frames[:stills]
    ]
    if clip is not None:
        with av.open(str(clip)) as container:
            for decoded, (_, rgb) in zip(container.decode(video=0), frames[stills:], strict=False):
                if not np.array_equal(decoded.to_ndarray(format="rgb24"), rgb):
                    raise SystemExit(f"{clip}: PyAV and OpenCV decode frame {len(twins) - stills} differently")
                twins.append(decoded.to_ndarray(format="yuv420p"))
    return twins


def agreement(images: list[np.ndarray], layout: str, reference: list[np.ndarray], resampling: str) -> list[float]:
    """Per-frame IoU at 0.5 of the ONNX model's upsampled mask against MediaPipe's, from ``images`` in ``layout``."""
    from dataclasses import replace

    from backdrop.model.evaluation.temporal_metrics import iou
    from backdrop.model.segmenter import load_segmenter

    with load_segmenter("general", "onnxruntime", threads=1) as segmenter:
        contract = replace(segmenter.contract, resampling=resampling)
        scores = []
        for image, theirs in zip(images, reference, strict=True):
            mask = segmenter.segment(contract.to_model_input(image, layout)[None])[0]
            ours = cv2.resize(mask, (theirs.shape[1], theirs.shape[0]), interpolation=cv2.INTER_LINEAR)
            scores.append(iou(ours, theirs))
    return scores


def preprocessing_cost(frame_rgb: np.ndarray, repeats: int) -> dict[str, float]:
    """Median ms per 720p frame of the contract's preprocessing, each resampling and layout, interleaved."""
    from dataclasses import replace

    from backdrop.model.contract import resolve_model
    from backdrop.pixels import BGR, I420, bgr_to_i420

    bgr = cv2.resize(cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR), (1280, 720), interpolation=cv2.INTER_AREA)
    images = {BGR: bgr, I420: bgr_to_i420(bgr)}
    base = resolve_model("general").contract
    contracts = {r: replace(base, resampling=r) for r in ("resize", "mediapipe")}
    times: dict[str, list[float]] = {f"{r}_{layout}": [] for r in contracts for layout in images}
    for _ in range(repeats):
        for r, contract in contracts.items():
            for layout, image in images.items():
                start = time.perf_counter()
                contract.to_model_input(image, layout)
                times[f"{r}_{layout}"].append(time.perf_counter() - start)
    return {key: round(float(np.median(values)) * 1e3, 3) for key, values in times.items()}


def loop_metrics(masks: list[np.ndarray], save: Path | None) -> dict[str, float]:
    """The temporal matte metrics of MediaPipe's own masks over the clip, as `backdrop eval --video` computes them."""
    from backdrop.video_evaluation import EDGE_BAND, INTERIOR_MARGIN, MatteStats

    height = masks[0].shape[0]
    stats = MatteStats()
    for index, mask in enumerate(masks):
        stats.add(mask, max(1, round(EDGE_BAND * height)), max(1, round(INTERIOR_MARGIN * height)))
        if save is not None:
            save.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(save / f"{index:05d}.png"), np.round(np.clip(mask, 0, 1) * 255).astype(np.uint8))
    return stats.summary()


def summary(scores: list[float]) -> dict[str, float]:
    return {"mean": round(float(np.mean(scores)), 4), "min": round(float(np.min(scores)), 4), "frames": len(scores)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=2, type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--mediapipe-python", default=".cache/mpvenv/bin/python", help="an interpreter with mediapipe")
    parser.add_argument("--clip", type=Path, help="a video to compare frame by frame (e.g. out/demo_input.mp4)")
    parser.add_argument("--max-frames", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=300, help="timed preprocessing calls per variant")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--save-masks", type=Path, help="write MediaPipe's clip masks here (a --reference folder)")
    args = parser.parse_args(argv)
    if args.worker:
        mediapipe_worker(*args.worker)
        return 0
    stills = sorted(ASSETS.glob("*.jpg"))
    frames = read_frames(stills, args.clip, args.max_frames)
    reference, info = mediapipe_masks(args.mediapipe_python, stills, args.clip, args.max_frames)
    if info["digests"] != [digest(rgb) for _, rgb in frames]:
        raise SystemExit("MediaPipe's worker decoded different frames than this process: compare stills only")
    result: dict = {"mediapipe": info["mediapipe"], "model": "general (ONNX)", "iou": {}}
    inputs = {"rgb": [rgb for _, rgb in frames], "i420": i420_twins(frames, len(stills), args.clip)}
    for layout, resampling in itertools.product(inputs, ("resize", "mediapipe")):
        scores = agreement(inputs[layout], layout, reference, resampling)
        result["iou"][f"{resampling}_{layout}"] = {
            "stills": {name: round(s, 4) for (name, _), s in zip(frames, scores[: len(stills)], strict=False)},
            **({"clip": summary(scores[len(stills) :])} if args.clip else {}),
        }
    if args.clip:
        result["mediapipe_loop_temporal"] = loop_metrics(reference[len(stills) :], args.save_masks)
    result["preprocess_ms_720p"] = preprocessing_cost(frames[-1][1], args.repeats)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
