"""Wires a source, a segmenter, a background and sinks into the threaded pipeline and runs it to the end.

Start-up does everything that can fail fast on the caller's thread (first frame, background, sinks) before
any thread starts. Then the caller's thread only waits: a first Ctrl-C (or ``request_stop``) stops reading
and lets frames in flight reach the sinks; a second one (``abort``), or any stage's exception, stops at once.
A stop has a deadline, so a stage stuck in a call that never returns cannot keep the run alive: it is
abandoned and the outputs it was not writing to are still closed. The first error is re-raised.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

from backdrop.errors import SourceError
from backdrop.model.segmenter import Segmenter
from backdrop.stream.compositing.backgrounds import Background
from backdrop.stream.config.run import MaskConfig
from backdrop.stream.core.frame import Frame
from backdrop.stream.core.queues import StageQueue
from backdrop.stream.core.schedule import InferenceSchedule
from backdrop.stream.core.stages import (
    CaptureStage,
    InferenceStage,
    RunCoordinator,
    SinkStage,
    Stage,
    StageContext,
    Work,
)
from backdrop.stream.core.stats import RunStats
from backdrop.stream.core.steps import Compositor, Infer, choose_layout, conform
from backdrop.stream.sinks.base import Sink
from backdrop.stream.sources.base import Source

STOP_GRACE_S = 3.0  # after a stop request: how long the frames in flight may take to reach the sinks
CLOSE_GRACE_S = 1.0  # then how long the outputs may take to finish, so a stop is over within 4 s
JOIN_TIMEOUT_S = 5.0  # after a failure, how long to wait for stages stuck in a blocking call
# The waiter wakes at least this often: a signal that the kernel hands to another thread runs its Python handler
# only when the main thread next runs bytecode, and a lock wait without a timeout would postpone that forever.
SIGNAL_CHECK_S = 0.2
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
        interval: int | Literal["auto"] = 0,
        max_interval: int = 8,
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
        self.interval = interval
        self.max_interval = max_interval
        self.queue_size = queue_size
        self.max_frames = max_frames
        self.on_progress = on_progress
        self.progress_interval_s = progress_interval_s
        self.coordinator = RunCoordinator()
        self.coordinator.stop_hooks.append(source.interrupt)
        self.stats = RunStats(frame_count=self._expected_frames(), counters=[source, *self.sinks])
        self.unfinished: list[str] = []  # outputs a stopped run could not close: their stage or close hung

    def _expected_frames(self) -> int | None:
        total = self.source.frame_count
        if self.max_frames is not None:
            return self.max_frames if total is None else min(total, self.max_frames)
        return total

    def request_stop(self) -> None:
        """Graceful stop: no new frames are read; those in flight are written within STOP_GRACE_S, then the run is
        cut short. Safe from signal handlers."""
        self.coordinator.request_stop(STOP_GRACE_S)

    def abort(self, error: BaseException | None = None) -> None:
        """Immediate stop: frames in flight are dropped, outputs still closed; ``run()`` raises ``error`` if given."""
        if error is not None:
            self.coordinator.fail(error)
        self.coordinator.request_stop(0.0)

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
        stages: list[Stage] = []
        try:
            for sink in self.sinks:
                sink.use_source_description(self.source.describe())
                sink.open(width, height, self.source.fps)
                opened.append(sink)
            infer = Infer(self.segmenter, InferenceSchedule(self.interval, self.max_interval))
            compositor = Compositor(self.mask, self.background, width, height, layout, propagate=infer.skips)
            stages = self._build(first, layout, infer, compositor)
            self._run_stages(stages)
        finally:
            self._close(opened, stages)
        if self.coordinator.error is not None:
            raise self.coordinator.error
        final = self.stats.snapshot()
        final["unfinished"] = self.unfinished
        self._report(final, final=True)
        return final

    def _build(self, first: Frame, layout: str, infer: Infer, compositor: Compositor) -> list[Stage]:
        """The stage threads and their queues: each stage calls one step and hands its result on."""
        live = self.source.live

        def queue(name: str, drop: bool) -> StageQueue:
            q = StageQueue(name, self.queue_size, drop_oldest=drop)
            self.stats.queues.append(q)
            self.coordinator.queues.append(q)
            return q

        def preprocess(work: Work) -> Work:
            work.tensor = infer.preprocess(work.frame)
            return work

        common: StageContext = {"coordinator": self.coordinator, "stats": self.stats}
        # A live run that falls behind drops frames where they enter, before any work is spent on them; past
        # that the stages wait for each other. Each output drops on its own, so a slow one never stalls the rest.
        to_pre = queue("preprocess", drop=live)
        to_infer, to_compose = queue("inference", drop=False), queue("composite", drop=False)
        to_sinks = [queue(f"write:{sink.describe()}", drop=live) for sink in self.sinks]
        capture_limit = None if live else self.max_frames
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
        self.coordinator.running = len(stages)
        for stage in stages:
            stage.start()
        reporter_stop = threading.Event()
        reporter = threading.Thread(target=self._report_loop, args=(reporter_stop,), name="backdrop-stats", daemon=True)
        reporter.start()
        try:
            if not self._wait():
                self.coordinator.close_queues()  # cut short: stages not stuck leave after their current item
        finally:
            reporter_stop.set()
            reporter.join(CLOSE_GRACE_S)  # it may be inside a stuck sink's update_stats

    def _wait(self) -> bool:
        """Block until every stage has finished (True) or the deadline has passed (False, some stage is stuck).

        The deadline is the stop request's (STOP_GRACE_S) or JOIN_TIMEOUT_S after a failure; a run that is not
        stopping has none. Sinks that must run on this thread (``needs_main_thread``: a window) are pumped instead of
        sleeping; one whose ``pump`` returns False (its viewer closed it) stops the run gracefully.
        """
        coordinator = self.coordinator
        failed_by: float | None = None
        pumped = [sink for sink in self.sinks if sink.needs_main_thread]
        while True:
            try:
                with coordinator.finished:
                    if not coordinator.running:
                        return True
                    if coordinator.error is not None and failed_by is None:
                        failed_by = time.monotonic() + JOIN_TIMEOUT_S
                    deadline = min((d for d in (coordinator.deadline, failed_by) if d is not None), default=None)
                    if deadline is not None and time.monotonic() >= deadline:
                        return False
                    until = min(SIGNAL_CHECK_S, SIGNAL_CHECK_S if deadline is None else deadline - time.monotonic())
                    if not pumped:
                        coordinator.finished.wait(until)
                        continue
                for sink in list(pumped):
                    if not sink.pump(until / len(pumped)):
                        pumped.remove(sink)
                        self.request_stop()
            except KeyboardInterrupt as e:  # only when the caller installed no signal handler
                if coordinator.stop_requested.is_set():
                    self.abort(e)
                else:
                    self.request_stop()

    def _report_loop(self, stop: threading.Event) -> None:
        last_sink_update = 0.0
        while not stop.wait(self.progress_interval_s):
            sinks_due = time.monotonic() - last_sink_update >= SINK_STATS_INTERVAL_S
            if self.on_progress is None and not sinks_due:
                continue  # a snapshot takes the interpreter lock from the stages: only when someone reads it
            snapshot = self.stats.snapshot()
            self._report(snapshot, final=False)
            if sinks_due:
                last_sink_update = time.monotonic()
                for sink in self.sinks:
                    sink.update_stats(snapshot)

    def _report(self, snapshot: dict[str, Any], *, final: bool) -> None:
        if self.on_progress is not None:
            self.on_progress(snapshot, final)

    def _close(self, sinks: list[Sink], stages: list[Stage]) -> None:
        """Close every opened sink and the background, each once the stages using it have ended.

        A run that ended by itself closes them here, however long finishing a file takes. A stopped run closes
        them side by side, all within CLOSE_GRACE_S of its deadline: an output whose stage is stuck (closing
        under a writer could corrupt it) or whose close hangs is left, and named in ``unfinished``.
        """
        parts: list[tuple[Sink | Background, list[Stage]]] = [
            (sink, [stage for stage in stages if isinstance(stage, SinkStage) and stage.sink is sink]) for sink in sinks
        ]
        parts.append((self.background, [stage for stage in stages if not isinstance(stage, SinkStage)]))
        if self.coordinator.deadline is None and not any(stage.is_alive() for stage in stages):
            for closable, _ in parts:
                self._close_one(closable)
            return
        close_by = max(time.monotonic(), self.coordinator.deadline or 0.0) + CLOSE_GRACE_S
        closed: set[int] = set()
        closers = [
            threading.Thread(
                target=self._close_after, args=(closable, users, close_by, closed), name="backdrop-close", daemon=True
            )
            for closable, users in parts
        ]
        for closer in closers:
            closer.start()
        for closer in closers:
            closer.join(max(0.0, close_by - time.monotonic()))
        self.unfinished = [sink.describe() for sink in sinks if id(sink) not in closed]

    def _close_after(self, closable: Sink | Background, users: list[Stage], close_by: float, closed: set[int]) -> None:
        """Wait (until ``close_by``) for the stages using ``closable`` to end, then close it; a closer thread."""
        for stage in users:
            stage.join(max(0.0, close_by - time.monotonic()))
        if not any(stage.is_alive() for stage in users):
            self._close_one(closable)
            closed.add(id(closable))

    def _close_one(self, closable: Sink | Background) -> None:
        try:
            closable.close()
        except Exception as e:  # keep closing the others, then report the first failure
            with self.coordinator.lock:
                if self.coordinator.error is None:
                    self.coordinator.error = e
