"""Our TensorRT 10 code paths, driven through an API fake (TensorRT itself cannot be installed here).

These tests check buffer handling, batching beyond the profile, engine caching and rebuild rules and
error reporting against the documented TensorRT 10 contract. They do not prove that real TensorRT
accepts our calls: tests/test_tensorrt_real.py does that where TensorRT exists (it skips here).
"""

from __future__ import annotations

import importlib.util
import shutil

import fake_tensorrt
import numpy as np
import pytest
from photos import photo_batch

from backdrop.errors import ExportError, RuntimeUnavailable
from backdrop.model.contract import resolve_model
from backdrop.model.segmenter import load_segmenter


@pytest.fixture
def fake_trt(monkeypatch, tmp_path):
    monkeypatch.setenv("BACKDROP_CACHE", str(tmp_path / "cache"))
    return fake_tensorrt.install(monkeypatch)


@pytest.fixture(scope="module")
def onnx_reference():
    with load_segmenter("general", "onnxruntime") as segmenter:
        batch = photo_batch(segmenter.contract.input_size, count=10)
        return batch, segmenter.segment(batch)


@pytest.mark.parametrize("batch_size", [1, 4, 10])
def test_tensorrt_segmenter_matches_onnxruntime_through_the_api(fake_trt, onnx_reference, batch_size):
    batch, expected = onnx_reference
    with load_segmenter("general", "tensorrt") as segmenter:
        masks = segmenter.segment(batch[:batch_size])
    assert masks.shape == expected[:batch_size].shape
    assert np.abs(masks - expected[:batch_size]).max() <= 1e-5
    # Batch 10 exceeds the profile's maximum (8) and must be split into two executions.
    assert fake_trt["executions"] == (2 if batch_size > 8 else 1)


def test_auto_prefers_tensorrt_when_it_is_usable(fake_trt):
    with load_segmenter("general", "auto") as segmenter:
        assert segmenter.name == "tensorrt"


def test_engine_is_cached_and_rebuilt_when_tensorrt_version_changes(monkeypatch, tmp_path):
    monkeypatch.setenv("BACKDROP_CACHE", str(tmp_path / "cache"))
    stats = fake_tensorrt.install(monkeypatch, version="10.8.0")
    load_segmenter("general", "tensorrt").close()
    load_segmenter("general", "tensorrt").close()
    assert stats["builds"] == 1
    assert len(list((tmp_path / "cache" / "tensorrt").glob("*-trt10.8.0-Fake-GPU-80GB-fp16-b8.engine"))) == 1

    stats = fake_tensorrt.install(monkeypatch, version="10.9.0")
    load_segmenter("general", "tensorrt").close()
    assert stats["builds"] == 1  # a new version means a new key, and a fresh build


def test_engine_rebuilds_when_the_onnx_changes(fake_trt, tmp_path):
    files = resolve_model("general")
    copy = tmp_path / "copy"
    for suffix in (".json", ".onnx"):
        shutil.copy(files.path(suffix), copy.with_suffix(suffix))
    load_segmenter(str(copy.with_suffix(".onnx")), "tensorrt").close()
    import onnx

    proto = onnx.load(str(copy.with_suffix(".onnx")))
    proto.doc_string = "fine-tuned"  # any change to the file changes the cache key
    onnx.save(proto, str(copy.with_suffix(".onnx")))
    load_segmenter(str(copy.with_suffix(".onnx")), "tensorrt").close()
    assert fake_trt["builds"] == 2


def test_a_stale_engine_from_another_version_is_rebuilt_not_used(monkeypatch, tmp_path):
    from backdrop.model.tensorrt_engine import EngineSpec, load_or_build_engine

    monkeypatch.setenv("BACKDROP_CACHE", str(tmp_path / "cache"))
    stats = fake_tensorrt.install(monkeypatch, version="10.8.0")
    files = resolve_model("general")
    spec = EngineSpec(files.path(".onnx"), "image", (256, 256))
    _, path = load_or_build_engine(spec)
    path.write_bytes(path.read_bytes().replace(b'"10.8.0"', b'"10.7.0"', 1))  # as if built by another release
    _, again = load_or_build_engine(spec)
    assert again == path and stats["builds"] == 2


def test_unparseable_onnx_is_a_clear_export_error(fake_trt, tmp_path):
    from backdrop.model.tensorrt_engine import EngineSpec, build_serialized_engine

    bogus = tmp_path / "bogus.onnx"
    bogus.write_bytes(b"not an onnx file")
    with pytest.raises(ExportError, match=r"could not parse .*bogus\.onnx: ModelImporter"):
        build_serialized_engine(EngineSpec(bogus, "image", (256, 256)))


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_without_tensorrt_the_runtime_says_what_to_install():
    with pytest.raises(RuntimeUnavailable, match=r"pip install 'backdrop-video\[tensorrt\]'"):
        load_segmenter("general", "tensorrt")
