"""Engines run the streams of a ServeConfig; the control API and ``backdrop serve`` talk only to ``Engine``.

``LocalEngine`` runs every stream in this process: one model in memory behind a BatchingSegmenter, each
stream a Pipeline on its own supervisor thread (stream/serve/runner.py). The Ray engine implements the
same protocol by running local engines in actors.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, Protocol

import cv2

from backdrop.errors import ConfigError
from backdrop.model.segmenter import Segmenter, load_segmenter
from backdrop.stream.config.serve import ServeConfig, StreamConfig
from backdrop.stream.core.pipeline import CLOSE_GRACE_S, STOP_GRACE_S
from backdrop.stream.core.stats import peak_rss_mb
from backdrop.stream.serve.batching import BatchingSegmenter
from backdrop.stream.serve.runner import StreamRunner

PARALLEL_RUNTIMES = ("onnxruntime",)  # whose sessions may be called from several threads at once
SWITCH_INTERVAL_S = 0.001  # Python's default is 0.005
STOP_TIMEOUT_S = STOP_GRACE_S + CLOSE_GRACE_S + 1.0  # a pipeline's stop is over within its two graces


class Engine(Protocol):
    """What runs the streams: started once, streams added and removed while it runs, figures on demand."""

    def start(self) -> None: ...

    def add(self, stream: StreamConfig) -> None: ...

    def remove(self, name: str) -> None: ...

    def streams(self) -> list[dict[str, Any]]: ...

    def totals(self) -> dict[str, Any]: ...

    def stop(self) -> None: ...

    def wait(self, timeout: float | None = None) -> bool: ...


def sum_totals(streams: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over per-stream figures: the part of ``totals()`` every engine shares."""
    states = [s["state"] for s in streams]
    return {
        "streams": len(streams),
        "running": sum(state in ("running", "reconnecting") for state in states),
        "failed": sum(state == "failed" for state in states),
        "fps_out": round(sum(s["fps_out"] for s in streams), 2),
        "frames_out": sum(s["frames_out"] for s in streams),
        "dropped": sum(s["dropped"] for s in streams),
        "reconnects": sum(s["reconnects"] for s in streams),
        "restarts": sum(s["restarts"] for s in streams),
    }


def tune_for_streams() -> None:
    """Process-wide settings for many streams in one process (README "Serving many streams" has the numbers).

    The streams already keep the cores busy, so OpenCV's own worker pool only adds hand-offs between threads
    and cold caches. Every stream's threads take the interpreter lock dozens of times per frame, between
    short OpenCV calls; a shorter switch interval makes one stuck behind another thread's Python give way
    sooner.
    """
    cv2.setNumThreads(1)
    sys.setswitchinterval(SWITCH_INTERVAL_S)


class LocalEngine:
    """Every stream in this process, sharing one model through cross-stream batches."""

    def __init__(self, config: ServeConfig, *, max_frames: int | None = None) -> None:
        self.config = config
        self.max_frames = max_frames
        self._runners: dict[str, StreamRunner] = {}
        self._lock = threading.Lock()
        self._model: Segmenter | None = None
        self._batcher: BatchingSegmenter | None = None

    def start(self) -> None:
        """Load the one model and start every stream; returns at once (streams connect on their own threads)."""
        model = self.config.defaults.model
        options = self.config.serve
        tune_for_streams()
        loaded = load_segmenter(model.name, model.runtime, threads=model.threads)
        if options.inference_workers > 1 and loaded.name not in PARALLEL_RUNTIMES:
            loaded.close()
            raise ConfigError(
                f"serve.inference_workers: more than 1 needs a runtime that runs calls in parallel "
                f"({', '.join(PARALLEL_RUNTIMES)}), not {loaded.name}"
            )
        self._model = loaded
        self._batcher = BatchingSegmenter(
            loaded,
            batch_size=model.batch_size,
            wait_s=options.batch_wait_ms / 1000.0,
            workers=options.inference_workers,
        )
        with self._lock:
            for stream in self.config.streams:
                self._launch(stream)

    def add(self, stream: StreamConfig) -> None:
        """Start one more stream; ConfigError when its name is taken or its outputs clash with another stream's."""
        with self._lock:
            self.config = self.config.with_stream(stream)
            if self._batcher is not None:
                self._launch(stream)

    def remove(self, name: str) -> None:
        """Stop one stream (its outputs are closed properly) and forget it."""
        with self._lock:
            self.config = self.config.without(name)  # ConfigError("no stream named …")
            runner = self._runners.pop(name, None)
        if runner is not None:
            runner.stop()
            runner.join(STOP_TIMEOUT_S)

    def streams(self) -> list[dict[str, Any]]:
        with self._lock:
            runners = list(self._runners.values())
        return [runner.figures() for runner in runners]

    def totals(self) -> dict[str, Any]:
        totals = sum_totals(self.streams())
        if self._batcher is not None:
            totals.update(self._batcher.stats())
        totals["peak_rss_mb"] = peak_rss_mb()
        return totals

    def stop(self) -> None:
        """Stop every stream gracefully, then release the model."""
        with self._lock:
            runners = list(self._runners.values())
        for runner in runners:
            runner.stop()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for runner in runners:
            runner.join(max(0.0, deadline - time.monotonic()))
        if self._batcher is not None:
            self._batcher.close()
        if self._model is not None:
            self._model.close()

    def wait(self, timeout: float | None = None) -> bool:
        """True once every stream has ended (finished or stopped); False if some still run after ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            runners = list(self._runners.values())
        for runner in runners:
            if not runner.join(None if deadline is None else max(0.0, deadline - time.monotonic())):
                return False
        return True

    def _launch(self, stream: StreamConfig) -> None:
        runner = StreamRunner(
            stream.name,
            stream.apply(self.config.defaults),
            self._batcher,
            self.config.serve,
            max_frames=self.max_frames,
            config_path=self.config.path,
        )
        self._runners[stream.name] = runner
        runner.start()
