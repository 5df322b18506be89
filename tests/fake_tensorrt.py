"""An in-process stand-in for TensorRT 10 and cuda-python, for exercising our TensorRT code paths.

TensorRT cannot be installed here (no NVIDIA index, no GPU), so this fake implements just the API
surface Backdrop calls, with the semantics documented for TensorRT 10: named I/O tensors, an
optimisation profile, ``set_input_shape`` / ``set_tensor_address`` returning bool, ``execute_async_v3``
reading and writing raw device pointers. "Device" memory is host memory from ctypes, and the engine
computes with onnxruntime, so results are real numbers, not canned ones. It proves our buffer, shape
and caching logic against the documented contract — not that real TensorRT accepts it.
"""

from __future__ import annotations

import ctypes
import enum
import importlib.machinery
import json
import types

import numpy as np

_allocations: dict[int, ctypes.Array] = {}


def _cuda_module() -> types.ModuleType:
    cudart = types.ModuleType("cudart")

    class cudaError_t(enum.IntEnum):
        cudaSuccess = 0
        cudaErrorInvalidValue = 1

    class cudaMemcpyKind(enum.IntEnum):
        cudaMemcpyHostToDevice = 1
        cudaMemcpyDeviceToHost = 2

    def malloc(nbytes):
        buffer = (ctypes.c_byte * nbytes)()
        _allocations[ctypes.addressof(buffer)] = buffer
        return cudaError_t.cudaSuccess, ctypes.addressof(buffer)

    def free(ptr):
        return (cudaError_t.cudaSuccess,) if _allocations.pop(ptr, None) is not None else (cudaError_t(1),)

    def memcpy_async(dst, src, nbytes, kind, stream):
        ctypes.memmove(dst, src, nbytes)
        return (cudaError_t.cudaSuccess,)

    props = types.SimpleNamespace(name=b"Fake GPU 80GB")
    cudart.cudaError_t = cudaError_t
    cudart.cudaMemcpyKind = cudaMemcpyKind
    cudart.cudaMalloc = malloc
    cudart.cudaMallocHost = malloc
    cudart.cudaFree = free
    cudart.cudaFreeHost = free
    cudart.cudaMemcpyAsync = memcpy_async
    cudart.cudaStreamCreate = lambda: (cudaError_t.cudaSuccess, 7)
    cudart.cudaStreamDestroy = lambda stream: (cudaError_t.cudaSuccess,)
    cudart.cudaStreamSynchronize = lambda stream: (cudaError_t.cudaSuccess,)
    cudart.cudaGetDeviceCount = lambda: (cudaError_t.cudaSuccess, 1)
    cudart.cudaGetDeviceProperties = lambda device: (cudaError_t.cudaSuccess, props)
    cudart.cudaGetErrorName = lambda err: (cudaError_t.cudaSuccess, b"cudaErrorInvalidValue")
    return cudart


def _tensorrt_module(version: str, stats: dict[str, int]) -> types.ModuleType:
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version

    class TensorIOMode(enum.Enum):
        INPUT = 1
        OUTPUT = 2

    class Logger:
        WARNING = 2

        def __init__(self, severity):
            self.severity = severity

    class MemoryPoolType(enum.Enum):
        WORKSPACE = 0

    class BuilderFlag(enum.Enum):
        FP16 = 0

    class Network:
        onnx = b""

    class OnnxParser:
        def __init__(self, network, logger):
            self.network, self.num_errors = network, 0

        def parse(self, data):
            if not data.startswith(b"\x08"):  # every ONNX ModelProto starts with field 1 (ir_version)
                self.num_errors = 1
                return False
            self.network.onnx = data
            return True

        def get_error(self, i):
            return "ModelImporter: not an ONNX model"

    class Profile:
        def set_shape(self, name, lo, opt, hi):
            self.shapes = {name: (tuple(lo), tuple(opt), tuple(hi))}

    class Config:
        def __init__(self):
            self.flags, self.profiles = set(), []

        def set_memory_pool_limit(self, pool, size):
            self.workspace = size

        def set_flag(self, flag):
            self.flags.add(flag)

        def add_optimization_profile(self, profile):
            self.profiles.append(profile)

    class Builder:
        def __init__(self, logger):
            pass

        def create_network(self, flags):
            return Network()

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            return Profile()

        def build_serialized_network(self, network, config):
            stats["builds"] += 1
            header = {"version": version, "profile": {k: v for p in config.profiles for k, v in p.shapes.items()}}
            return json.dumps(header).encode() + b"\n" + network.onnx

    class Engine:
        def __init__(self, header, onnx_bytes):
            import onnxruntime as ort

            self.session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
            self.profile = {k: tuple(map(tuple, v)) for k, v in header["profile"].items()}
            self.names = [self.session.get_inputs()[0].name, self.session.get_outputs()[0].name]
            self.num_io_tensors = 2

        def get_tensor_name(self, i):
            return self.names[i]

        def get_tensor_mode(self, name):
            return TensorIOMode.INPUT if name == self.names[0] else TensorIOMode.OUTPUT

        def get_tensor_profile_shape(self, name, profile_index):
            return self.profile[name]

        def create_execution_context(self):
            return Context(self)

    class Context:
        def __init__(self, engine):
            self.engine, self.addresses, self.shape = engine, {}, None

        def set_input_shape(self, name, shape):
            lo, _, hi = self.engine.profile[name]
            if not all(a <= s <= b for a, s, b in zip(lo, shape, hi, strict=True)):
                return False
            self.shape = tuple(shape)
            return True

        def set_tensor_address(self, name, ptr):
            self.addresses[name] = ptr
            return name in self.engine.names

        def execute_async_v3(self, stream):
            stats["executions"] += 1
            inp, out = self.engine.names
            count = int(np.prod(self.shape))
            source = (ctypes.c_float * count).from_address(self.addresses[inp])
            batch = np.ctypeslib.as_array(source).reshape(self.shape)
            (result,) = self.engine.session.run([out], {inp: batch})
            ctypes.memmove(self.addresses[out], result.ctypes.data, result.nbytes)
            return True

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, plan):
            header_line, onnx_bytes = bytes(plan).split(b"\n", 1)
            header = json.loads(header_line)
            return Engine(header, onnx_bytes) if header["version"] == version else None

    for name, value in dict(locals()).items():
        if isinstance(value, type):
            setattr(trt, name, value)
    return trt


def install(monkeypatch, version: str = "10.8.0") -> dict[str, int]:
    """Make ``import tensorrt`` and ``from cuda.bindings import runtime`` return the fakes; returns counters."""
    import sys

    stats = {"builds": 0, "executions": 0}
    cudart = _cuda_module()
    trt = _tensorrt_module(version, stats)
    trt.__spec__ = importlib.machinery.ModuleSpec("tensorrt", None)
    cuda = types.ModuleType("cuda")
    cuda.__spec__ = importlib.machinery.ModuleSpec("cuda", None, is_package=True)
    bindings = types.ModuleType("cuda.bindings")
    bindings.runtime = cudart
    cuda.bindings = bindings
    cuda.__path__ = []  # a package, so find_spec("cuda") succeeds
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setitem(sys.modules, "cuda", cuda)
    monkeypatch.setitem(sys.modules, "cuda.bindings", bindings)
    monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", cudart)
    for module in ("backdrop.model.runtimes.cuda_runtime", "backdrop.model.runtimes.tensorrt_runtime"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    return stats
