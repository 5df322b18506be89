"""Backdrop from Python: one object for pictures and notebooks, and whole runs described by a RunConfig.

``Backdrop`` composites frames one call at a time (no threads), for apps that own their frame loop.
``run`` and ``frames`` drive the same threaded pipeline as ``backdrop run``, built in the CLI's order and
failing with the same errors; ``frames`` hands each output frame to the caller's loop as it is written.
All of them do their per-frame work through stream/core/steps.py, so every way of running gives the same picture.
Bad arguments fail at once as one-line BackdropErrors: a ConfigError naming the argument, a SourceError for an
image that is not a BGR picture of at least ``MIN_SIDE`` pixels a side.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import os
import reprlib
import threading
import weakref
from collections.abc import Callable, Generator, Mapping
from contextlib import suppress
from typing import Any

import numpy as np

from backdrop.errors import ConfigError, SourceError
from backdrop.model.segmenter import load_segmenter
from backdrop.pixels import BGR
from backdrop.stream.compositing.backgrounds import parse_background
from backdrop.stream.config.run import MaskConfig, RunConfig
from backdrop.stream.config.typed_yaml import build, within
from backdrop.stream.core.assemble import open_pipeline, report
from backdrop.stream.core.frame import Frame
from backdrop.stream.core.live_controls import LiveControls
from backdrop.stream.core.pipeline import Pipeline, ProgressCallback
from backdrop.stream.core.queues import END_OF_STREAM, EndOfStream, QueueClosed, StageQueue
from backdrop.stream.core.steps import Compositor, FrameSteps, Infer, size_problem
from backdrop.stream.sinks.base import Sink

STOP_TIMEOUT_S = 30.0  # a stopped run ends within the pipeline's own timeouts; this only guards against a hang

log = logging.getLogger(__name__)


class Backdrop:
    """A model and a background, for compositing BGR frames one at a time.

    Consecutive calls are treated as frames of one video, so ``mask.smoothing`` carries over between them;
    ``reset()`` starts a new clip. Not thread-safe: use one object per stream.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] = "general",
        *,
        runtime: str = "auto",
        background: str | os.PathLike[str] = "blur:21",
        mask: MaskConfig | Mapping[str, Any] | None = None,
        threads: int | None = None,
    ) -> None:
        """``mask`` is a MaskConfig or a mapping of its fields (the YAML ``mask:`` section); None keeps the defaults."""
        model = _text("model", model, "a model name (general, landscape) or a path", paths=True)
        runtime = _text("runtime", runtime, "a runtime name such as 'auto' or 'onnxruntime'")
        background = _text("background", background, "a spec such as 'blur:21', 'color:#00ff00' or a file", paths=True)
        self.mask = _mask_config(mask)
        if threads is not None:
            if not isinstance(threads, int) or isinstance(threads, bool):
                raise ConfigError(f"threads: expected a whole number or None, got {reprlib.repr(threads)}")
            within("threads", threads, 1, 256)
        self.background = parse_background(background)  # a bad spec fails before the model is loaded
        self.infer = Infer(load_segmenter(model, runtime, threads=threads))
        self.steps: FrameSteps | None = None
        self.size: tuple[int, int] | None = None

    def composite(self, image: np.ndarray) -> np.ndarray:
        """``image`` (H×W×3 uint8 BGR) on the background: BGR, or BGRA for ``transparent``."""
        frame = self._frame(image)
        return self._steps(frame)(frame).image

    def matte(self, image: np.ndarray) -> np.ndarray:
        """The alpha matte of ``image`` at its full resolution: H×W float32, 1 = person."""
        frame = self._frame(image)
        steps = self._steps(frame)
        return steps.compositor.matte(frame, steps.mask(frame)).full()

    def reset(self) -> None:
        """Forget the previous frames (temporal smoothing, a background video's position): a new clip starts."""
        self.steps = None

    def close(self) -> None:
        """Release the background's file and the runtime."""
        self.background.close()
        self.infer.segmenter.close()

    def __enter__(self) -> Backdrop:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @staticmethod
    def _frame(image: np.ndarray) -> Frame:
        """``image`` as a Frame, checked once here: an H×W×3 uint8 array, big enough for the steps."""
        if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3):
            got = f"{image.dtype} array of shape {image.shape}" if isinstance(image, np.ndarray) else None
            raise SourceError(f"expected an H×W×3 uint8 BGR image, got a {got or type(image).__name__}")
        problem = size_problem(image.shape[1], image.shape[0])
        if problem:
            raise SourceError(f"image is {problem}")
        return Frame(np.ascontiguousarray(image))

    def _steps(self, frame: Frame) -> FrameSteps:
        """The steps for this frame size; the first frame, a new size or a reset (re)opens the background."""
        if self.steps is None or frame.size != self.size:
            self.size = width, height = frame.size
            self.background.open(width, height, BGR)
            self.steps = FrameSteps(self.infer, Compositor(self.mask, self.background, width, height, BGR), BGR)
        return self.steps


def _text(name: str, value: object, expected: str, *, paths: bool = False) -> str:
    """``value`` of argument ``name`` as a string (a path too when ``paths``); anything else is a ConfigError."""
    if isinstance(value, str):
        return value
    if paths and isinstance(value, os.PathLike) and isinstance(os.fspath(value), str):
        return os.fspath(value)
    raise ConfigError(f"{name}: expected {expected}, got {reprlib.repr(value)}")


def _mask_config(mask: object) -> MaskConfig:
    """``mask`` as a checked MaskConfig: every field of the right type (as in YAML) and in range."""
    if mask is None:
        mask = {}
    elif isinstance(mask, MaskConfig):
        mask = dataclasses.asdict(mask)  # rebuilt through the YAML loader, which checks every field's type
    elif not isinstance(mask, Mapping):
        raise ConfigError(f"mask: expected a MaskConfig, a mapping of its fields or None, got {reprlib.repr(mask)}")
    config = build(MaskConfig, dict(mask), "mask")
    config.validate()
    return config


class CallbackSink(Sink):
    """A sink that hands every output frame (BGR, or BGRA with alpha) to a function."""

    def __init__(self, callback: Callable[[Frame], None]) -> None:
        self.callback = callback

    def open(self, width: int, height: int, fps: float) -> None:
        """Nothing to prepare: the callback takes frames of any size."""

    def write(self, frame: Frame) -> None:
        self.callback(frame)

    def close(self) -> None:
        """Nothing to release."""

    def describe(self) -> str:
        return "callback"


def run(
    config: RunConfig,
    *,
    on_frame: Callable[[Frame], None] | None = None,
    on_progress: ProgressCallback | None = None,
    controls: LiveControls | None = None,
) -> dict[str, Any]:
    """Run ``config`` as ``backdrop run`` does and return the final stats.

    ``on_frame`` receives every output frame (from a pipeline thread; an exception it raises ends the run);
    ``on_progress(stats, final)`` receives stats snapshots twice a second. Ctrl-C stops gracefully.
    ``controls`` (``LiveControls.from_config(config)``) lets the caller switch backgrounds, mask view,
    pass-through or take snapshots during the run with ``controls.act(...)``, as the window's hotkeys do.
    """
    extra = [CallbackSink(on_frame)] if on_frame is not None else []
    with open_pipeline(config, extra_sinks=extra, on_progress=on_progress, controls=controls) as pipeline:
        stats = pipeline.run()
    return report(config, pipeline, stats)


def frames(config: RunConfig, *, controls: LiveControls | None = None) -> Generator[Frame, None, None]:
    """The output frames of ``config``'s run, in order, while its outputs are written too (use ``null`` for none).

    The pipeline runs on a thread and waits for the loop (a finite source loses no frame). Leaving the loop
    early (or ``close()`` on a generator you keep) stops the run and joins its threads; an error of the run
    is raised in the loop. ``controls`` as in ``run``: the loop may change the frames that follow. A generator
    still unfinished when the interpreter exits is closed then, like a loop left early: it never keeps the
    process alive.
    """
    generator = _frames(config, controls)
    _UNFINISHED.add(generator)
    return generator


# frames() generators that may still be running a pipeline; weak, so an unused one is collected (and closed) as usual
_UNFINISHED: weakref.WeakSet[Generator[Frame, None, None]] = weakref.WeakSet()


@atexit.register
def _close_unfinished() -> None:
    """Stop the runs of generators left open at exit (their threads are daemons: the interpreter does not wait)."""
    for generator in list(_UNFINISHED):
        with suppress(ValueError):  # running on a thread of its own, which ends it
            generator.close()


def _frames(config: RunConfig, controls: LiveControls | None) -> Generator[Frame, None, None]:
    handoff = StageQueue("frames", config.pipeline.queue_size, drop_oldest=False)
    # put blocks while the loop is behind and raises QueueClosed once it has left, which ends that sink's stage
    with open_pipeline(config, extra_sinks=[CallbackSink(handoff.put)], controls=controls) as pipeline:
        outcome: dict[str, Any] = {}
        # a daemon: interpreter exit must not wait for a run whose loop was abandoned (_close_unfinished stops it)
        worker = threading.Thread(target=_drive, args=(pipeline, handoff, outcome), name="backdrop-frames", daemon=True)
        worker.start()
        ended = False
        try:
            while not isinstance(item := handoff.get(), EndOfStream):
                yield item
            ended = True
        finally:
            if not ended:  # the loop was left early: stop reading, and wake a writer blocked on the full queue
                pipeline.request_stop()
                handoff.close()
            worker.join(STOP_TIMEOUT_S)
            if worker.is_alive():
                log.warning("the run did not stop within %.0f s; its thread is left running", STOP_TIMEOUT_S)
    if "error" in outcome:
        raise outcome["error"]
    report(config, pipeline, outcome["stats"])


def _drive(pipeline: Pipeline, handoff: StageQueue, outcome: dict[str, Any]) -> None:
    """The worker of ``frames``: run the pipeline, keep its stats or error, then end the caller's loop."""
    try:
        outcome["stats"] = pipeline.run()
    except BaseException as e:  # handed to the caller's thread, which re-raises it
        outcome["error"] = e
    with suppress(QueueClosed):  # closed: the caller has left the loop
        handoff.put(END_OF_STREAM)
