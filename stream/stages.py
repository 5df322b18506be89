"""The pipeline's stages, one thread each: capture → preprocess → inference → composite → one writer per sink.

Rules every stage follows: pass END_OF_STREAM downstream after its last item; when it stops consuming,
close its input queue so an upstream producer blocked on it unblocks; report any exception to the
Control (which stops the whole run) instead of dying silently.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from backdrop.model.segmenter import Segmenter
from backdrop.stream.compositing.backgrounds import Background
from backdrop.stream.compositing.matte import MatteMaker
from backdrop.stream.frame import Frame
from backdrop.stream.pixels import I420, resize_i420
from backdrop.stream.queues import END_OF_STREAM, EndOfStream, QueueClosed, StageQueue
from backdrop.stream.sinks.base import Sink
from backdrop.stream.sinks.window import WindowClosed
from backdrop.stream.sources.base import Source
from backdrop.stream.stats import RunStats


class Control:
    """Shared run state: the graceful-stop flag, the first error, and the queues to close on failure."""

    def __init__(self) -> None:
        self.stop_requested = threading.Event()
        self.error: BaseException | None = None
        self.queues: list[StageQueue] = []
        self.lock = threading.RLock()  # re-entrant: a signal handler may call fail() while the waiter holds it
        self.finished = threading.Condition(self.lock)
        self.running = 0
        self.stop_hooks: list[Callable[[], None]] = []

    def request_stop(self) -> None:
        """Stop reading new frames; frames already in flight are still written."""
        with self.lock:
            first = not self.stop_requested.is_set()
            self.stop_requested.set()
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
        for queue in self.queues:
            queue.close()

    def stage_done(self) -> None:
        with self.finished:
            self.running -= 1
            self.finished.notify_all()


@dataclass
class Work:
    """A frame on its way through the pipeline, with what the stages have added to it."""

    frame: Frame
    tensor: np.ndarray | None = None
    mask: np.ndarray | None = None


class Stage(threading.Thread):
    """A thread that takes items from ``inbox`` and puts results into ``outboxes``."""

    def __init__(
        self, name: str, control: Control, stats: RunStats, inbox: StageQueue | None, outboxes: list[StageQueue]
    ) -> None:
        super().__init__(name=f"backdrop-{name}", daemon=True)
        self.stage = name
        self.control = control
        self.stats = stats
        self.inbox = inbox
        self.outboxes = list(outboxes)

    def run(self) -> None:
        try:
            self.loop()
        except QueueClosed:
            pass  # every consumer downstream is gone: the run is stopping
        except BaseException as e:  # any failure stops the run; the pipeline re-raises it
            self.control.fail(e)
        finally:
            if self.inbox is not None:
                self.inbox.close()
            self.control.stage_done()

    def loop(self) -> None:
        """Consume until END_OF_STREAM, handling each item with ``process``."""
        while True:
            item = self.inbox.get()
            if isinstance(item, EndOfStream):
                break
            started = time.perf_counter()
            result = self.process(item)
            self.stats.record(self.stage, time.perf_counter() - started)
            if result is not None:
                self.emit(result)
            if self.finished_early():
                break
        self.emit(END_OF_STREAM)

    def process(self, item: Any) -> Any:
        """Handle one item; the result goes downstream unless None."""
        raise NotImplementedError

    def finished_early(self) -> bool:
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
    """Reads the source until it ends, the run is asked to stop, or ``limit`` frames (finite sources only)."""

    def __init__(self, source: Source, first: np.ndarray, limit: int | None, **kwargs: Any) -> None:
        super().__init__("capture", inbox=None, **kwargs)
        self.source = source
        self.first = first
        self.limit = None if source.live else limit

    def loop(self) -> None:
        image: np.ndarray | None = self.first
        self.first = None
        index = 0
        while image is not None and not self.control.stop_requested.is_set():
            self.stats.frames_in += 1
            self.emit(Work(Frame(index, image, time.monotonic())))
            index += 1
            if self.limit is not None and index >= self.limit:
                break
            started = time.perf_counter()
            image = self.source.read()
            self.stats.record(self.stage, time.perf_counter() - started)
        self.emit(END_OF_STREAM)


class PreprocessStage(Stage):
    """A BGR or I420 uint8 frame at any size → the model's RGB float32 [0, 1] input at its size.

    I420 is shrunk plane by plane first, so the colour conversion runs on the small picture only.
    """

    def __init__(self, input_size: tuple[int, int], layout: str, **kwargs: Any) -> None:
        super().__init__("preprocess", **kwargs)
        self.height, self.width = input_size
        self.layout = layout

    def process(self, work: Work) -> Work:
        size = (self.width, self.height)
        if self.layout == I420:
            even = (self.width + self.width % 2, self.height + self.height % 2)  # I420 needs an even size
            rgb = cv2.cvtColor(resize_i420(work.frame.image, even), cv2.COLOR_YUV2RGB_I420)
            if even != size:
                rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR)
        else:
            rgb = cv2.cvtColor(cv2.resize(work.frame.image, size, interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB)
        work.tensor = rgb.astype(np.float32) * np.float32(1.0 / 255.0)
        return work


class InferenceStage(Stage):
    """Runs the segmenter, batching up to ``batch_size`` frames when several are already waiting."""

    def __init__(self, segmenter: Segmenter, batch_size: int, **kwargs: Any) -> None:
        super().__init__("inference", **kwargs)
        self.segmenter = segmenter
        self.batch_size = batch_size

    def loop(self) -> None:
        while True:
            item = self.inbox.get()
            if isinstance(item, EndOfStream):
                break
            batch = [item]
            while len(batch) < self.batch_size and (extra := self.inbox.get_nowait()) is not None:
                batch.append(extra)
            started = time.perf_counter()
            masks = self.segmenter.segment(np.stack([work.tensor for work in batch]))
            share = (time.perf_counter() - started) / len(batch)
            for work, mask in zip(batch, masks, strict=True):
                self.stats.record(self.stage, share)
                work.tensor, work.mask = None, mask
                self.emit(work)
        self.emit(END_OF_STREAM)


class CompositeStage(Stage):
    """Turns each mask into a full-resolution matte and composes the output frame.

    ``limit`` (finite sources, which never drop) stops after that many frames without reading further.
    """

    def __init__(self, matte_maker: MatteMaker, background: Background, limit: int | None, **kwargs: Any) -> None:
        super().__init__("composite", **kwargs)
        self.matte_maker = matte_maker
        self.background = background
        self.limit = limit
        self.previous: np.ndarray | None = None  # temporal smoothing state

    def process(self, work: Work) -> Frame:
        frame = work.frame
        alpha, self.previous = self.matte_maker.matte(work.mask, frame.image, self.previous)
        output = self.background.compose(frame.image, alpha)
        self.stats.frames_composited += 1
        return Frame(frame.index, output, frame.captured_at, frame.timestamps)

    def finished_early(self) -> bool:
        if self.limit is not None and self.stats.frames_composited >= self.limit:
            self.control.request_stop()
            return True
        return False


class SinkStage(Stage):
    """Writes frames to one sink, up to ``limit``; a viewer closing the window stops the run gracefully."""

    def __init__(self, sink: Sink, limit: int | None, **kwargs: Any) -> None:
        super().__init__(f"write:{sink.describe()}", outboxes=[], **kwargs)
        self.sink = sink
        self.limit = limit
        self.written = 0

    def process(self, frame: Frame) -> None:
        try:
            self.sink.write(frame.image)
        except WindowClosed:
            self.control.request_stop()
            raise QueueClosed(self.stage) from None
        self.written += 1
        self.stats.delivered(self.stage, frame.captured_at)

    def finished_early(self) -> bool:
        if self.limit is not None and self.written >= self.limit:
            self.control.request_stop()
            return True
        return False
