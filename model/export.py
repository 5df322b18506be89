"""Export a Keras segmenter to the formats the runtimes load: ONNX, TFLite (float32 / fp16) and its contract.

ONNX goes through tf2onnx (opset 17, dynamic batch), has the patterns tf2onnx leaves unfused rewritten
(model/onnx_fusion.py), and is then given the contract's tensor names, a named batch dimension and the contract
as metadata, so any ONNX consumer can find its way without us.
TensorFlow is imported here and only here (and in the Keras runtime), never on the inference path.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from backdrop.errors import ExportError, RuntimeUnavailable
from backdrop.model.contract import ModelContract

ONNX_OPSET = 17
KERAS_EXTRA_HINT = "pip install 'backdrop-video[keras]'"


def _import_tensorflow():
    try:
        import tensorflow as tf
    except ImportError as e:
        raise RuntimeUnavailable(f"exporting needs TensorFlow: {KERAS_EXTRA_HINT}") from e
    return tf


def _inference_function(model, contract: ModelContract):
    """The model as a tf.function over a dynamic-batch input signature named by the contract."""
    tf = _import_tensorflow()
    spec = tf.TensorSpec((None, contract.input_height, contract.input_width, 3), tf.float32, name=contract.input_name)
    return tf.function(lambda image: model(image, training=False)), spec


def _rename_value(graph, old: str, new: str) -> None:
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]
    for value in [*graph.input, *graph.output]:
        if value.name == old:
            value.name = new


def export_onnx(model, contract: ModelContract, path: Path) -> Path:
    """Write ``model`` as ONNX with input/output named by the contract and a dynamic ``batch`` dimension."""
    try:
        import onnx
        import tf2onnx

        from backdrop.model.onnx_fusion import fuse_graph
    except ImportError as e:
        raise RuntimeUnavailable(f"ONNX export needs tf2onnx and onnx: {KERAS_EXTRA_HINT}") from e
    function, spec = _inference_function(model, contract)
    try:
        proto, _ = tf2onnx.convert.from_function(function, input_signature=(spec,), opset=ONNX_OPSET)
    except Exception as e:  # tf2onnx raises many unrelated types
        raise ExportError(f"tf2onnx could not convert the model: {e}") from e
    fuse_graph(proto)
    graph = proto.graph
    _rename_value(graph, graph.output[0].name, contract.output_name)
    for value in [graph.input[0], graph.output[0]]:
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    proto.producer_name = "backdrop"
    del proto.metadata_props[:]
    for key, value in asdict(contract).items():
        proto.metadata_props.add(key=key, value=json.dumps(value))
    onnx.checker.check_model(proto)
    path.write_bytes(proto.SerializeToString())
    return path


def export_tflite(model, contract: ModelContract, path: Path, *, fp16: bool = False) -> Path:
    """Write ``model`` as TFLite; ``fp16`` stores weights as float16 (half the size, same float32 compute)."""
    tf = _import_tensorflow()
    function, spec = _inference_function(model, contract)
    # No trackable object: the converter then freezes the variables into constants.
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function(spec)])
    if fp16:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    try:
        path.write_bytes(converter.convert())
    except Exception as e:  # the converter raises ConverterError and friends
        raise ExportError(f"TFLite conversion failed: {e}") from e
    return path


def save_model_files(model, contract: ModelContract, stem: Path) -> list[Path]:
    """Write everything a model needs to run on every runtime: .keras, .json, .onnx and float32 .tflite."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    keras_path = stem.with_suffix(".keras")
    model.save(keras_path)
    contract.save(stem.with_suffix(".json"))
    return [
        keras_path,
        stem.with_suffix(".json"),
        export_onnx(model, contract, stem.with_suffix(".onnx")),
        export_tflite(model, contract, stem.with_suffix(".tflite")),
    ]
