"""Load MediaPipe's pretrained selfie segmentation weights from its TFLite files into the Keras rebuild.

The TFLite graph stores fp16 constants behind DEQUANTIZE ops, convolution kernels as OHWI, depthwise
kernels as 1×H×W×C, and the final layer as MediaPipe's custom ``Convolution2DTransposeBias`` (kernel
O×H×W×I, bias, and raw options packed as three int32: padding, stride_w, stride_h). Each weighted
operator is matched, in graph order, to the Keras layer built in the same order, and its options are
checked against the layer's configuration so a mismatch fails loudly instead of importing garbage.
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import numpy as np

from backdrop.errors import ModelError
from backdrop.model.tflite_reader import TFLiteModel, TFLiteOperator

WHEEL_MEMBERS = {
    "general": "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite",
    "landscape": "mediapipe/modules/selfie_segmentation/selfie_segmentation_landscape.tflite",
}
TRANSPOSE_CONV_OP = "Convolution2DTransposeBias"
WEIGHTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", TRANSPOSE_CONV_OP)
# TfLitePadding enum used by the custom op's raw options.
_CUSTOM_PADDING = {1: "same", 2: "valid"}


def read_tflite_bytes(source: Path, variant: str) -> bytes:
    """The variant's .tflite bytes, from a mediapipe wheel or a .tflite file."""
    if not source.is_file():
        raise ModelError(f"file not found: {source}")
    if source.suffix == ".whl":
        try:
            with zipfile.ZipFile(source) as wheel:
                return wheel.read(WHEEL_MEMBERS[variant])
        except KeyError as e:
            raise ModelError(f"{source} has no {WHEEL_MEMBERS[variant]} (use mediapipe==0.10.14)") from e
        except zipfile.BadZipFile as e:
            raise ModelError(f"{source} is not a wheel (zip) file") from e
    return source.read_bytes()


class WeightReader:
    """Resolves operator inputs to float32 constants, looking through DEQUANTIZE ops."""

    def __init__(self, tflite: TFLiteModel) -> None:
        self.tflite = tflite
        self._dequantized = {op.outputs[0]: op.inputs[0] for op in tflite.operators if op.kind == "DEQUANTIZE"}

    def constant(self, tensor_index: int) -> np.ndarray:
        source = self._dequantized.get(tensor_index, tensor_index)
        return self.tflite.constant(source).astype(np.float32)

    def weighted_ops(self) -> list[TFLiteOperator]:
        return [op for op in self.tflite.operators if op.kind in WEIGHTED_OPS]


def _custom_transpose_options(op: TFLiteOperator) -> dict[str, object]:
    if len(op.custom_options) < 12:
        raise ModelError(f"{TRANSPOSE_CONV_OP} options are {len(op.custom_options)} bytes, expected 12")
    padding, stride_w, stride_h = struct.unpack_from("<iii", op.custom_options)
    return {"padding": _CUSTOM_PADDING.get(padding, f"code {padding}"), "strides": (stride_h, stride_w)}


def keras_weights(op: TFLiteOperator, reader: WeightReader) -> tuple[list[np.ndarray], dict[str, object]]:
    """One operator's weights in Keras layout, and the options the Keras layer must match."""
    kernel, bias = reader.constant(op.inputs[1]), reader.constant(op.inputs[2])
    if op.kind == "CONV_2D":
        return [kernel.transpose(1, 2, 3, 0), bias], op.options  # OHWI -> HWIO
    if op.kind == "DEPTHWISE_CONV_2D":
        _, kh, kw, channels = kernel.shape
        return [kernel.reshape(kh, kw, channels, 1), bias], op.options  # 1HWC -> HWC1
    return [kernel.transpose(1, 2, 0, 3), bias], _custom_transpose_options(op)  # OHWI -> HWOI


def _check_layer(layer, options: dict[str, object], weights: list[np.ndarray]) -> None:
    config = layer.get_config()
    expected = [tuple(w.shape) for w in layer.get_weights()]
    found = [tuple(w.shape) for w in weights]
    if expected != found:
        raise ModelError(f"layer {layer.name}: weight shapes {found} do not fit {expected}")
    if tuple(config["strides"]) != options["strides"]:  # the reader decodes strides as a tuple
        raise ModelError(f"layer {layer.name}: stride {config['strides']} but TFLite uses {options['strides']}")
    kernel_is_1x1 = tuple(config["kernel_size"]) == (1, 1)
    if config["padding"] != options["padding"] and not kernel_is_1x1:
        raise ModelError(f"layer {layer.name}: padding {config['padding']} but TFLite uses {options['padding']}")


def load_mediapipe_weights(model, layer_order: list[str], tflite: TFLiteModel) -> None:
    """Copy every weighted TFLite operator into the Keras layer at the same position of ``layer_order``."""
    reader = WeightReader(tflite)
    ops = reader.weighted_ops()
    if len(ops) != len(layer_order):
        raise ModelError(f"TFLite graph has {len(ops)} weighted operators, the Keras model {len(layer_order)}")
    for op, name in zip(ops, layer_order, strict=True):
        layer = model.get_layer(name)
        weights, options = keras_weights(op, reader)
        _check_layer(layer, options, weights)
        layer.set_weights(weights)


MEDIAPIPE_ORIGIN = (
    "MediaPipe selfie segmentation ({member} from the mediapipe==0.10.14 wheel), "
    "Copyright Google LLC, Apache License 2.0"
)


def import_mediapipe(source: Path, out_dir: Path, variants: tuple[str, ...] = ("general", "landscape")) -> list[Path]:
    """Rebuild each variant in Keras, load MediaPipe's weights and write all of its model files."""
    # Read and parse every input first: a bad path or file fails before TensorFlow's slow import.
    parsed = {
        variant: TFLiteModel(read_tflite_bytes(source, variant), name=f"{source} ({variant})") for variant in variants
    }
    from backdrop.model.architecture import VARIANT_INPUT_SIZES, SegmenterBuilder
    from backdrop.model.contract import BUILTIN_MODELS, ModelContract
    from backdrop.model.export import save_model_files

    written: list[Path] = []
    for variant, tflite in parsed.items():
        builder = SegmenterBuilder(variant)
        model = builder.build()
        load_mediapipe_weights(model, builder.weighted_layers, tflite)
        height, width = VARIANT_INPUT_SIZES[variant]
        name = BUILTIN_MODELS[variant]
        origin = MEDIAPIPE_ORIGIN.format(member=Path(WHEEL_MEMBERS[variant]).name)
        contract = ModelContract(name=name, variant=variant, input_height=height, input_width=width, origin=origin)
        written += save_model_files(model, contract, out_dir / name)
    return written
