"""Wires a source, a segmenter, a background and sinks into the threaded pipeline and runs it to the end.

Start-up does everything that can fail fast on the caller's thread (first frame, background, sinks) before
any thread starts. Then the caller's thread only waits: a first Ctrl-C (or ``request_stop``) stops reading
and lets frames in flight reach the sinks; a second one, or any stage's exception, stops at once. Sinks are
closed in every case, so files are always finished, and the first error is re-raised.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from backdrop.errors import SourceError
from backdrop.model.segmenter import Segmenter
from backdrop.stream.compositing.backgrounds import Background
from backdrop.stream.config import MaskConfig
from backdrop.stream.frame import Frame
from backdrop.stream.queues import StageQueue
from backdrop.stream.sinks.base import Sink
from backdrop.stream.sources.base import Source
from backdrop.stream.stages import CaptureStage, Control, InferenceStage, SinkStage, Stage, Work
from backdrop.stream.stats import RunStats
from backdrop.stream.steps import Compositor, Infer, choose_layout, conform

JOIN_TIMEOUT_S = 5.0  # after a failure, how long to wait for stages stuck in a blocking call
SINK_STATS_INTERVAL_S = 1.0

ProgressCallback = Callable[[dict[str, Any], bool], None]


class Pipeline:
    """One run: ``run()`` returns the final stats or raises the first error of any stage."""

    def __init__(
        self,
        source: Source,
        segmenter: Segmenter,
        background: Background,
        sinks: Sequence[Sink],
        *,
        mask: MaskConfig | None = None,
        batch_size: int = 1,
        queue_size: int = 4,
        max_frames: int | None = None,
        on_progress: ProgressCallback | None = None,
        progress_interval_s: float = 0.5,
    ) -> None:
        self.source = source
        self.segmenter = segmenter
        self.background = background
        self.sinks = list(sinks)
        self.mask = mask or MaskConfig()
        self.batch_size = batch_size
        self.queue_size = queue_size
        self.max_frames = max_frames
        self.on_progress = on_progress
        self.progress_interval_s = progress_interval_s
        self.control = Control()
        self.control.stop_hooks.append(source.interrupt)
        self.stats = RunStats(frame_count=self._expected_frames(), counters=[source, *self.sinks])

    def _expected_frames(self) -> int | None:
        total = self.source.frame_count
        if self.max_frames is not None:
            return self.max_frames if total is None else min(total, self.max_frames)
        return total

    def request_stop(self) -> None:
        """Graceful stop: no new frames are read; those in flight are written. Safe from signal handlers."""
        self.control.request_stop()

    def abort(self, error: BaseException) -> None:
        """Immediate stop with ``error`` as the run's outcome."""
        self.control.fail(error)

    def layout(self) -> str:
        """I420 when the source decodes to it and the background and every sink work in it, else BGR."""
        return choose_layout(self.source.layout, [self.background.layouts, *(sink.layouts for sink in self.sinks)])

    def run(self) -> dict[str, Any]:
        first = self.source.read()
        if first is None:
            raise SourceError(f"{self.source.describe()} produced no frames")
        layout = self.layout()
        width, height = first.size
        self.background.open(width, height, layout)
        opened: list[Sink] = []
        try:
            for sink in self.sinks:
                sink.open(width, height, self.source.fps)
                opened.append(sink)
            compositor = Compositor(self.mask, self.background, width, height, layout)
            self._run_stages(self._build(first, layout, compositor))
        finally:
            self._close(opened)
        if self.control.error is not None:
            raise self.control.error
        final = self.stats.snapshot()
        self._report(final, final=True)
        return final

    def _build(self, first: Frame, layout: str, compositor: Compositor) -> list[Stage]:
        """The stage threads and their queues: each stage calls one step and hands its result on."""
        drop = self.source.live

        def queue(name: str) -> StageQueue:
            q = StageQueue(name, self.queue_size, drop_oldest=drop)
            self.stats.queues.append(q)
            self.control.queues.append(q)
            return q

        def preprocess(work: Work) -> Work:
            work.tensor = infer.preprocess(work.frame)
            return work

        infer = Infer(self.segmenter)
        common = {"control": self.control, "stats": self.stats}
        to_pre, to_infer, to_compose = queue("preprocess"), queue("inference"), queue("composite")
        to_sinks = [queue(f"write:{sink.describe()}") for sink in self.sinks]
        capture_limit = None if drop else self.max_frames
        return [
            CaptureStage(
                self.source,
                first,
                lambda frame: conform(frame, layout),
                outboxes=[to_pre],
                limit=capture_limit,
                **common,
            ),
            Stage("preprocess", preprocess, inbox=to_pre, outboxes=[to_infer], **common),
            InferenceStage(infer.masks, self.batch_size, inbox=to_infer, outboxes=[to_compose], **common),
            Stage("composite", self._composite(compositor), inbox=to_compose, outboxes=to_sinks, **common),
            *(
                SinkStage(sink, limit=self.max_frames, inbox=q, **common)
                for sink, q in zip(self.sinks, to_sinks, strict=True)
            ),
        ]

    def _composite(self, compositor: Compositor) -> Callable[[Work], Frame]:
        def composite(work: Work) -> Frame:
            output = compositor(work.frame, work.mask)
            self.stats.frames_composited += 1
            return output

        return composite

    def _run_stages(self, stages: list[Stage]) -> None:
        self.control.running = len(stages)
        for stage in stages:
            stage.start()
        reporter_stop = threading.Event()
        reporter = threading.Thread(target=self._report_loop, args=(reporter_stop,), name="backdrop-stats", daemon=True)
        reporter.start()
        try:
            self._wait()
        finally:
            reporter_stop.set()
            reporter.join()

    def _wait(self) -> None:
        """Block until every stage has finished (or, after a failure, until JOIN_TIMEOUT_S has passed)."""
        control = self.control
        deadline: float | None = None
        while True:
            try:
                with control.finished:
                    if not control.running:
                        return
                    if control.error is not None and deadline is None:
                        deadline = time.monotonic() + JOIN_TIMEOUT_S
                    if deadline is not None and time.monotonic() >= deadline:
                        return  # a stage is stuck in a blocking call; its daemon thread is abandoned
                    control.finished.wait(None if deadline is None else deadline - time.monotonic())
            except KeyboardInterrupt as e:  # only when the caller installed no signal handler
                if control.stop_requested.is_set():
                    control.fail(e)
                control.request_stop()

    def _report_loop(self, stop: threading.Event) -> None:
        last_sink_update = 0.0
        while not stop.wait(self.progress_interval_s):
            snapshot = self.stats.snapshot()
            self._report(snapshot, final=False)
            if time.monotonic() - last_sink_update >= SINK_STATS_INTERVAL_S:
                last_sink_update = time.monotonic()
                for sink in self.sinks:
                    sink.update_stats(snapshot)

    def _report(self, snapshot: dict[str, Any], *, final: bool) -> None:
        if self.on_progress is not None:
            self.on_progress(snapshot, final)

    def _close(self, sinks: list[Sink]) -> None:
        """Close every opened sink and the background; a close failure is reported unless an error came first."""
        for closable in [*sinks, self.background]:
            try:
                closable.close()
            except Exception as e:  # keep closing the others, then report the first failure
                if self.control.error is None:
                    self.control.error = e
