"""Real TensorRT 10 on a real GPU: skipped where TensorRT is absent (always, in Backdrop's own CI)."""

from __future__ import annotations

import numpy as np
import pytest
from photos import photo_batch

from backdrop.errors import RuntimeUnavailable
from backdrop.model.segmenter import load_segmenter, runtime_class

try:
    runtime_class("tensorrt")
except RuntimeUnavailable as e:
    pytest.skip(
        f"TensorRT runtime unavailable ({e}); it cannot be installed in this environment", allow_module_level=True
    )


@pytest.mark.parametrize("variant", ["general", "landscape"])
@pytest.mark.parametrize("batch_size", [1, 4])
def test_tensorrt_engine_agrees_with_onnxruntime(variant, batch_size):
    with load_segmenter(variant, "onnxruntime") as reference:
        batch = photo_batch(reference.contract.input_size, count=batch_size)
        expected = reference.segment(batch)
    with load_segmenter(variant, "tensorrt") as segmenter:
        masks = segmenter.segment(batch)
    # FP16 engine: looser than the fp32 runtimes' 1e-3, but the binary masks must agree.
    assert np.abs(masks - expected).max() <= 2e-2
    assert ((masks > 0.5) == (expected > 0.5)).mean() >= 0.995
