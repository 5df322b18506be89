"""`backdrop model …` as a user runs it: regenerate weights, export, list runtimes, one-line errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from photos import photo_batch
from test_export import onnx_masks
from test_model_parity import mediapipe_wheel

from backdrop.model.contract import resolve_model


def backdrop(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "backdrop.cli", *args], capture_output=True, text=True, timeout=300)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("backdrop: error:"), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_import_regenerates_the_shipped_model(tmp_path):
    result = backdrop(
        "model", "import", "--wheel", str(mediapipe_wheel()), "--variant", "general", "--out", str(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    written = {p.name for p in tmp_path.iterdir()}
    assert {f"selfie_general{s}" for s in (".keras", ".json", ".onnx", ".tflite")} <= written
    shipped = resolve_model("general")
    batch = photo_batch(shipped.contract.input_size)
    np.testing.assert_allclose(
        onnx_masks(tmp_path / "selfie_general.onnx", batch), onnx_masks(shipped.path(".onnx"), batch), atol=1e-6
    )


def test_export_onnx_and_fp16_tflite_from_the_command_line(tmp_path):
    for fmt, name in (("onnx", "m.onnx"), ("tflite-fp16", "m.fp16.tflite")):
        result = backdrop("model", "export", "--model", "landscape", "--format", fmt, "--out", str(tmp_path / name))
        assert result.returncode == 0, result.stderr
        assert (tmp_path / name).stat().st_size > 100_000
    batch = photo_batch(resolve_model("landscape").contract.input_size)
    assert onnx_masks(tmp_path / "m.onnx", batch).shape == (2, 144, 256, 1)


def test_export_tensorrt_without_tensorrt_is_a_clear_error(tmp_path):
    result = backdrop("model", "export", "--format", "tensorrt", "--out", str(tmp_path / "m.engine"))
    if result.returncode == 0:
        pytest.skip("TensorRT is installed here")
    assert_one_line_error(result, "TensorRT is not installed", "pip install 'backdrop-video[tensorrt]'")
    assert not (tmp_path / "m.engine").exists()


@pytest.mark.parametrize(
    "args, fragments",
    [
        (
            ("model", "import", "--wheel", "/nonexistent/mediapipe.whl"),
            ("file not found", "/nonexistent/mediapipe.whl"),
        ),
        (("model", "export", "--model", "nosuch", "--format", "onnx"), ("unknown model 'nosuch'",)),
        (
            ("model", "export", "--format", "onnx", "--out", "/nonexistent/dir/m.onnx"),
            ("output folder does not exist",),
        ),
    ],
)
def test_bad_model_commands_fail_with_one_line(args, fragments):
    assert_one_line_error(backdrop(*args), *fragments)


def test_runtimes_lists_every_runtime_with_its_status():
    result = backdrop("model", "runtimes")
    assert result.returncode == 0
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert set(lines) == {"tensorrt", "onnxruntime", "tflite", "keras"}
    assert "available" in lines["onnxruntime"]
