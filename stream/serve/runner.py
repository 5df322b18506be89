"""One stream of ``backdrop serve``: its Pipeline on its own supervisor thread, restarted with backoff when it fails.

The stream is exactly a ``backdrop run`` pipeline (open_pipeline) that is handed the shared model. Whatever
happens to it — a source that never connects, an outage, an exception in a stage — stays on this thread: the
error is kept as the stream's last error line, the stream waits out its backoff and starts again, and the
other streams never notice. Figures add up over restarts, so a restarted stream does not lose its history.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from backdrop.model.segmenter import Segmenter
from backdrop.stream.config.run import RunConfig
from backdrop.stream.config.serve import ServeOptions
from backdrop.stream.core.assemble import open_pipeline
from backdrop.stream.core.backoff import Backoff
from backdrop.stream.core.figures import StreamFigures, StreamState
from backdrop.stream.core.pipeline import Pipeline

log = logging.getLogger("backdrop")

HEALTHY_S = 30.0  # a stream that ran this long before failing starts its backoff afresh


class StreamRunner:
    """Runs one stream until it ends (FINISHED), is stopped (STOPPED) or forever, restarting it on failure."""

    def __init__(
        self,
        name: str,
        config: RunConfig,
        segmenter: Segmenter,
        options: ServeOptions,
        *,
        max_frames: int | None = None,
        config_path: Path | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.segmenter = segmenter
        self.options = options
        self.max_frames = max_frames if max_frames is not None else config.pipeline.max_frames
        self.config_path = config_path
        self.state = StreamState.STARTING
        self.error: str | None = None
        self.restarts = 0
        self._past = StreamFigures(name)  # the counters of the attempts that ended
        self._last: Mapping[str, Any] = {}  # the latest attempt's final snapshot
        self._pipeline: Pipeline | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._supervise, name=f"backdrop-serve-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Graceful stop: the running pipeline finishes the frames in flight and closes its outputs."""
        self._stop.set()
        with self._lock:
            pipeline = self._pipeline
        if pipeline is not None:
            pipeline.request_stop()

    def join(self, timeout: float | None = None) -> bool:
        """True once the stream's thread has ended (or never started)."""
        if self._thread.ident is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def figures(self) -> StreamFigures:
        """The stream's live figures, as ``GET /streams`` and ``--stats-json`` show them."""
        with self._lock:
            pipeline, past, last, state = self._pipeline, self._past, self._last, self.state
        now = pipeline.stats.snapshot() if pipeline is not None else last
        if state is StreamState.RUNNING and pipeline is not None and not pipeline.source.connected:
            state = StreamState.RECONNECTING
        running = StreamFigures.of_run(self.name, now if pipeline is not None else {}, state, error=self.error)
        latest = StreamFigures.of_run(self.name, now, state)  # an ended attempt's rates stay on show
        return dataclasses.replace(
            running.after(past),
            restarts=self.restarts,
            fps_in=latest.fps_in,
            fps_out=latest.fps_out,
            latency_p50_ms=latest.latency_p50_ms,
            latency_p95_ms=latest.latency_p95_ms,
        )

    def _supervise(self) -> None:
        backoff = Backoff(initial_s=self.options.restart_initial_s, max_s=self.options.restart_max_s)
        while not self._stop.is_set():
            left = None if self.max_frames is None else self.max_frames - self._past.frames_out
            if left is not None and left <= 0:
                break
            started = time.monotonic()
            played = False
            try:
                with open_pipeline(
                    self._attempt_config(left), config_path=self.config_path, segmenter=self.segmenter
                ) as p:
                    if self._begin(p):  # not stopped while it was opening
                        played = True
                        self._end(p.run())
                break  # the source ended, the frame limit was reached, or the stream was stopped
            except Exception as e:  # any failure stays in this stream: note it, wait, start again
                self._end(None)
                self.error = str(e).splitlines()[0] if str(e) else type(e).__name__
                if self._stop.is_set():
                    break
                if time.monotonic() - started >= HEALTHY_S:
                    backoff.reset()
                delay = backoff.next_delay()
                self.restarts += 1
                self.state = StreamState.RESTARTING if played else StreamState.RETRYING
                log.warning("stream %s: %s; restarting in %.1f s", self.name, self.error, delay)
                self._stop.wait(delay)
        self.state = StreamState.STOPPED if self._stop.is_set() else StreamState.FINISHED

    def _attempt_config(self, left: int | None) -> RunConfig:
        """The run config of the next attempt: the frames still to write, no per-attempt stats file, and one frame
        per model request — the shared batcher fills ``model.batch_size`` with frames of different streams, which a
        stream sending its own backlog as one request would crowd out."""
        pipeline = dataclasses.replace(self.config.pipeline, max_frames=left, stats_json=None, progress=False)
        model = dataclasses.replace(self.config.model, batch_size=1)
        return dataclasses.replace(self.config, pipeline=pipeline, model=model)

    def _begin(self, pipeline: Pipeline) -> bool:
        """Make ``pipeline`` the running one, unless the stream was stopped meanwhile (False)."""
        with self._lock:
            if self._stop.is_set():
                return False
            self._pipeline = pipeline
            self.state = StreamState.RUNNING
        return True

    def _end(self, final: Mapping[str, Any] | None) -> None:
        """Fold the attempt's counters into the stream's past (its final stats, else its last snapshot)."""
        with self._lock:
            pipeline, self._pipeline = self._pipeline, None
            if final is None and pipeline is not None:
                final = pipeline.stats.snapshot()
            if final is not None:
                self._past = StreamFigures.of_run(self.name, final, self.state).after(self._past)
                self._last = final
