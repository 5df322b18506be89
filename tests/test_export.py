"""Exports from the Keras model: the shipped ONNX is still what an export produces, TFLite fp32/fp16 work."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from ai_edge_litert.interpreter import Interpreter
from photos import photo_batch

from backdrop.model.contract import resolve_model
from backdrop.model.export import ONNX_OPSET, export_onnx, export_tflite
from backdrop.model.keras_io import load_keras_model


@pytest.fixture(scope="module")
def general():
    files = resolve_model("general")
    return files, load_keras_model(files.require(".keras")), photo_batch(files.contract.input_size, count=4)


def onnx_masks(path, batch) -> np.ndarray:
    """The model's output for ``batch``, on one thread: ONNX Runtime's thread pool splits some kernels by the load
    of the moment, which changes the order of float sums (≈ 1e-5 apart on a busy machine); the comparisons of
    graphs here and in test_model_cli.py are about the graphs, not about that."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(["mask"], {"image": batch})[0]


def run_onnx(path, batch):
    return onnx_masks(path, batch)[..., 0]


def run_tflite(path, batch):
    interpreter = Interpreter(model_path=str(path))
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, batch.shape, strict=True)
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, batch)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[..., 0]


def test_reexported_onnx_is_equivalent_to_the_shipped_one(general, tmp_path):
    files, model, batch = general
    fresh = export_onnx(model, files.contract, tmp_path / "fresh.onnx")
    np.testing.assert_allclose(run_onnx(fresh, batch), run_onnx(files.path(".onnx"), batch), atol=1e-6)


def test_shipped_onnx_has_named_io_dynamic_batch_and_contract(general):
    files, _, _ = general
    proto = onnx.load(str(files.path(".onnx")))
    assert max(op.version for op in proto.opset_import if op.domain in ("", "ai.onnx")) >= ONNX_OPSET
    (inp,), (out,) = proto.graph.input, proto.graph.output
    assert (inp.name, out.name) == ("image", "mask")
    assert inp.type.tensor_type.shape.dim[0].dim_param == "batch"
    assert [d.dim_value for d in inp.type.tensor_type.shape.dim[1:]] == [256, 256, 3]
    assert dict((p.key, p.value) for p in proto.metadata_props)["variant"] == '"general"'


@pytest.mark.parametrize("fp16, tolerance", [(False, 1e-4), (True, 2e-2)])
def test_tflite_export_matches_keras(general, tmp_path, fp16, tolerance):
    files, model, batch = general
    path = export_tflite(model, files.contract, tmp_path / "model.tflite", fp16=fp16)
    expected = model.predict(batch, verbose=0)[..., 0]
    got = run_tflite(path, batch)
    assert np.abs(got - expected).max() <= tolerance
    assert ((got > 0.5) == (expected > 0.5)).mean() >= 0.995
