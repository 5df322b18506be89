"""Training-time augmentation as stateless TensorFlow ops: the same seed gives the same images, always.

Each example carries its own seed (two int64s); every random choice is drawn from a split of it, so
the pipeline is reproducible however tf.data parallelises the map. Order matters: the background is
swapped first (on the full frame), then geometry (flip, scale-and-crop) moves image and mask together,
and photometric changes (colour jitter, blur, noise) touch the image only.
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from backdrop.model.training.layout import DatasetError

BLUR_TAPS = 7  # Gaussian kernel width; sigmas up to ~1.5 px fit inside it
BACKGROUND_NOISE_CELLS = 6  # coarseness of the procedural backgrounds' blotches


@dataclass(frozen=True, kw_only=True)
class AugmentConfig:
    """How strongly to augment; each ``*_probability`` is the share of examples that get that change."""

    flip: bool = True
    min_crop: float = 0.7  # scale-and-crop keeps a square box of this fraction of the side, or more
    brightness: float = 0.15
    contrast: float = 0.25
    saturation: float = 0.3
    hue: float = 0.04
    blur_probability: float = 0.25
    max_blur_sigma: float = 1.5
    max_noise: float = 0.04
    background_probability: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.min_crop <= 1:
            raise DatasetError(f"min_crop must be in (0, 1], got {self.min_crop}")
        for name in ("blur_probability", "background_probability"):
            if not 0 <= getattr(self, name) <= 1:
                raise DatasetError(f"{name} must be in [0, 1], got {getattr(self, name)}")


def _uniform(seed, low: float = 0.0, high: float = 1.0, shape=()):
    return tf.random.stateless_uniform(shape, seed, minval=low, maxval=high)


def procedural_background(seed, height: int, width: int) -> tf.Tensor:
    """A random backdrop: a vertical two-colour gradient under soft coloured blotches."""
    colours, blotch_seed = tf.unstack(tf.random.split(seed, 2))
    top, bottom = tf.unstack(_uniform(colours, shape=(2, 3)))
    ramp = tf.linspace(0.0, 1.0, height)[:, None, None]
    gradient = top * (1 - ramp) + bottom * ramp + tf.zeros((height, width, 3))
    cells = tf.random.stateless_normal((1, BACKGROUND_NOISE_CELLS, BACKGROUND_NOISE_CELLS, 3), blotch_seed, stddev=0.15)
    blotches = tf.image.resize(cells, (height, width), method="bicubic")[0]
    return tf.clip_by_value(gradient + blotches, 0.0, 1.0)


def swap_background(image, mask, seed, backgrounds: tf.Tensor | None):
    """Composite the person (``mask`` as alpha) onto a stock background, or a procedural one if none given."""
    height, width = image.shape[0], image.shape[1]
    if backgrounds is None:
        backdrop = procedural_background(seed, height, width)
    else:
        index = tf.random.stateless_uniform((), seed, maxval=tf.shape(backgrounds)[0], dtype=tf.int32)
        backdrop = backgrounds[index]
    return image * mask + backdrop * (1 - mask)


def scale_and_crop(image, mask, seed, min_crop: float):
    """Zoom into a random square-ish box covering at least ``min_crop`` of each side, resized back."""
    size_seed, position_seed = tf.unstack(tf.random.split(seed, 2))
    side = _uniform(size_seed, min_crop, 1.0)
    y0, x0 = tf.unstack(_uniform(position_seed, shape=(2,)) * (1 - side))
    box = tf.stack([y0, x0, y0 + side, x0 + side])[None]
    stacked = tf.concat([image, mask], axis=-1)[None]
    cropped = tf.image.crop_and_resize(stacked, box, [0], (image.shape[0], image.shape[1]))[0]
    return cropped[..., :3], cropped[..., 3:]


def colour_jitter(image, seed, config: AugmentConfig):
    """Random brightness, contrast, saturation and hue; a strength of 0 leaves that property alone."""
    seeds = tf.unstack(tf.random.split(seed, 4))
    if config.brightness > 0:
        image = tf.image.stateless_random_brightness(image, config.brightness, seeds[0])
    if config.contrast > 0:
        image = tf.image.stateless_random_contrast(image, 1 - config.contrast, 1 + config.contrast, seeds[1])
    if config.saturation > 0:
        image = tf.image.stateless_random_saturation(image, 1 - config.saturation, 1 + config.saturation, seeds[2])
    if config.hue > 0:
        image = tf.image.stateless_random_hue(image, config.hue, seeds[3])
    return tf.clip_by_value(image, 0.0, 1.0)


def gaussian_blur(image, sigma):
    """Separable Gaussian blur of an H×W×3 image with a (tensor) sigma."""
    offsets = tf.range(BLUR_TAPS, dtype=tf.float32) - (BLUR_TAPS - 1) / 2
    taps = tf.exp(-0.5 * tf.square(offsets / sigma))
    taps /= tf.reduce_sum(taps)
    horizontal = tf.tile(tf.reshape(taps, (1, BLUR_TAPS, 1, 1)), (1, 1, 3, 1))
    vertical = tf.reshape(horizontal, (BLUR_TAPS, 1, 3, 1))
    batch = image[None]
    batch = tf.nn.depthwise_conv2d(batch, horizontal, (1, 1, 1, 1), "SAME")
    return tf.nn.depthwise_conv2d(batch, vertical, (1, 1, 1, 1), "SAME")[0]


def augment(image, mask, seed, config: AugmentConfig, backgrounds: tf.Tensor | None = None):
    """One example (H×W×3 image and H×W×1 mask, float32 in [0, 1]) augmented under ``seed`` (shape [2])."""
    seeds = tf.unstack(tf.random.split(seed, 9))
    if config.background_probability > 0:
        swapped = swap_background(image, mask, seeds[0], backgrounds)
        image = tf.where(_uniform(seeds[1]) < config.background_probability, swapped, image)
    if config.flip:
        flipped = _uniform(seeds[2]) < 0.5
        image = tf.where(flipped, tf.reverse(image, [1]), image)
        mask = tf.where(flipped, tf.reverse(mask, [1]), mask)
    if config.min_crop < 1:
        image, mask = scale_and_crop(image, mask, seeds[3], config.min_crop)
    image = colour_jitter(image, seeds[4], config)
    if config.blur_probability > 0:
        blurred = gaussian_blur(image, _uniform(seeds[5], 0.3, config.max_blur_sigma))
        image = tf.where(_uniform(seeds[6]) < config.blur_probability, blurred, image)
    if config.max_noise > 0:
        strength = _uniform(seeds[7], 0.0, config.max_noise)
        image += tf.random.stateless_normal(tf.shape(image), seeds[8]) * strength
    return tf.clip_by_value(image, 0.0, 1.0), mask
