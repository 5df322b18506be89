"""What `backdrop eval` shows: a table for people, JSON for scripts, overlays of the worst images.

An overlay colours each pixel by its outcome — green: person found, red: background taken for person,
blue: person missed — over a dimmed copy of the image, with the name and scores in a caption strip.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from backdrop.model.evaluation.evaluate import METRICS, EvalReport, Evaluator, SampleResult
from backdrop.model.evaluation.metrics import binary
from backdrop.model.training.layout import read_pair

METRIC_LABELS = {
    "iou": "IoU",
    "dice": "Dice / F1",
    "precision": "precision",
    "recall": "recall",
    "boundary_f": "boundary F",
    "mae": "alpha MAE (lower is better)",
}
OUTCOME_COLOURS = {"hit": (0, 200, 0), "false_alarm": (230, 30, 30), "miss": (40, 90, 255)}  # RGB
CAPTION_HEIGHT = 28


def format_table(report: EvalReport) -> str:
    """Mean, median and worst value of each metric, then one row per clip."""
    lines = [f"model {report.model} on {report.runtime}: {len(report.samples)} images from {report.data}", ""]
    lines.append(f"{'metric':30} {'mean':>8} {'median':>8} {'worst':>8}")
    for metric in METRICS:
        values = np.array([getattr(s.scores, metric) for s in report.samples])
        worst = values.max() if metric == "mae" else values.min()
        lines.append(f"{METRIC_LABELS[metric]:30} {values.mean():8.4f} {np.median(values):8.4f} {worst:8.4f}")
    if report.clips:
        lines += ["", f"{'clip':30} {'frames':>8} {'flicker':>8} {'excess':>8}"]
        for clip in report.clips:
            lines.append(f"{clip.clip:30} {clip.frames:8d} {clip.flicker:8.4f} {clip.excess_flicker:8.4f}")
    return "\n".join(lines)


def write_json(report: EvalReport, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    return path


def overlay(image: np.ndarray, truth: np.ndarray, alpha: np.ndarray, caption: str) -> np.ndarray:
    """An RGB picture of where the prediction agrees and disagrees with the truth, captioned."""
    truth_bin, predicted_bin = binary(truth), binary(alpha)
    picture = (image.astype(np.float32) * 0.45).astype(np.uint8)
    outcomes = {
        "hit": truth_bin & predicted_bin,
        "false_alarm": predicted_bin & ~truth_bin,
        "miss": truth_bin & ~predicted_bin,
    }
    for outcome, where in outcomes.items():
        tint = np.array(OUTCOME_COLOURS[outcome], np.float32)
        picture[where] = (picture[where] * 0.4 + tint * 0.6).astype(np.uint8)
    strip = np.zeros((CAPTION_HEIGHT, image.shape[1], 3), np.uint8)
    cv2.putText(strip, caption, (6, CAPTION_HEIGHT - 9), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1)
    return np.vstack([picture, strip])


def write_overlays(worst: list[SampleResult], evaluator: Evaluator, folder: Path) -> list[Path]:
    """One overlay PNG per given sample, named by its rank and name."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for rank, result in enumerate(worst, start=1):
        image, truth = read_pair(result.sample)
        scores = result.scores
        caption = f"{result.sample.name}  IoU {scores.iou:.3f}  boundary F {scores.boundary_f:.3f}"
        picture = overlay(image, truth, evaluator.predict(image), caption)
        path = folder / f"{rank:02d}_{result.sample.name.replace('/', '_')}.png"
        cv2.imwrite(str(path), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
        paths.append(path)
    return paths
