"""Clean edges (``mask.clean_edges``): how much of the old wall the edge band keeps, and what it costs.

Each bundled photo's person is cut out (benchmarks/motion_clips.Cutout) and put in front of a saturated red
wall; Backdrop's default matte (the real model) composites the frame onto green, with the band's colours
estimated (``clean_edges: true``) and as the plain blend (``false``). The right answer is known:
``α·F + (1 − α)·N`` with the cut-out's own alpha and colours and the new background N. Reported per photo: the
mean colour error against it inside the band (0.02 < our alpha < 0.98; it includes where our matte differs
from the cut-out's), the wall's red left there (R − G above the right answer's), for BGR and I420 frames, on
the blur backdrop (the old background blurred) too, and the same with more opaque edges (``gamma: 0.5``;
``levels_high: 0.6``) — the opacity defaults the README weighs. Then the compositing time per frame with and
without, interleaved, at 480p, 720p and 1080p.

    python -m backdrop.benchmarks.clean_edges --json benchmarks/results/clean_edges.json --sheet out/hair.jpg
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from backdrop.allocator import keep_freed_memory
from backdrop.benchmarks.machine import cpu_model
from backdrop.benchmarks.motion_clips import ASSETS, Cutout
from backdrop.benchmarks.report import publish
from backdrop.model.segmenter import Segmenter, load_segmenter
from backdrop.pixels import BGR, I420, bgr_to_i420, i420_to_bgr
from backdrop.stream.compositing.backgrounds import Background, Replacement, parse_background
from backdrop.stream.compositing.blend import Matte
from backdrop.stream.compositing.matte import MatteMaker
from backdrop.stream.config.run import MaskConfig

WALL = (40, 30, 220)  # BGR: a saturated red
GREEN = "color:#00b140"
SIZES = {"480p": (854, 480), "720p": (1280, 720), "1080p": (1920, 1080)}
OPACITY = {"default": MaskConfig(), "gamma 0.5": MaskConfig(gamma=0.5), "levels_high 0.6": MaskConfig(levels_high=0.6)}
VARIANTS = [  # (background, layout, opacity): every opacity on green in both layouts, and the blur backdrop
    *((GREEN, layout, opacity) for layout in (BGR, I420) for opacity in OPACITY),
    ("blur:21", I420, "default"),
]


def scene(segmenter: Segmenter, photo: str, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frame, true alpha, true person colours) of the photo's person in front of the red wall."""
    width, height = size
    side = round(height * 0.95)
    cutout = Cutout(ASSETS / photo, side, segmenter)
    alpha = np.zeros((height, width), np.float32)
    person = np.zeros((height, width, 3), np.float32)
    x0, y0 = (width - side) // 2, height - side
    alpha[y0:, x0 : x0 + side] = cutout.alpha
    person[y0:, x0 : x0 + side] = cutout.image
    a = alpha[..., None]
    frame = np.clip(a * person + (1 - a) * np.array(WALL, np.float32), 0, 255).astype(np.uint8)
    return frame, alpha, person


def composite(
    segmenter: Segmenter, frame: np.ndarray, mask: MaskConfig, layout: str, spec: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(BGR composite onto ``spec``, the backdrop it went onto (BGR), our full-size alpha) of ``frame``."""
    height, width = frame.shape[:2]
    image = bgr_to_i420(frame) if layout == I420 else frame
    model = segmenter.segment(segmenter.contract.to_model_input(image, layout)[None])[0]
    matte = MatteMaker(mask, width, height, layout).matte(model, image, None)[0]
    background = parse_background(spec)
    background.open(width, height, layout)
    assert isinstance(background, Replacement)
    plate = background.backdrop(image).copy()
    out = background.compose(image, matte)
    as_bgr = (lambda picture: i420_to_bgr(picture)) if layout == I420 else (lambda picture: picture)
    return as_bgr(out), as_bgr(plate), matte.full()


def leftovers(segmenter: Segmenter, photo: str) -> dict[str, Any]:
    frame, alpha, person = scene(segmenter, photo, SIZES["720p"])
    a = alpha[..., None]
    rows: dict[str, Any] = {}
    for spec, layout, opacity in VARIANTS:
        row: dict[str, Any] = {}
        for clean in (True, False):
            mask = dataclasses.replace(OPACITY[opacity], clean_edges=clean)
            out, plate, ours = composite(segmenter, frame, mask, layout, spec)
            ideal = a * person + (1 - a) * plate.astype(np.float32)  # the person over what it went onto
            band = (ours > 0.02) & (ours < 0.98)
            error = np.abs(out.astype(np.float32) - ideal)[band].mean()
            red = ((out[..., 2].astype(np.float32) - out[..., 1]) - (ideal[..., 2] - ideal[..., 1]))[band].mean()
            row["clean" if clean else "plain"] = {"error": round(float(error), 2), "red_left": round(float(red), 2)}
        row["red_ratio"] = round(row["clean"]["red_left"] / row["plain"]["red_left"], 3)
        rows[f"{spec} {layout} {opacity}"] = row
    return rows


def compose_ms(segmenter: Segmenter, size: tuple[int, int], layout: str, repeats: int) -> dict[str, float]:
    """Median compositing milliseconds per frame onto green, with and without clean edges (interleaved)."""
    frame, _, _ = scene(segmenter, "astronaut.jpg", size)
    image = bgr_to_i420(frame) if layout == I420 else frame
    model = segmenter.segment(segmenter.contract.to_model_input(image, layout)[None])[0]
    backgrounds: dict[bool, Background] = {}
    mattes: dict[bool, Matte] = {}
    times: dict[bool, list[float]] = {}
    for clean in (True, False):
        mattes[clean] = MatteMaker(MaskConfig(clean_edges=clean), *size, layout).matte(model, image, None)[0]
        backgrounds[clean] = parse_background(GREEN)
        backgrounds[clean].open(*size, layout)
        times[clean] = []
    for _ in range(repeats):
        for clean in (True, False):
            started = time.perf_counter()
            backgrounds[clean].compose(image, mattes[clean])
            times[clean].append((time.perf_counter() - started) * 1000)
    clean_ms, plain_ms = (statistics.median(times[clean]) for clean in (True, False))
    return {"clean": round(clean_ms, 3), "plain": round(plain_ms, 3), "added": round(clean_ms - plain_ms, 3)}


def hair_sheet(segmenter: Segmenter, path: Path) -> None:
    """Before/after crops of the astronaut's hair on green: the plain blend | clean edges."""
    frame, _, _ = scene(segmenter, "astronaut.jpg", SIZES["720p"])
    crops = []
    for clean in (False, True):
        out, _, _ = composite(segmenter, frame, MaskConfig(clean_edges=clean), BGR, GREEN)
        crop = cv2.resize(out[40:250, 480:800], (480, 315), interpolation=cv2.INTER_CUBIC)
        title = "clean edges (default)" if clean else "plain blend"
        cv2.putText(crop, title, (10, 26), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2, cv2.LINE_AA)
        crops.append(crop)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.hstack([crops[0], np.full((315, 8, 3), 255, np.uint8), crops[1]]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=60, help="timed compositions per variant and size")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--sheet", type=Path, help="before/after crops of hair on green (.jpg)")
    args = parser.parse_args(argv)
    keep_freed_memory()  # as the command line does: the timings are the product's
    with load_segmenter("general", "onnxruntime", threads=1) as segmenter:
        result = {
            "machine": cpu_model(),
            "date": time.strftime("%Y-%m-%d"),
            "wall": "BGR " + ", ".join(map(str, WALL)),
            "leftovers": {photo: leftovers(segmenter, photo) for photo in ("grace_hopper.jpg", "astronaut.jpg")},
            "compose_ms": {
                f"{name} {layout}": compose_ms(segmenter, size, layout, args.repeats)
                for name, size in SIZES.items()
                for layout in (BGR, I420)
            },
        }
        if args.sheet:
            hair_sheet(segmenter, args.sheet)
    publish(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
