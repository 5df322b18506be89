"""Every installed runtime agrees with the Keras model on real photos, behind one Segmenter interface."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from photos import photo_batch

from backdrop.errors import BackdropError, ModelError, RuntimeUnavailable
from backdrop.model.contract import resolve_model
from backdrop.model.segmenter import RUNTIMES, available_runtimes, load_segmenter

INSTALLED = [name for name, reason in available_runtimes().items() if not reason]


@pytest.fixture(scope="module", params=["general", "landscape"])
def reference(request):
    variant = request.param
    with load_segmenter(variant, "keras") as keras_segmenter:
        batch = photo_batch(keras_segmenter.contract.input_size, count=4)
        return variant, batch, keras_segmenter.segment(batch)


@pytest.mark.parametrize("runtime", INSTALLED)
@pytest.mark.parametrize("batch_size", [1, 4])
def test_runtime_agrees_with_keras(reference, runtime, batch_size):
    variant, batch, expected = reference
    with load_segmenter(variant, runtime, threads=2) as segmenter:
        masks = segmenter.segment(batch[:batch_size])
    assert masks.shape == expected[:batch_size].shape
    assert masks.dtype == np.float32
    assert masks.min() >= 0.0 and masks.max() <= 1.0
    assert np.abs(masks - expected[:batch_size]).max() <= 1e-3


def test_onnx_and_tflite_are_installed_in_the_test_environment():
    # The cross-runtime test above must not quietly shrink to the Keras runtime alone.
    assert {"onnxruntime", "tflite", "keras"} <= set(INSTALLED)


def test_auto_picks_an_installed_runtime_fastest_first():
    with load_segmenter("general", "auto") as segmenter:
        first_installed = next(name for name in RUNTIMES if name in INSTALLED)
        assert segmenter.name == first_installed


def test_wrong_input_shape_is_a_clear_error():
    with load_segmenter("general", "onnxruntime") as segmenter, pytest.raises(BackdropError, match="256×256×3"):
        segmenter.segment(np.zeros((1, 100, 100, 3), np.float32))


def test_unknown_runtime_and_model_are_clear_errors():
    with pytest.raises(RuntimeUnavailable, match="unknown runtime 'cuda-magic'"):
        load_segmenter("general", "cuda-magic")
    with pytest.raises(ModelError, match="unknown model 'nosuchmodel'"):
        resolve_model("nosuchmodel")


def test_missing_format_names_the_file(tmp_path):
    files = resolve_model("general")
    (tmp_path / "copy.json").write_text(files.path(".json").read_text())
    with pytest.raises(ModelError, match=r"copy\.onnx"):
        load_segmenter(str(tmp_path / "copy.json"), "onnxruntime")


def test_onnx_runtime_path_never_imports_tensorflow(tmp_path):
    # The installed names, run from an empty folder: the checkout's top-level model/ and stream/ folders are
    # not importable packages for a user, so they must not be what this imports.
    code = (
        "import sys, numpy as np\n"
        "import backdrop.model, backdrop.stream\n"
        "from backdrop.model.segmenter import load_segmenter, available_runtimes\n"
        "available_runtimes()\n"
        "s = load_segmenter('general', 'auto')\n"
        "s.segment(np.zeros((1, 256, 256, 3), np.float32))\n"
        "print(s.name, 'tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    ).stdout.split()
    assert out == ["onnxruntime", "False", "False"]
