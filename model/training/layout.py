"""The dataset folder layout shared by training, evaluation and distillation (no TensorFlow here).

    DATA/images/NAME.jpg          DATA/masks/NAME.png         a still: any image, mask 0/255 or 0/1
    DATA/images/CLIP/000001.jpg   DATA/masks/CLIP/000001.png  a clip: consecutive frames, sorted by name

Image and mask are matched by their path without suffix, so ``images/a.jpg`` pairs with ``masks/a.png``.
Frames inside a subfolder form a clip, which evaluation scores for flicker and training keeps on one
side of the train/validation split (neighbouring frames would otherwise leak into validation).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from backdrop.errors import BackdropError
from backdrop.pixels import IMAGE_SUFFIXES

LISTED_NAMES = 5  # how many offending names an error message shows


class DatasetError(BackdropError):
    """A dataset folder, image, mask or clip is missing, unreadable or inconsistent."""


@dataclass(frozen=True)
class Sample:
    """One labelled image: its files, its name relative to ``images/`` (no suffix) and its clip ("" for a still)."""

    image: Path
    mask: Path
    name: str
    clip: str


def _listing(names: Iterable[str]) -> str:
    names = sorted(names)
    more = f" and {len(names) - LISTED_NAMES} more" if len(names) > LISTED_NAMES else ""
    return ", ".join(names[:LISTED_NAMES]) + more


def _files_by_name(folder: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            files.setdefault(path.relative_to(folder).with_suffix("").as_posix(), path)
    return files


def find_samples(root: Path) -> list[Sample]:
    """Every image/mask pair under ``root``, sorted by name; a DatasetError names what is missing."""
    images_dir, masks_dir = root / "images", root / "masks"
    for folder in (root, images_dir, masks_dir):
        if not folder.is_dir():
            raise DatasetError(f"dataset folder not found: {folder} (expected DATA/images/ and DATA/masks/)")
    images, masks = _files_by_name(images_dir), _files_by_name(masks_dir)
    if not images:
        raise DatasetError(f"no images in {images_dir}")
    unlabelled = images.keys() - masks.keys()
    if unlabelled:
        raise DatasetError(
            f"{len(unlabelled)} image(s) in {images_dir} have no mask in {masks_dir}: {_listing(unlabelled)}"
        )
    return [Sample(images[name], masks[name], name, name.rpartition("/")[0]) for name in sorted(images)]


def group_by_clip(samples: list[Sample]) -> dict[str, list[Sample]]:
    """Clip name → its frames in order; stills are left out."""
    clips: dict[str, list[Sample]] = {}
    for sample in samples:
        if sample.clip:
            clips.setdefault(sample.clip, []).append(sample)
    return clips


def read_image(path: Path) -> np.ndarray:
    """An image file as H×W×3 uint8 RGB."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetError(f"cannot read image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_mask(path: Path, size: tuple[int, int]) -> np.ndarray:
    """A mask file as H×W float32 in [0, 1]; 0/255 and 0/1 encodings are both accepted.

    ``size`` is its image's (height, width): a mask of another size is an error, not silently resized.
    """
    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise DatasetError(f"cannot read mask {path}")
    if mask.shape != size:
        raise DatasetError(f"mask {path} is {mask.shape[1]}×{mask.shape[0]} but its image is {size[1]}×{size[0]}")
    scale = 1.0 if mask.max() <= 1 else 255.0
    return mask.astype(np.float32) / scale


def read_pair(sample: Sample) -> tuple[np.ndarray, np.ndarray]:
    """(RGB uint8 image, float32 mask in [0, 1]) of one sample."""
    image = read_image(sample.image)
    return image, read_mask(sample.mask, image.shape[:2])
