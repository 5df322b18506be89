"""Backdrop: real-time background replacement for live video.

Everything installs under this one name: ``backdrop.stream`` (sources, stages, compositing, sinks),
``backdrop.model`` (the Keras segmenter, export, runtimes, training) and ``backdrop.benchmarks``.
The Python API below is imported on first use (PEP 562), so ``import backdrop`` loads neither OpenCV
nor a runtime.
"""

from __future__ import annotations

import importlib
from importlib import metadata
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from backdrop.api import Backdrop, frames, run
    from backdrop.errors import BackdropError
    from backdrop.model.segmenter import load_segmenter
    from backdrop.stream.config.run import MaskConfig, RunConfig, load_config
    from backdrop.stream.core.frame import Frame

try:
    __version__ = metadata.version("backdrop-video")
except metadata.PackageNotFoundError:  # imported from a checkout that was never installed
    __version__ = "0+unknown"

# public name -> the module that defines it
_EXPORTS = {
    "Backdrop": "backdrop.api",
    "run": "backdrop.api",
    "frames": "backdrop.api",
    "load_segmenter": "backdrop.model.segmenter",
    "load_config": "backdrop.stream.config.run",
    "RunConfig": "backdrop.stream.config.run",
    "MaskConfig": "backdrop.stream.config.run",
    "Frame": "backdrop.stream.core.frame",
    "BackdropError": "backdrop.errors",
}

__all__ = [
    "Backdrop",
    "BackdropError",
    "Frame",
    "MaskConfig",
    "RunConfig",
    "__version__",
    "frames",
    "load_config",
    "load_segmenter",
    "run",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'backdrop' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
