"""The ONNX fusion pass: rewrites exactly the patterns it should, leaves look-alikes alone, keeps outputs."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from backdrop.model.contract import resolve_model
from backdrop.model.onnx_fusion import FusionCounts, fuse_graph


def _model(nodes: list, output: tuple[str, list], constants: dict[str, list]) -> onnx.ModelProto:
    """An opset-17 model over input ``x`` of shape (N, 4, 8, 8) with float / int64 initializers."""
    initializers = [
        numpy_helper.from_array(np.array(value, dtype=np.int64 if name.startswith("shape") else np.float32), name)
        for name, value in constants.items()
    ]
    graph = helper.make_graph(
        nodes,
        "fusion_test",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 8, 8])],
        [helper.make_tensor_value_info(output[0], TensorProto.FLOAT, output[1])],
        initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _hard_swish_chain(x: str, out: str, *, clip_max: str = "six") -> list:
    """tf2onnx's hard-swish, the gate Mul written with its operands swapped (Mul commutes)."""
    return [
        helper.make_node("Add", [x, "three"], [f"{out}_add"]),
        helper.make_node("Clip", [f"{out}_add", "zero", clip_max], [f"{out}_clip"]),
        helper.make_node("Mul", [f"{out}_clip", "sixth"], [f"{out}_scaled"]),
        helper.make_node("Mul", [f"{out}_scaled", x], [out]),
    ]


CONSTANTS = {"three": 3.0, "zero": 0.0, "six": 6.0, "five": 5.0, "sixth": 1 / 6}


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def _fused_copy(model: onnx.ModelProto) -> tuple[onnx.ModelProto, FusionCounts]:
    fused = onnx.ModelProto()
    fused.CopyFrom(model)
    return fused, fuse_graph(fused)


def test_fuses_hard_swish_and_identity_reshape_but_not_the_decoys():
    nodes = [
        *_hard_swish_chain("x", "h"),
        helper.make_node("GlobalAveragePool", ["h"], ["pooled"]),
        helper.make_node("Reshape", ["pooled", "shape_se"], ["gate"]),
        helper.make_node("Mul", ["h", "gate"], ["y"]),
        # Decoy: the Add's output is also read by the final Add, so the chain must stay.
        *_hard_swish_chain("y", "h2"),
        helper.make_node("Add", ["h2", "h2_add"], ["z"]),
        # Decoy: Clip(0, 5) is not hard-swish.
        *_hard_swish_chain("z", "h3", clip_max="five"),
        # Decoy: a Reshape that does change the shape.
        helper.make_node("Reshape", ["h3", "shape_flat"], ["out"]),
    ]
    model = _model(nodes, ("out", ["N", 4, 64]), {**CONSTANTS, "shape_se": [-1, 4, 1, 1], "shape_flat": [-1, 4, 64]})
    fused, counts = _fused_copy(model)

    assert counts == FusionCounts(hard_swish=1, identity_reshapes=1, unused_initializers=1)
    onnx.checker.check_model(fused, full_check=True)
    assert Counter(node.op_type for node in fused.graph.node) == {
        "HardSwish": 1,
        "GlobalAveragePool": 1,
        "Reshape": 1,
        "Add": 3,
        "Clip": 2,
        "Mul": 5,
    }
    assert {tensor.name for tensor in fused.graph.initializer} == {*CONSTANTS, "shape_flat"}
    x = np.random.default_rng(0).normal(scale=4.0, size=(2, 4, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(_run(fused, x), _run(model, x), rtol=1e-6, atol=1e-6)


def test_keeps_an_identity_reshape_that_is_a_graph_output():
    nodes = [
        helper.make_node("GlobalAveragePool", ["x"], ["pooled"]),
        helper.make_node("Reshape", ["pooled", "shape_se"], ["out"]),
    ]
    model = _model(nodes, ("out", ["N", 4, 1, 1]), {"shape_se": [-1, 4, 1, 1]})
    _, counts = _fused_copy(model)
    assert counts == FusionCounts(hard_swish=0, identity_reshapes=0, unused_initializers=0)


@pytest.mark.parametrize("variant", ["general", "landscape"])
def test_shipped_onnx_is_already_fused(variant):
    proto = onnx.load(str(resolve_model(variant).path(".onnx")))
    assert any(node.op_type == "HardSwish" for node in proto.graph.node)
    # Nothing left to rewrite: no 4-node hard-swish chain, no identity Reshape, no unused initializer.
    assert fuse_graph(proto) == FusionCounts(hard_swish=0, identity_reshapes=0, unused_initializers=0)
