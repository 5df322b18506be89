"""`backdrop eval`: run a model over a labelled dataset and score every image and clip.

Frames go through the model contract's own preprocessing, as in the live pipeline, and the predicted
mask is scaled back to the truth's own resolution, so the numbers describe what a user sees, at full size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from types import TracebackType

import cv2
import numpy as np

from backdrop.model.evaluation.metrics import ClipMotion, MaskScores, score_mask
from backdrop.model.segmenter import load_segmenter
from backdrop.model.training.layout import Sample, find_samples, read_pair
from backdrop.pixels import RGB

METRICS = tuple(f.name for f in fields(MaskScores))


@dataclass(frozen=True)
class SampleResult:
    sample: Sample
    scores: MaskScores


@dataclass(frozen=True)
class ClipResult:
    clip: str
    frames: int
    flicker: float
    excess_flicker: float


@dataclass(frozen=True)
class EvalReport:
    """Per-image scores, per-clip temporal scores, and what produced them."""

    model: str
    runtime: str
    data: str
    samples: list[SampleResult]
    clips: list[ClipResult]

    def mean(self) -> dict[str, float]:
        """Each metric averaged over images (every image weighs the same, as in DAVIS)."""
        return {m: float(np.mean([getattr(s.scores, m) for s in self.samples])) for m in METRICS}

    def worst(self, count: int) -> list[SampleResult]:
        """The ``count`` images with the lowest IoU (ties: lowest boundary F first)."""
        return sorted(self.samples, key=lambda s: (s.scores.iou, s.scores.boundary_f, s.sample.name))[:count]

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "runtime": self.runtime,
            "data": self.data,
            "images": len(self.samples),
            "mean": self.mean(),
            "clips": [asdict(c) for c in self.clips],
            "samples": [{"name": s.sample.name, "clip": s.sample.clip, **asdict(s.scores)} for s in self.samples],
        }


class Evaluator:
    """A model opened on one runtime, scoring images at their own resolution."""

    def __init__(self, model: str = "general", runtime: str = "onnxruntime", *, threads: int | None = None) -> None:
        self.model, self.runtime = model, runtime
        self.segmenter = load_segmenter(model, runtime, threads=threads)

    def predict(self, image: np.ndarray) -> np.ndarray:
        """Person probability for an RGB uint8 image, H×W float32 at the image's size."""
        tensor = self.segmenter.contract.to_model_input(image, RGB)
        probability = self.segmenter.segment(tensor[None])[0]
        return cv2.resize(probability, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)

    def evaluate(self, data: Path, *, on_sample: Callable[[int, int], None] | None = None) -> EvalReport:
        """Score every sample of ``data``; ``on_sample(done, total)`` hears of each one scored."""
        results: list[SampleResult] = []
        motions: dict[str, ClipMotion] = {}
        samples = find_samples(data)
        for sample in samples:
            image, truth = read_pair(sample)
            alpha = self.predict(image)
            results.append(SampleResult(sample, score_mask(truth, alpha)))
            if on_sample is not None:
                on_sample(len(results), len(samples))
            if sample.clip:
                motions.setdefault(sample.clip, ClipMotion()).add(alpha, truth)
        clips = [ClipResult(name, m.steps + 1, m.flicker, m.excess_flicker) for name, m in motions.items()]
        return EvalReport(self.model, self.runtime, str(data), results, clips)

    def close(self) -> None:
        self.segmenter.close()

    def __enter__(self) -> Evaluator:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
