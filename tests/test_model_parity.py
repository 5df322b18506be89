"""The Keras rebuild with imported weights reproduces MediaPipe's own TFLite models on real photos."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter
from photos import photo_batch

from backdrop.errors import ModelError
from backdrop.model.architecture import VARIANT_INPUT_SIZES, SegmenterBuilder
from backdrop.model.contract import resolve_model
from backdrop.model.keras_io import load_keras_model
from backdrop.model.tflite_reader import TFLiteModel
from backdrop.model.weight_import import load_mediapipe_weights, read_tflite_bytes

REPO = Path(__file__).resolve().parents[1]


def mediapipe_wheel() -> Path:
    """The mediapipe==0.10.14 wheel that `make fetch-mediapipe` downloads (or $BACKDROP_MEDIAPIPE_WHEEL)."""
    configured = os.environ.get("BACKDROP_MEDIAPIPE_WHEEL")
    candidates = [Path(configured)] if configured else sorted((REPO / ".cache" / "mediapipe").glob("*.whl"))
    if not candidates or not candidates[0].is_file():
        pytest.fail("mediapipe==0.10.14 wheel not found: run `make fetch-mediapipe` or set BACKDROP_MEDIAPIPE_WHEEL")
    return candidates[0]


def tflite_reference(data: bytes, batch: np.ndarray) -> np.ndarray:
    interpreter = Interpreter(model_content=data)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]
    results = []
    for image in batch:
        interpreter.set_tensor(inp, image[None])
        interpreter.invoke()
        results.append(interpreter.get_tensor(out)[0, ..., 0])
    return np.stack(results)


@pytest.fixture(scope="module", params=sorted(VARIANT_INPUT_SIZES))
def imported(request):
    variant = request.param
    data = read_tflite_bytes(mediapipe_wheel(), variant)
    builder = SegmenterBuilder(variant)
    model = builder.build()
    load_mediapipe_weights(model, builder.weighted_layers, TFLiteModel(data))
    return variant, data, model


def test_keras_rebuild_matches_mediapipe_tflite_on_photos(imported):
    variant, data, model = imported
    batch = photo_batch(VARIANT_INPUT_SIZES[variant])
    reference = tflite_reference(data, batch)
    ours = model.predict(batch, verbose=0)[..., 0]
    assert np.abs(ours - reference).max() <= 1e-3
    agreement = ((ours > 0.5) == (reference > 0.5)).mean()
    assert agreement >= 0.995
    # The photos really contain a person: a sizeable foreground, not an all-background trivial match.
    assert 0.2 < (reference > 0.5).mean() < 0.9


def test_shipped_keras_weights_equal_a_fresh_import(imported):
    variant, _, model = imported
    shipped = load_keras_model(resolve_model(variant).require(".keras"))
    for fresh, stored in zip(model.get_weights(), shipped.get_weights(), strict=True):
        np.testing.assert_array_equal(fresh, stored)


def test_import_rejects_a_file_that_is_not_tflite(tmp_path):
    bogus = tmp_path / "model.tflite"
    bogus.write_bytes(b"\0" * 64)
    with pytest.raises(ModelError, match="not a TFLite flatbuffer"):
        TFLiteModel(read_tflite_bytes(bogus, "general"), name=str(bogus))


def test_import_rejects_a_wheel_without_the_models(tmp_path):
    import zipfile

    wheel = tmp_path / "other-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("other/__init__.py", "")
    with pytest.raises(ModelError, match=r"selfie_segmentation\.tflite"):
        read_tflite_bytes(wheel, "general")
