"""The per-frame work of a run as plain objects: conform → preprocess → infer → matte and compose → write.

Nothing here knows about threads or queues. The pipeline's stage threads (stream/core/stages.py) only move
frames between queues and call these; the sequential benchmark loop, the per-stage benchmark and the
Python API call them directly — so every way of running Backdrop does exactly the same work per frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from backdrop.model.segmenter import Segmenter
from backdrop.pixels import BGR, I420, convert
from backdrop.stream.compositing.backgrounds import Background
from backdrop.stream.compositing.blend import Matte
from backdrop.stream.compositing.matte import MatteMaker
from backdrop.stream.compositing.temporal import TemporalState
from backdrop.stream.config.run import MaskConfig
from backdrop.stream.core.frame import Frame
from backdrop.stream.core.schedule import InferenceSchedule

# The smallest width and height the steps take. Below it they break: a 0-pixel side divides by zero in the matte's
# working size, OpenCV reads a 1×1 matte as a scalar and the blend fails, and 4:2:0 video (every H.264 output)
# cannot hold a 1-pixel side. The limit is checked once, where frames enter (sources, the Python API).
MIN_SIDE = 2


def size_problem(width: int, height: int) -> str | None:
    """Why a ``width``×``height`` picture cannot go through the steps (to follow "NAME is"), or None when it can."""
    if width >= MIN_SIDE and height >= MIN_SIDE:
        return None
    kind = "empty" if width == 0 or height == 0 else "too small to segment"
    return f"{width}x{height} pixels: {kind} (frames need at least {MIN_SIDE}x{MIN_SIDE})"


def choose_layout(source_layout: str, consumers: Sequence[tuple[str, ...]]) -> str:
    """The layout a run works in: the source's own I420 when every consumer takes it, else BGR."""
    return I420 if source_layout == I420 and all(I420 in layouts for layouts in consumers) else BGR


def conform(frame: Frame, layout: str) -> Frame:
    """``frame`` in the run's ``layout`` (a no-op when the source already gives it)."""
    return frame if frame.layout == layout else frame.with_image(convert(frame.image, frame.layout, layout), layout)


class Infer:
    """Preprocessing and inference: frames → the model's masks (h×w float32 at the model's resolution).

    The schedule (stream/core/schedule.py) picks the frames the model sees: all of them, one in N + 1
    (``model.interval``, DeepStream's nvinfer ``interval``) or those where the scene changed (``auto``). A skipped
    frame gets no mask (None): the matte then carries the previous one along the motion. The two halves keep
    separate state, so the preprocess and inference threads may call them concurrently.
    """

    def __init__(self, segmenter: Segmenter, schedule: InferenceSchedule | None = None) -> None:
        self.segmenter = segmenter
        self.schedule = schedule or InferenceSchedule()

    @property
    def skips(self) -> bool:
        """Whether some frames may come without a mask (what the matte must be ready for)."""
        return self.schedule.interval != 0

    def preprocess(self, frame: Frame) -> np.ndarray | None:
        """The model's input tensor for one frame, as the model contract defines it; None for a skipped frame."""
        if not self.schedule.due(frame):
            return None
        return self.segmenter.contract.to_model_input(frame.image, frame.layout)

    def masks(self, tensors: Sequence[np.ndarray | None]) -> list[np.ndarray | None]:
        """One mask per preprocessed tensor (in order), the inferred ones as one batch; None for a skipped frame."""
        fresh = [tensor for tensor in tensors if tensor is not None]
        inferred = iter(self.segmenter.segment(np.stack(fresh)) if fresh else ())
        return [None if tensor is None else next(inferred) for tensor in tensors]


class Compositor:
    """Matte and compose for one stream: a frame and its model mask → the output frame.

    It owns the stream's temporal matte state, which ``MatteMaker.matte`` takes and returns explicitly;
    one Compositor per stream keeps streams from leaking into each other.
    """

    def __init__(
        self, mask: MaskConfig, background: Background, width: int, height: int, layout: str, *, propagate: bool = False
    ) -> None:
        self.matte_maker = MatteMaker(mask, width, height, layout, propagate=propagate)
        self.background = background
        self.output_layout = background.output_layout(layout)
        self.state: TemporalState | None = None

    def matte(self, frame: Frame, mask: np.ndarray | None) -> Matte:
        """The frame's alpha matte (``mask`` None: a frame the model skipped); advances the stream's temporal state."""
        matte, self.state = self.matte_maker.matte(mask, frame.image, self.state)
        return matte

    def __call__(self, frame: Frame, mask: np.ndarray | None) -> Frame:
        return frame.with_image(self.background.compose(frame.image, self.matte(frame, mask)), self.output_layout)


class FrameSteps:
    """Every step for one stream, one frame at a time: what the pipeline's threads do, without threads."""

    def __init__(self, infer: Infer, compositor: Compositor, layout: str = BGR) -> None:
        self.infer = infer
        self.compositor = compositor
        self.layout = layout

    def mask(self, frame: Frame) -> np.ndarray | None:
        """The model's mask for one frame already in the run's layout (None where the schedule skips it)."""
        return self.infer.masks([self.infer.preprocess(frame)])[0]

    def __call__(self, frame: Frame) -> Frame:
        frame = conform(frame, self.layout)
        return self.compositor(frame, self.mask(frame))
