"""Native TensorRT 10 segmenter: named I/O tensors, set_input_shape, set_tensor_address, execute_async_v3.

Buffers are allocated once at the optimisation profile's maximum batch (device memory plus pinned host
memory) and reused; each call copies in, executes and copies out on one non-default CUDA stream.
Written to the TensorRT 10 API; CI has no TensorRT or GPU, so this path is not exercised there.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from backdrop.errors import BackdropError, RuntimeUnavailable
from backdrop.model.contract import ModelFiles
from backdrop.model.extras import require_modules
from backdrop.model.segmenter import Segmenter
from backdrop.model.tensorrt_engine import TENSORRT_HINT, EngineSpec, cuda_call, import_tensorrt, load_or_build_engine


class _HostDeviceBuffer:
    """A pinned host array and a device allocation of the same size."""

    def __init__(self, shape: tuple[int, ...], dtype: npt.DTypeLike) -> None:
        from backdrop.model.runtimes.cuda_runtime import cudart

        self.nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        host_ptr = cuda_call(cudart.cudaMallocHost(self.nbytes))
        buffer = (np.ctypeslib.as_ctypes_type(dtype) * int(np.prod(shape))).from_address(host_ptr)
        self.host = np.ctypeslib.as_array(buffer).reshape(shape)
        self.host_ptr = host_ptr
        self.device_ptr = cuda_call(cudart.cudaMalloc(self.nbytes))

    def free(self) -> None:
        from backdrop.model.runtimes.cuda_runtime import cudart

        cuda_call(cudart.cudaFree(self.device_ptr))
        cuda_call(cudart.cudaFreeHost(self.host_ptr))


class TensorRTSegmenter(Segmenter):
    name = "tensorrt"

    @staticmethod
    def require() -> None:
        require_modules("tensorrt", "cuda", purpose="the tensorrt runtime", hint=TENSORRT_HINT)
        import_tensorrt()
        from backdrop.model.runtimes.cuda_runtime import cudart

        count = cuda_call(cudart.cudaGetDeviceCount()) if hasattr(cudart, "cudaGetDeviceCount") else 0
        if not count:
            raise RuntimeUnavailable("the tensorrt runtime needs an NVIDIA GPU, and none is visible")

    def __init__(self, files: ModelFiles, *, threads: int | None = None, max_batch: int = 8) -> None:
        super().__init__(files, threads=threads)
        from backdrop.model.runtimes.cuda_runtime import cudart

        trt = import_tensorrt()
        spec = EngineSpec(files.require(".onnx"), self.contract.input_name, self.contract.input_size, max_batch)
        self.engine, self.engine_path = load_or_build_engine(spec)
        self.context = self.engine.create_execution_context()
        if self.context is None:
            raise BackdropError("TensorRT could not create an execution context")
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if inputs != [self.contract.input_name] or outputs != [self.contract.output_name]:
            raise BackdropError(f"engine tensors {inputs} → {outputs} do not match the model contract")
        _, _, max_shape = self.engine.get_tensor_profile_shape(self.contract.input_name, 0)
        self.max_batch = int(max_shape[0])
        h, w = self.contract.input_size
        self.stream = cuda_call(cudart.cudaStreamCreate())
        self.input = _HostDeviceBuffer((self.max_batch, h, w, 3), np.float32)
        self.output = _HostDeviceBuffer((self.max_batch, h, w, 1), np.float32)
        for name, buffer in ((self.contract.input_name, self.input), (self.contract.output_name, self.output)):
            if not self.context.set_tensor_address(name, int(buffer.device_ptr)):
                raise BackdropError(f"TensorRT rejected the device address of tensor {name!r}")

    def segment(self, batch: np.ndarray) -> np.ndarray:
        batch = self.check_batch(batch)
        return np.concatenate([self._run(batch[i : i + self.max_batch]) for i in range(0, len(batch), self.max_batch)])

    def _run(self, batch: np.ndarray) -> np.ndarray:
        from backdrop.model.runtimes.cuda_runtime import cudart

        n = batch.shape[0]
        if not self.context.set_input_shape(self.contract.input_name, batch.shape):
            raise BackdropError(f"TensorRT rejected input shape {batch.shape} for tensor {self.contract.input_name!r}")
        self.input.host[:n] = batch
        in_bytes, out_bytes = batch.nbytes, n * self.output.nbytes // self.max_batch
        h2d, d2h = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        cuda_call(cudart.cudaMemcpyAsync(self.input.device_ptr, self.input.host_ptr, in_bytes, h2d, self.stream))
        if not self.context.execute_async_v3(self.stream):
            raise BackdropError("TensorRT execute_async_v3 failed")
        cuda_call(cudart.cudaMemcpyAsync(self.output.host_ptr, self.output.device_ptr, out_bytes, d2h, self.stream))
        cuda_call(cudart.cudaStreamSynchronize(self.stream))
        return self.output.host[:n, ..., 0].copy()

    def close(self) -> None:
        from backdrop.model.runtimes.cuda_runtime import cudart

        if getattr(self, "stream", None) is None:
            return
        self.input.free()
        self.output.free()
        cuda_call(cudart.cudaStreamDestroy(self.stream))
        self.stream = None
