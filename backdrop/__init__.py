"""Backdrop: real-time background replacement for live video.

Everything installs under this one name: ``backdrop.stream`` (sources, stages, compositing, sinks),
``backdrop.model`` (the Keras segmenter, export, runtimes, training) and ``backdrop.benchmarks``.
"""

from __future__ import annotations

from importlib import metadata

try:
    __version__ = metadata.version("backdrop")
except metadata.PackageNotFoundError:  # imported from a checkout that was never installed
    __version__ = "0+unknown"
