"""One interface over every inference runtime, and a registry that maps runtime names to classes.

Heavy imports (onnxruntime, TensorFlow, LiteRT, TensorRT) happen only inside each runtime's module,
which the registry imports on demand, so importing Backdrop never pulls in TensorFlow.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from types import TracebackType

import numpy as np

from backdrop.errors import BackdropError, RuntimeUnavailable
from backdrop.model.contract import ModelContract, ModelFiles, resolve_model

# name -> (module, class); ordered fastest-first on a CPU machine, which `auto` relies on.
RUNTIMES: dict[str, tuple[str, str]] = {
    "tensorrt": ("backdrop.model.runtimes.tensorrt_runtime", "TensorRTSegmenter"),
    "onnxruntime": ("backdrop.model.runtimes.onnx_runtime", "OnnxSegmenter"),
    "tflite": ("backdrop.model.runtimes.tflite_runtime", "TFLiteSegmenter"),
    "keras": ("backdrop.model.runtimes.keras_runtime", "KerasSegmenter"),
}


class Segmenter(ABC):
    """Person segmentation: a batch of RGB frames at the model's input size in, masks in [0, 1] out."""

    name: str = ""

    def __init__(self, files: ModelFiles, *, threads: int | None = None) -> None:
        self.files = files
        self.contract: ModelContract = files.contract
        self.threads = threads

    @staticmethod
    @abstractmethod
    def require() -> None:
        """Raise RuntimeUnavailable (naming what to install) unless this runtime can run here.

        Checks presence without importing heavy frameworks where possible, so probing is cheap.
        """

    @abstractmethod
    def segment(self, batch: np.ndarray) -> np.ndarray:
        """``batch``: N×H×W×3 float32 RGB in [0, 1] at the contract's size → N×H×W float32 in [0, 1]."""

    def close(self) -> None:
        """Free runtime resources; the default has none."""

    def check_batch(self, batch: np.ndarray) -> np.ndarray:
        """Reject a batch of the wrong shape with an error that names the expected one."""
        h, w = self.contract.input_size
        if batch.ndim != 4 or batch.shape[1:] != (h, w, 3):
            raise BackdropError(f"{self.name}: expected a batch of shape N×{h}×{w}×3, got {batch.shape}")
        return np.ascontiguousarray(batch, dtype=np.float32)

    def __enter__(self) -> Segmenter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def runtime_class(name: str) -> type[Segmenter]:
    """Import one runtime's class; a missing dependency becomes RuntimeUnavailable."""
    if name not in RUNTIMES:
        known = ", ".join([*RUNTIMES, "auto"])
        raise RuntimeUnavailable(f"unknown runtime {name!r}: choose one of {known}")
    module_name, class_name = RUNTIMES[name]
    module = importlib.import_module(module_name)
    cls: type[Segmenter] = getattr(module, class_name)
    cls.require()
    return cls


def available_runtimes() -> dict[str, str]:
    """Every runtime mapped to "" when usable here, else the reason it is not."""
    status = {}
    for name in RUNTIMES:
        try:
            runtime_class(name)
            status[name] = ""
        except RuntimeUnavailable as e:
            status[name] = str(e)
    return status


def load_segmenter(model: str = "general", runtime: str = "auto", *, threads: int | None = None) -> Segmenter:
    """Open ``model`` (general, landscape or a path) on ``runtime`` (a name from RUNTIMES, or auto)."""
    files = resolve_model(model)
    if runtime == "auto":
        reasons = []
        for name in RUNTIMES:
            try:
                return runtime_class(name)(files, threads=threads)
            except RuntimeUnavailable as e:
                reasons.append(str(e))
        raise RuntimeUnavailable("no inference runtime is usable: " + "; ".join(reasons))
    return runtime_class(runtime)(files, threads=threads)
