"""Build TensorRT 10 engines from ONNX and cache them on disk.

An engine is only valid for the TensorRT version and GPU that built it, so the cache key is
sha256(ONNX bytes) + TensorRT version + GPU name (+ precision and batch range); any change rebuilds.
This module follows the documented TensorRT 10 Python API. TensorRT cannot be installed in Backdrop's
CI, so this code is not exercised there (see docs/model.md).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from backdrop.errors import ExportError, RuntimeUnavailable

TENSORRT_HINT = "pip install 'backdrop-video[tensorrt]' on a machine with an NVIDIA GPU and driver"
WORKSPACE_BYTES = 1 << 30


def default_cache_dir() -> Path:
    """Where engines are cached: $BACKDROP_CACHE/tensorrt, else ~/.cache/backdrop/tensorrt."""
    return Path(os.environ.get("BACKDROP_CACHE", Path.home() / ".cache" / "backdrop")) / "tensorrt"


def import_tensorrt():
    """The tensorrt module, or RuntimeUnavailable naming what to install."""
    try:
        import tensorrt as trt
    except ImportError as e:
        raise RuntimeUnavailable(f"TensorRT is not installed: {TENSORRT_HINT}") from e
    major = int(trt.__version__.split(".")[0])
    if major < 10:
        raise RuntimeUnavailable(f"TensorRT {trt.__version__} is too old: Backdrop needs TensorRT 10 or newer")
    return trt


def cuda_call(result):
    """Unwrap cuda-python's ``(err, *values)`` tuples, raising on any error code."""
    from backdrop.model.runtimes.cuda_runtime import cudart

    err, *values = result if isinstance(result, tuple) else (result,)
    if err != cudart.cudaError_t.cudaSuccess:
        _, name = cudart.cudaGetErrorName(err)
        raise RuntimeError(f"CUDA call failed: {name.decode() if isinstance(name, bytes) else name}")
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


def gpu_name() -> str:
    from backdrop.model.runtimes.cuda_runtime import cudart

    props = cuda_call(cudart.cudaGetDeviceProperties(0))
    name = props.name
    return (name.decode() if isinstance(name, bytes) else str(name)).strip("\x00 ")


@dataclass(frozen=True)
class EngineSpec:
    """What an engine is built for; its fields make up the cache key."""

    onnx_path: Path
    input_name: str
    input_hw: tuple[int, int]
    max_batch: int = 8
    fp16: bool = True

    def cache_key(self, trt_version: str, gpu: str) -> str:
        digest = hashlib.sha256(self.onnx_path.read_bytes()).hexdigest()[:16]
        gpu_slug = "".join(c if c.isalnum() else "-" for c in gpu)
        precision = "fp16" if self.fp16 else "fp32"
        return f"{self.onnx_path.stem}-{digest}-trt{trt_version}-{gpu_slug}-{precision}-b{self.max_batch}"


def _logger(trt):
    return trt.Logger(trt.Logger.WARNING)


def build_serialized_engine(spec: EngineSpec) -> bytes:
    """Parse the ONNX file and build an engine with a batch 1..max_batch optimisation profile."""
    trt = import_tensorrt()
    logger = _logger(trt)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode since TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(spec.onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"TensorRT could not parse {spec.onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    if spec.fp16:
        # BuilderFlag.FP16 is deprecated in 10.12 and gone in 11, where networks are strongly typed and
        # precision comes from the ONNX file itself; never fall back to FP32 silently.
        if not hasattr(trt.BuilderFlag, "FP16"):
            raise ExportError(f"TensorRT {trt.__version__} has no FP16 builder flag: build with --fp32")
        config.set_flag(trt.BuilderFlag.FP16)
    height, width = spec.input_hw
    profile = builder.create_optimization_profile()
    profile.set_shape(spec.input_name, (1, height, width, 3), (1, height, width, 3), (spec.max_batch, height, width, 3))
    config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise ExportError(f"TensorRT failed to build an engine from {spec.onnx_path}")
    return bytes(plan)


def deserialize(plan: bytes):
    """An ICudaEngine, or None when the plan came from another TensorRT version or GPU."""
    trt = import_tensorrt()
    return trt.Runtime(_logger(trt)).deserialize_cuda_engine(plan)


def load_or_build_engine(spec: EngineSpec, cache_dir: Path | None = None):
    """The cached engine for ``spec`` on this GPU and TensorRT, building (and caching) it when needed."""
    trt = import_tensorrt()
    cache_dir = cache_dir or default_cache_dir()
    path = cache_dir / f"{spec.cache_key(trt.__version__, gpu_name())}.engine"
    if path.is_file():
        engine = deserialize(path.read_bytes())
        if engine is not None:
            return engine, path
    plan = build_serialized_engine(spec)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(plan)
    tmp.replace(path)
    engine = deserialize(plan)
    if engine is None:
        raise ExportError("TensorRT could not deserialize the engine it just built")
    return engine, path
