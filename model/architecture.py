"""MediaPipe's selfie segmentation network, rebuilt from stock Keras layers.

The network is a MobileNetV3-style encoder (inverted residual blocks with squeeze-excite and hard-swish),
an LR-ASPP-like head, and a three-stage decoder whose stages upsample, gate the encoder's skip features
with a squeeze-excite style attention, and refine with a depthwise residual. A 2×2 stride-2 transposed
convolution produces full-resolution logits; a sigmoid turns them into person probability.

The same code builds both MediaPipe variants: ``general`` (256×256) and ``landscape`` (144×256). It is
trainable from scratch; ``model.weight_import`` fills it with MediaPipe's pretrained weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import layers

VARIANT_INPUT_SIZES: dict[str, tuple[int, int]] = {"general": (256, 256), "landscape": (144, 256)}


@dataclass(frozen=True)
class BlockSpec:
    """One inverted residual block: 1×1 expand → depthwise → optional squeeze-excite → 1×1 project."""

    expand: int
    kernel: int
    stride: int
    squeeze: int | None
    out: int
    activation: str


ENCODER_BLOCKS: tuple[BlockSpec, ...] = (
    BlockSpec(expand=16, kernel=3, stride=2, squeeze=8, out=16, activation="relu"),
    BlockSpec(expand=72, kernel=3, stride=2, squeeze=None, out=24, activation="relu"),
    BlockSpec(expand=88, kernel=3, stride=1, squeeze=None, out=24, activation="relu"),
    BlockSpec(expand=96, kernel=5, stride=2, squeeze=24, out=32, activation="hard_swish"),
    BlockSpec(expand=128, kernel=5, stride=1, squeeze=32, out=32, activation="hard_swish"),
    BlockSpec(expand=128, kernel=5, stride=1, squeeze=32, out=32, activation="hard_swish"),
    BlockSpec(expand=96, kernel=5, stride=1, squeeze=24, out=32, activation="hard_swish"),
    BlockSpec(expand=96, kernel=5, stride=1, squeeze=24, out=32, activation="hard_swish"),
)
STEM_CHANNELS = 16
HEAD_CHANNELS = 128
# Encoder blocks whose outputs feed the decoder, finest first after the stem: (block index, channels).
SKIP_BLOCKS = (0, 2)
DECODER_CHANNELS = (24, 16, 16)


class SegmenterBuilder:
    """Builds the network and records its weighted layers in call order (the order weight import follows)."""

    def __init__(self, variant: str = "general") -> None:
        if variant not in VARIANT_INPUT_SIZES:
            raise ValueError(f"unknown variant {variant!r}: choose one of {', '.join(VARIANT_INPUT_SIZES)}")
        self.variant = variant
        self.weighted_layers: list[str] = []

    def _weighted(self, layer: layers.Layer) -> layers.Layer:
        self.weighted_layers.append(layer.name)
        return layer

    def conv(self, x, filters: int, name: str, *, kernel: int = 1, stride: int = 1, activation: str | None = None):
        padding = "valid" if kernel == 1 else "same"
        conv = layers.Conv2D(filters, kernel, strides=stride, padding=padding, activation=activation, name=name)
        return self._weighted(conv)(x)

    def depthwise(self, x, name: str, *, kernel: int, stride: int = 1, activation: str | None = None):
        conv = layers.DepthwiseConv2D(kernel, strides=stride, padding="same", activation=activation, name=name)
        return self._weighted(conv)(x)

    def channel_gate(self, x, squeeze: int, channels: int, name: str):
        """Squeeze-excite weights: global average → 1×1 reduce (ReLU) → 1×1 expand (sigmoid)."""
        pooled = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool")(x)
        reduced = self.conv(pooled, squeeze, f"{name}_reduce", activation="relu")
        return self.conv(reduced, channels, f"{name}_expand", activation="sigmoid")

    def inverted_residual(self, x, spec: BlockSpec, name: str):
        in_channels = x.shape[-1]
        y = self.conv(x, spec.expand, f"{name}_expand", activation=spec.activation)
        y = self.depthwise(y, f"{name}_depthwise", kernel=spec.kernel, stride=spec.stride, activation=spec.activation)
        if spec.squeeze is not None:
            gate = self.channel_gate(y, spec.squeeze, spec.expand, f"{name}_se")
            y = layers.Multiply(name=f"{name}_se_scale")([y, gate])
        y = self.conv(y, spec.out, f"{name}_project")
        if spec.stride == 1 and in_channels == spec.out:
            y = layers.Add(name=f"{name}_residual")([y, x])
        return y

    def head(self, x):
        """LR-ASPP style: a 1×1 ReLU branch scaled by a global-context sigmoid gate."""
        features = self.conv(x, HEAD_CHANNELS, "head_conv", activation="relu")
        pooled = layers.GlobalAveragePooling2D(keepdims=True, name="head_pool")(x)
        gate = self.conv(pooled, HEAD_CHANNELS, "head_gate", activation="sigmoid")
        return layers.Multiply(name="head_scale")([features, gate])

    def decoder_stage(self, coarse, skip, channels: int, name: str):
        """Upsample ×2, gate the skip features by attention on their sum, then refine with a depthwise residual."""
        up = layers.UpSampling2D(2, interpolation="bilinear", name=f"{name}_upsample")(coarse)
        up = self.conv(up, channels, f"{name}_align")
        summed = layers.Add(name=f"{name}_sum")([skip, up])
        gate = self.channel_gate(summed, channels, channels, f"{name}_attention")
        gated = layers.Multiply(name=f"{name}_gate_skip")([skip, gate])
        merged = layers.Add(name=f"{name}_merge")([gated, up])
        refined = self.conv(merged, channels, f"{name}_refine", activation="relu")
        detail = self.depthwise(refined, f"{name}_detail", kernel=3, activation="relu")
        return layers.Add(name=f"{name}_residual")([refined, detail])

    def build(self) -> keras.Model:
        height, width = VARIANT_INPUT_SIZES[self.variant]
        image = keras.Input((height, width, 3), name="image")
        stem = self.conv(image, STEM_CHANNELS, "stem_conv", kernel=3, stride=2, activation="hard_swish")
        skips = [stem]
        x = stem
        for i, spec in enumerate(ENCODER_BLOCKS):
            x = self.inverted_residual(x, spec, f"block{i + 1}")
            if i in SKIP_BLOCKS:
                skips.append(x)
        x = self.head(x)
        for stage, (skip, channels) in enumerate(zip(reversed(skips), DECODER_CHANNELS, strict=True)):
            x = self.decoder_stage(x, skip, channels, f"decoder{stage + 1}")
        logits = self._weighted(layers.Conv2DTranspose(1, 2, strides=2, padding="same", name="segment"))(x)
        mask = layers.Activation("sigmoid", name="mask")(logits)
        return keras.Model(image, mask, name=f"selfie_segmenter_{self.variant}")


def build_selfie_segmenter(variant: str = "general") -> keras.Model:
    """A freshly initialised (untrained) selfie segmenter of the given variant."""
    return SegmenterBuilder(variant).build()
