"""Engines run the streams of a ServeConfig; the control API and ``backdrop serve`` talk only to ``Engine``.

``LocalEngine`` runs every stream in this process: one model in memory behind a BatchingSegmenter, each
stream a Pipeline on its own supervisor thread (stream/serve/runner.py). The Ray engine implements the
same protocol by running local engines in actors.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Mapping
from typing import Any, Protocol

from backdrop.errors import ConfigError
from backdrop.model.segmenter import Segmenter, load_segmenter
from backdrop.stream.config.serve import ServeConfig, StreamConfig
from backdrop.stream.core.figures import StreamFigures, sum_figures
from backdrop.stream.core.pipeline import CLOSE_GRACE_S, STOP_GRACE_S
from backdrop.stream.core.stats import peak_rss_mb
from backdrop.stream.serve.batching import BatchingSegmenter
from backdrop.stream.serve.runner import StreamRunner

PARALLEL_RUNTIMES = ("onnxruntime",)  # whose sessions may be called from several threads at once
STOP_TIMEOUT_S = STOP_GRACE_S + CLOSE_GRACE_S + 1.0  # a pipeline's stop is over within its two graces


class Engine(Protocol):
    """What runs the streams: started once, streams added and removed while it runs, figures on demand."""

    def start(self) -> None: ...

    def add(self, stream: StreamConfig) -> None: ...

    def remove(self, name: str) -> None: ...

    def streams(self) -> list[StreamFigures]: ...

    def totals(self) -> dict[str, Any]: ...

    def stop(self) -> None: ...

    def wait(self, timeout: float | None = None) -> bool: ...


def engine_totals(streams: list[StreamFigures], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``totals()`` of every engine: the streams' sum, then what the engine itself adds (batching, memory)."""
    return {**dataclasses.asdict(sum_figures(streams)), **extra}


class LocalEngine:
    """Every stream in this process, sharing one model through cross-stream batches.

    It changes no process-wide setting: the process's owner applies stream/serve/tuning.py's FOR_STREAMS.
    """

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
        loaded = load_segmenter(model.name, model.runtime, threads=model.threads)
        if options.inference_workers > 1 and loaded.name not in PARALLEL_RUNTIMES:
            loaded.close()
            raise ConfigError(
                f"serve.inference_workers: more than 1 needs a runtime that runs calls in parallel "
                f"({', '.join(PARALLEL_RUNTIMES)}), not {loaded.name}"
            )
        self._model = loaded
        self._batcher = batcher = BatchingSegmenter(
            loaded,
            batch_size=model.batch_size,
            wait_s=options.batch_wait_ms / 1000.0,
            workers=options.inference_workers,
        )
        with self._lock:
            for stream in self.config.streams:
                self._launch(stream, batcher)

    def add(self, stream: StreamConfig) -> None:
        """Start one more stream; ConfigError when its name is taken or its outputs clash with another stream's."""
        with self._lock:
            self.config = self.config.with_stream(stream)
            if self._batcher is not None:
                self._launch(stream, self._batcher)

    def remove(self, name: str) -> None:
        """Stop one stream (its outputs are closed properly) and forget it."""
        with self._lock:
            self.config = self.config.without(name)  # ConfigError("no stream named …")
            runner = self._runners.pop(name, None)
        if runner is not None:
            runner.stop()
            runner.join(STOP_TIMEOUT_S)

    def streams(self) -> list[StreamFigures]:
        with self._lock:
            runners = list(self._runners.values())
        return [runner.figures() for runner in runners]

    def totals(self) -> dict[str, Any]:
        batching = self._batcher.stats() if self._batcher is not None else {}
        return engine_totals(self.streams(), {**batching, "peak_rss_mb": peak_rss_mb()})

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

    def _launch(self, stream: StreamConfig, batcher: BatchingSegmenter) -> None:
        runner = StreamRunner(
            stream.name,
            stream.apply(self.config.defaults),
            batcher,
            self.config.serve,
            max_frames=self.max_frames,
            config_path=self.config.path,
        )
        self._runners[stream.name] = runner
        runner.start()
