"""Labelled data the training and evaluation tests build themselves, exact by construction.

No hand-labelled mask ships with Backdrop, so the "person" is cut out of each bundled public-domain
photo by the pretrained general model (probability > 0.5, largest connected region). That cut-out is
then composited onto synthetic backgrounds: every pixel either came from the person layer or from the
background, so the composite's mask is exact whatever the cut-out's quality — the pretrained model's
errors on the original photo become part of the "person", never label noise.

A *shifted domain* (negative film: inverted colours under a strong tint) is one where the pretrained
model measurably fails; fine-tuning on it should recover.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from pathlib import Path

import av
import cv2
import numpy as np
from photos import PHOTOS, load_rgb

from backdrop.model.segmenter import load_segmenter


@dataclass(frozen=True)
class Cutout:
    """A person layer: RGB pixels and a binary alpha of the same size."""

    rgb: np.ndarray
    alpha: np.ndarray


@cache
def person_cutouts() -> tuple[Cutout, ...]:
    """Each bundled photo's person, as the pretrained model sees it with high confidence."""
    cutouts = []
    with load_segmenter("general", "onnxruntime", threads=1) as segmenter:
        height, width = segmenter.contract.input_size
        for name in PHOTOS:
            rgb = load_rgb(name)
            small = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
            probability = segmenter.segment(small[None])[0]
            probability = cv2.resize(probability, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
            cutouts.append(Cutout(rgb, largest_region(probability > 0.5)))
    return tuple(cutouts)


def largest_region(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected region of a boolean mask, as uint8 0/1."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return np.zeros(mask.shape, np.uint8)
    biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return (labels == biggest).astype(np.uint8)


def synthetic_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A room-like backdrop: a colour gradient with a few soft-edged rectangles and some blotches."""
    top, bottom = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    ramp = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    image = np.broadcast_to(top * (1 - ramp) + bottom * ramp, (height, width, 3)).copy()
    for _ in range(rng.integers(2, 6)):
        x0, y0 = rng.integers(0, width - 8), rng.integers(0, height - 8)
        x1, y1 = x0 + rng.integers(8, width // 2), y0 + rng.integers(8, height // 2)
        cv2.rectangle(image, (int(x0), int(y0)), (int(x1), int(y1)), rng.uniform(0, 255, 3).tolist(), -1)
    blotches = cv2.resize(rng.normal(0, 25, (8, 8, 3)).astype(np.float32), (width, height))
    image = cv2.GaussianBlur(image + blotches, (0, 0), 1.5)
    return np.clip(image, 0, 255).astype(np.uint8)


def composite(cutout: Cutout, background: np.ndarray, *, scale: float, shift: float) -> tuple[np.ndarray, np.ndarray]:
    """Stand the person on the bottom edge of ``background`` at ``scale`` of its height, shifted sideways
    by ``shift`` × width; returns (RGB image, 0/1 mask)."""
    height, width = background.shape[:2]
    ph = round(height * scale)
    pw = round(cutout.rgb.shape[1] * ph / cutout.rgb.shape[0])
    rgb = cv2.resize(cutout.rgb, (pw, ph), interpolation=cv2.INTER_AREA)
    alpha = cv2.resize(cutout.alpha, (pw, ph), interpolation=cv2.INTER_NEAREST)
    x = round((width - pw) / 2 + shift * width)
    # Paste the part of the person that falls inside the frame.
    left, right = max(0, x), min(width, x + pw)
    mask = np.zeros((height, width), np.uint8)
    mask[height - ph :, left:right] = alpha[:, left - x : right - x]
    image = background.copy()
    person = mask.astype(bool)
    layer = np.zeros_like(background)
    layer[height - ph :, left:right] = rgb[:, left - x : right - x]
    image[person] = layer[person]
    return image, mask


def negative_film(image: np.ndarray) -> np.ndarray:
    """The shifted domain: inverted colours under a cyan tint, as a badly configured capture card gives."""
    inverted = 255.0 - image.astype(np.float32)
    return np.clip(inverted * np.array([0.55, 1.0, 0.9]) + np.array([0, 20, 30]), 0, 255).astype(np.uint8)


def make_samples(
    count: int, size: tuple[int, int], *, seed: int, shifted: bool = False
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``count`` (RGB image, 0/1 mask) composites of the bundled people on random backgrounds."""
    rng = np.random.default_rng(seed)
    cutouts = person_cutouts()
    samples = []
    for i in range(count):
        background = synthetic_background(rng, *size)
        image, mask = composite(
            cutouts[i % len(cutouts)], background, scale=rng.uniform(0.65, 0.95), shift=rng.uniform(-0.25, 0.25)
        )
        samples.append((negative_film(image) if shifted else image, mask))
    return samples


def write_dataset(
    folder: Path, samples: list[tuple[np.ndarray, np.ndarray]], *, mask_scale: int = 255, clip: str = ""
) -> Path:
    """Write samples in the ``images/`` + ``masks/`` layout (inside a clip subfolder when ``clip`` is set)."""
    images, masks = folder / "images" / clip, folder / "masks" / clip
    images.mkdir(parents=True, exist_ok=True)
    masks.mkdir(parents=True, exist_ok=True)
    for i, (image, mask) in enumerate(samples):
        cv2.imwrite(str(images / f"{i:04d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(masks / f"{i:04d}.png"), mask * mask_scale)
    return folder


def write_clip(path: Path, frames: list[np.ndarray], fps: int = 10) -> Path:
    """Encode RGB frames as an H.264 clip with PyAV."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path
