"""`backdrop distill`: turn a user's own clips into a training set labelled by the pretrained model.

Each kept frame becomes ``OUT/images/CLIP/NNNNNN.jpg`` with its pseudo-label ``OUT/masks/CLIP/NNNNNN.png``
(0/255, the model's probability > 0.5 at the frame's resolution) — the layout `backdrop train` and
`backdrop eval` read. Frames the model is unsure about are dropped when ``min_confidence`` asks for it:
fine-tuning on its own guesses only helps where those guesses are good. Inference runs on ONNX Runtime,
not TensorFlow, since this is a pass over every frame of every clip.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from backdrop.model.segmenter import load_segmenter
from backdrop.model.training.layout import DatasetError
from backdrop.pixels import RGB

JPEG_QUALITY = 95
PERSON_CANDIDATE = 0.05  # pixels above this probability count towards a frame's confidence
# the fewest frames a confidence bar may leave: `backdrop train` holds at least one out for validation and needs
# at least one to train on; a bar that leaves fewer is a mistake to show at once, not a dataset to find later
MIN_KEPT = 2


@dataclass(frozen=True, kw_only=True)
class DistillConfig:
    """What to distill; the CLI maps its flags one-to-one onto these fields."""

    clips: tuple[Path, ...]
    out: Path
    model: str = "general"
    every: int = 1  # keep every N-th frame (neighbouring frames teach little that is new)
    min_confidence: float = 0.0  # drop frames whose confidence() is below this
    max_side: int = 640  # frames are stored scaled down to at most this many pixels on their long side
    threads: int | None = None

    def __post_init__(self) -> None:
        if not self.clips:
            raise DatasetError("no clips given to distill")
        if self.every < 1:
            raise DatasetError(f"every must be at least 1, got {self.every}")
        if not 0 <= self.min_confidence <= 1:
            raise DatasetError(f"min-confidence must be in [0, 1], got {self.min_confidence}")
        if self.max_side < 16:
            raise DatasetError(f"max-side must be at least 16, got {self.max_side}")
        stems = [clip.stem for clip in self.clips]
        repeated = sorted({s for s in stems if stems.count(s) > 1})
        if repeated:
            raise DatasetError(f"clips must have distinct names, these repeat: {', '.join(repeated)}")


@dataclass(frozen=True)
class ClipSummary:
    clip: str
    kept: int
    dropped: int


@dataclass(frozen=True)
class DistillProgress:
    """Where a distillation is: frame ``frame`` of ``frames`` (None when the file does not say) of clip ``clip``."""

    clip: str
    frame: int
    frames: int | None


def too_few_kept(bar: float, kept: int, scores: list[float]) -> DatasetError:
    """The error for a confidence bar that keeps fewer than MIN_KEPT frames, with the spread of confidence seen
    and a bar that keeps about half of the frames."""
    low, median, high = np.percentile(scores, [0, 50, 90])
    suggestion = math.floor(median * 100) / 100
    return DatasetError(
        f"--min-confidence {bar:g} keeps {kept} of {len(scores)} frames (confidence min {low:.2f}, median "
        f"{median:.2f}, 90th percentile {high:.2f}): try --min-confidence {suggestion:.2f}, which keeps about half"
    )


def confidence(probability: np.ndarray) -> float:
    """Mean certainty |2p − 1| over the pixels the model gives any chance of being person.

    Plain background is left out: it is easy everywhere and would drown the person's uncertain parts.
    1 means every such pixel is surely person or surely background; a frame with no candidate pixels is 1.
    """
    candidates = probability[probability > PERSON_CANDIDATE]
    return float(np.mean(np.abs(2 * candidates - 1))) if candidates.size else 1.0


def read_frames(path: Path) -> Iterator[np.ndarray]:
    """Every frame of a video file as RGB uint8; a missing or undecodable file is a DatasetError."""
    if not path.is_file():
        raise DatasetError(f"clip not found: {path}")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DatasetError(f"clip has no video stream: {path}")
            for frame in container.decode(video=0):
                yield frame.to_ndarray(format="rgb24")
    except av.FFmpegError as e:
        raise DatasetError(f"cannot decode clip {path}: {e}") from e


def scale_down(image: np.ndarray, max_side: int) -> np.ndarray:
    scale = max_side / max(image.shape[:2])
    if scale >= 1:
        return image
    size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def clip_frame_count(path: Path) -> int | None:
    """The frames ``path``'s header promises, for progress (None when it does not say or cannot be read)."""
    try:
        with av.open(str(path)) as container:
            streams = container.streams.video
            return (streams[0].frames or None) if streams else None
    except av.FFmpegError:
        return None


def distill(config: DistillConfig, *, on_frame: Callable[[DistillProgress], None] | None = None) -> list[ClipSummary]:
    """Write pseudo-labelled frames of every clip under ``config.out``; one summary per clip.

    ``on_frame`` hears of every frame read. A confidence bar that keeps fewer than MIN_KEPT frames of all the clips
    is a DatasetError showing the confidence seen, and the frames it kept are removed again.
    """
    for clip in config.clips:
        taken = config.out / "images" / clip.stem
        if taken.is_dir() and any(taken.iterdir()):
            raise DatasetError(f"{taken} already has frames: choose another --out or remove it")
    summaries = []
    scores: list[float] = []
    written: list[Path] = []
    with load_segmenter(config.model, "onnxruntime", threads=config.threads) as segmenter:
        for clip in config.clips:
            images, masks = config.out / "images" / clip.stem, config.out / "masks" / clip.stem
            images.mkdir(parents=True, exist_ok=True)
            masks.mkdir(parents=True, exist_ok=True)
            kept = dropped = 0
            frames = clip_frame_count(clip) if on_frame else None
            for index, frame in enumerate(read_frames(clip)):
                if on_frame:
                    on_frame(DistillProgress(clip.stem, index + 1, frames))
                if index % config.every:
                    continue
                frame = scale_down(frame, config.max_side)
                probability = segmenter.segment(segmenter.contract.to_model_input(frame, RGB)[None])[0]
                scores.append(confidence(probability))
                if scores[-1] < config.min_confidence:
                    dropped += 1
                    continue
                full = cv2.resize(probability, (frame.shape[1], frame.shape[0]), interpolation=cv2.INTER_LINEAR)
                name = f"{index:06d}"
                bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
                written += [images / f"{name}.jpg", masks / f"{name}.png"]
                cv2.imwrite(str(written[-2]), bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
                cv2.imwrite(str(written[-1]), np.where(full > 0.5, 255, 0).astype(np.uint8))
                kept += 1
            if kept + dropped == 0:
                raise DatasetError(f"clip has no frames: {clip}")
            summaries.append(ClipSummary(clip.stem, kept, dropped))
    kept_in_all = sum(summary.kept for summary in summaries)
    if kept_in_all < MIN_KEPT and kept_in_all < len(scores):
        for path in written:
            path.unlink(missing_ok=True)
        raise too_few_kept(config.min_confidence, kept_in_all, scores)
    return summaries
