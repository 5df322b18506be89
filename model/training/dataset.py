"""The tf.data pipelines that feed training: images held in memory at the model's input size.

Examples are decoded, checked and resized once (the same resize the live pipeline does), then served
from memory: a user's fine-tuning set is hundreds to a few thousand frames, which fits easily, and the
CPU then spends its time on the model instead of on JPEG decoding every epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import tensorflow as tf

from backdrop.model.training.augment import AugmentConfig, augment
from backdrop.model.training.layout import DatasetError, Sample, read_image, read_pair
from backdrop.pixels import IMAGE_SUFFIXES, RGB, small_rgb


@dataclass(frozen=True)
class Arrays:
    """Images (N×H×W×3 uint8 RGB) and masks (N×H×W×1 uint8, 255 = person) at the model's input size."""

    images: np.ndarray
    masks: np.ndarray

    def __len__(self) -> int:
        return len(self.images)


def load_arrays(samples: list[Sample], size: tuple[int, int]) -> Arrays:
    images, masks = [], []
    for sample in samples:
        image, mask = read_pair(sample)
        images.append(small_rgb(image, RGB, size[::-1]))  # the pipeline's own resampling
        masks.append(
            np.round(cv2.resize(mask, size[::-1], interpolation=cv2.INTER_LINEAR) * 255).astype(np.uint8)[..., None]
        )
    return Arrays(np.stack(images), np.stack(masks))


def load_backgrounds(folder: Path, size: tuple[int, int]) -> np.ndarray:
    """Every image in ``folder`` resized to the input size, as float32 N×H×W×3 in [0, 1]."""
    if not folder.is_dir():
        raise DatasetError(f"backgrounds folder not found: {folder}")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise DatasetError(f"no images in backgrounds folder {folder}")
    # a plain resize: MediaPipe's corner-to-corner warp would blend its black border into an enlarged picture's edge
    stock = [small_rgb(read_image(p), RGB, size[::-1], resampling="resize") for p in paths]
    return np.stack(stock).astype(np.float32) / 255


def split_samples(samples: list[Sample], fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """(train, validation) with about ``fraction`` of the samples held out, whole clips on one side.

    A dataset that is one clip is split in time instead: its last frames are held out.
    """
    if fraction <= 0:
        return samples, []
    groups: dict[str, list[Sample]] = {}
    for sample in samples:
        groups.setdefault(sample.clip or sample.name, []).append(sample)
    if len(groups) == 1:
        held = max(1, round(len(samples) * fraction))
        train, validation = samples[:-held], samples[-held:]
    else:
        validation = []
        for key in np.random.default_rng(seed).permutation(sorted(groups)):
            if len(validation) >= fraction * len(samples):
                break
            validation += groups[key]
        held_out = {s.name for s in validation}
        train = [s for s in samples if s.name not in held_out]
    if not train:
        raise DatasetError("too few samples to hold some out for validation: add data or use --val-fraction 0")
    return train, validation


def _to_float(images, masks):
    return tf.cast(images, tf.float32) / 255, tf.cast(masks, tf.float32) / 255


def training_dataset(
    arrays: Arrays,
    *,
    batch_size: int,
    seed: int,
    augmentation: AugmentConfig | None,
    backgrounds: np.ndarray | None = None,
) -> tf.data.Dataset:
    """Shuffled, augmented batches; the same ``seed`` gives the same batches, epoch after epoch."""
    examples = tf.data.Dataset.from_tensor_slices((arrays.images, arrays.masks)).map(_to_float)
    examples = examples.shuffle(len(arrays), seed=seed, reshuffle_each_iteration=True)
    if augmentation is not None:
        stock = None if backgrounds is None else tf.constant(backgrounds)
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)

        def augmented(example, pair):
            image, mask = example
            return augment(image, mask, pair, augmentation, stock)

        examples = tf.data.Dataset.zip(examples, seeds).map(
            augmented,
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    return examples.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def validation_dataset(arrays: Arrays, *, batch_size: int) -> tf.data.Dataset:
    """Un-augmented batches in file order."""
    examples = tf.data.Dataset.from_tensor_slices((arrays.images, arrays.masks)).map(_to_float)
    return examples.batch(batch_size).prefetch(tf.data.AUTOTUNE)
