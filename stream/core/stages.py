"""The pipeline's threads: each moves work from one queue to the next and calls a step (stream/core/steps.py).

Rules every stage follows: pass END_OF_STREAM downstream after its last item; when it stops consuming,
close its input queue so an upstream producer blocked on it unblocks; report any exception to the
coordinator (which stops the whole run) instead of dying silently. The work itself lives in the steps, so a
stage is only scheduling: what to wait for, how many items to take at once, when to stop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

import numpy as np

from backdrop.stream.core.frame import Frame
from backdrop.stream.core.queues import END_OF_STREAM, EndOfStream, QueueClosed, StageQueue
from backdrop.stream.core.stats import RunStats
from backdrop.stream.sinks.base import Sink
from backdrop.stream.sources.base import Source


class RunCoordinator:
    """What the stages of one run share: the stop flag and deadline, the first error, the queues that cut it."""

    def __init__(self) -> None:
        self.stop_requested = threading.Event()
        self.error: BaseException | None = None
        self.deadline: float | None = None  # once a stop has a grace: when stages still running are cut off
        self.queues: list[StageQueue] = []
        self.lock = threading.RLock()  # re-entrant: a signal handler may call in while the waiter holds it
        self.finished = threading.Condition(self.lock)
        self.running = 0
        self.stop_hooks: list[Callable[[], None]] = []

    def request_stop(self, grace_s: float | None = None) -> None:
        """Stop reading new frames; frames already in flight are still written, for at most ``grace_s`` if given."""
        with self.lock:
            first = not self.stop_requested.is_set()
            self.stop_requested.set()
            if grace_s is not None:
                deadline = time.monotonic() + grace_s
                if self.deadline is None or deadline < self.deadline:
                    self.deadline = deadline
                    self.finished.notify_all()  # the waiter may be asleep on the later deadline
        if first and self.stop_hooks:
            # Hooks may block (closing a network connection); signal handlers call this, so run them aside.
            threading.Thread(target=self._run_stop_hooks, name="backdrop-stop-hooks", daemon=True).start()

    def _run_stop_hooks(self) -> None:
        for hook in self.stop_hooks:
            hook()

    def fail(self, error: BaseException) -> None:
        """Stop at once: keep the first error, close every queue so every blocked thread wakes."""
        with self.lock:
            if self.error is None:
                self.error = error
        self.request_stop()
        self.close_queues()

    def close_queues(self) -> None:
        """Drop the frames in flight and wake every thread blocked on a queue: each stage then ends."""
        for queue in self.queues:
            queue.close()

    def stage_done(self) -> None:
        with self.finished:
            self.running -= 1
            self.finished.notify_all()


class StageContext(TypedDict):
    """What every stage of one run shares, given as ``Stage(..., **context)``."""

    coordinator: RunCoordinator
    stats: RunStats


@dataclass
class Work:
    """A frame on its way through the pipeline, with what the steps have added to it."""

    frame: Frame
    tensor: np.ndarray | None = None
    mask: np.ndarray | None = None


class Stage(threading.Thread):
    """A thread that takes items from ``inbox``, calls ``step`` on each and puts the result into ``outboxes``.

    ``limit`` (when given) ends the stage after that many results and asks the run to stop reading. A stage
    with no ``inbox`` or no ``step`` (capture, inference) has a loop of its own.
    """

    def __init__(
        self,
        name: str,
        step: Callable[[Any], Any] | None,
        *,
        coordinator: RunCoordinator,
        stats: RunStats,
        inbox: StageQueue | None,
        outboxes: list[StageQueue],
        limit: int | None = None,
    ) -> None:
        super().__init__(name=f"backdrop-{name}", daemon=True)
        self.stage = name
        self.step = step
        self.coordinator = coordinator
        self.stats = stats
        self.inbox = inbox
        self.outboxes = list(outboxes)
        self.limit = limit
        self.done = 0

    def run(self) -> None:
        try:
            self.loop()
        except QueueClosed:
            pass  # every consumer downstream is gone: the run is stopping
        except BaseException as e:  # any failure stops the run; the pipeline re-raises it
            self.coordinator.fail(e)
        finally:
            if self.inbox is not None:
                self.inbox.close()
            self.coordinator.stage_done()

    def loop(self) -> None:
        """Consume until END_OF_STREAM (or the limit), handling each item with the step."""
        inbox, step = self.inbox, self.step
        if inbox is None or step is None:
            raise TypeError(f"stage {self.stage}: the default loop needs an inbox and a step")
        while not self.reached_limit():
            item = inbox.get()
            if isinstance(item, EndOfStream):
                break
            started = time.perf_counter()
            result = step(item)
            self.stats.record(self.stage, time.perf_counter() - started)
            self.done += 1
            if result is not None:
                self.emit(result)
        self.emit(END_OF_STREAM)

    def reached_limit(self) -> bool:
        if self.limit is not None and self.done >= self.limit:
            self.coordinator.request_stop()
            return True
        return False

    def emit(self, item: Any) -> None:
        """Put ``item`` into every open outbox; raise QueueClosed when none is left."""
        for queue in list(self.outboxes):
            try:
                queue.put(item)
            except QueueClosed:
                self.outboxes.remove(queue)
        if not self.outboxes and not isinstance(item, EndOfStream):
            raise QueueClosed(self.stage)


class CaptureStage(Stage):
    """Reads the source until it ends, the run is asked to stop, or ``limit`` frames (finite sources only).

    ``conform`` turns each frame into the run's pixel layout; ``first`` was read before any thread started.
    """

    def __init__(
        self,
        source: Source,
        first: Frame,
        conform: Callable[[Frame], Frame],
        *,
        coordinator: RunCoordinator,
        stats: RunStats,
        outboxes: list[StageQueue],
        limit: int | None = None,
    ) -> None:
        super().__init__(
            "capture", None, coordinator=coordinator, stats=stats, inbox=None, outboxes=outboxes, limit=limit
        )
        self.read = source.read
        self.first: Frame | None = first
        self.conform = conform

    def loop(self) -> None:
        frame, self.first = self.first, None
        while frame is not None and not self.coordinator.stop_requested.is_set():
            self.stats.frames_in += 1
            self.emit(Work(self.conform(frame)))
            self.done += 1
            if self.reached_limit():
                break
            started = time.perf_counter()
            frame = self.read()
            self.stats.record(self.stage, time.perf_counter() - started)
        self.emit(END_OF_STREAM)


class InferenceStage(Stage):
    """Runs the model, batching up to ``batch_size`` frames when several are already waiting."""

    def __init__(
        self,
        infer: Callable[[list[np.ndarray | None]], Sequence[np.ndarray | None]],
        batch_size: int,
        *,
        coordinator: RunCoordinator,
        stats: RunStats,
        inbox: StageQueue,
        outboxes: list[StageQueue],
        limit: int | None = None,
    ) -> None:
        super().__init__(
            "inference", None, coordinator=coordinator, stats=stats, inbox=inbox, outboxes=outboxes, limit=limit
        )
        self.infer = infer
        self.works = inbox
        self.batch_size = batch_size

    def loop(self) -> None:
        while True:
            item = self.works.get()
            if isinstance(item, EndOfStream):
                break
            batch = [item]
            while len(batch) < self.batch_size and (extra := self.works.get_nowait()) is not None:
                batch.append(extra)
            started = time.perf_counter()
            tensors = [work.tensor for work in batch]
            masks = self.infer(tensors)
            self.stats.frames_inferred += sum(tensor is not None for tensor in tensors)
            share = (time.perf_counter() - started) / len(batch)
            for work, mask in zip(batch, masks, strict=True):
                self.stats.record(self.stage, share)
                work.tensor, work.mask = None, mask
                self.emit(work)
        self.emit(END_OF_STREAM)


class SinkStage(Stage):
    """Writes frames to one sink, up to ``limit``."""

    def __init__(
        self,
        sink: Sink,
        *,
        coordinator: RunCoordinator,
        stats: RunStats,
        inbox: StageQueue,
        limit: int | None = None,
    ) -> None:
        super().__init__(
            f"write:{sink.describe()}",
            self._write,
            coordinator=coordinator,
            stats=stats,
            inbox=inbox,
            outboxes=[],
            limit=limit,
        )
        self.sink = sink

    def _write(self, frame: Frame) -> None:
        self.sink.write(frame)
        self.stats.delivered(self.stage, frame.captured_at)
