"""`backdrop distill`: turn a user's own clips into a training set labelled by the pretrained model.

Each kept frame becomes ``OUT/images/CLIP/NNNNNN.jpg`` with its pseudo-label ``OUT/masks/CLIP/NNNNNN.png``
(0/255, the model's probability > 0.5 at the frame's resolution) — the layout `backdrop train` and
`backdrop eval` read. Frames the model is unsure about are dropped when ``min_confidence`` asks for it:
fine-tuning on its own guesses only helps where those guesses are good. Inference runs on ONNX Runtime,
not TensorFlow, since this is a pass over every frame of every clip.
"""

from __future__ import annotations

from collections.abc import Iterator
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


def distill(config: DistillConfig) -> list[ClipSummary]:
    """Write pseudo-labelled frames of every clip under ``config.out``; one summary per clip."""
    for clip in config.clips:
        taken = config.out / "images" / clip.stem
        if taken.is_dir() and any(taken.iterdir()):
            raise DatasetError(f"{taken} already has frames: choose another --out or remove it")
    summaries = []
    with load_segmenter(config.model, "onnxruntime", threads=config.threads) as segmenter:
        for clip in config.clips:
            images, masks = config.out / "images" / clip.stem, config.out / "masks" / clip.stem
            images.mkdir(parents=True, exist_ok=True)
            masks.mkdir(parents=True, exist_ok=True)
            kept = dropped = 0
            for index, frame in enumerate(read_frames(clip)):
                if index % config.every:
                    continue
                frame = scale_down(frame, config.max_side)
                probability = segmenter.segment(segmenter.contract.to_model_input(frame, RGB)[None])[0]
                if confidence(probability) < config.min_confidence:
                    dropped += 1
                    continue
                full = cv2.resize(probability, (frame.shape[1], frame.shape[0]), interpolation=cv2.INTER_LINEAR)
                name = f"{index:06d}"
                bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
                cv2.imwrite(str(images / f"{name}.jpg"), bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
                cv2.imwrite(str(masks / f"{name}.png"), np.where(full > 0.5, 255, 0).astype(np.uint8))
                kept += 1
            if kept + dropped == 0:
                raise DatasetError(f"clip has no frames: {clip}")
            summaries.append(ClipSummary(clip.stem, kept, dropped))
    return summaries
