"""The background of a run with live controls: it asks the controls, on every frame, what to compose.

It is an ordinary Background to the pipeline and the Compositor, so every front end (CLI, API, bench) gets
live switching without knowing about it. Every background of the cycle is opened before the first frame, so
a broken image fails at start, not when a viewer switches to it. Snapshots are only copied here: a
SnapshotWriter thread encodes and writes them, so a PNG or a slow disk never holds up a frame.
"""

from __future__ import annotations

import numpy as np

from backdrop.pixels import BGR, I420, i420_planes
from backdrop.stream.compositing.backgrounds import Background, Blur, MaskView
from backdrop.stream.compositing.blend import Matte
from backdrop.stream.core.live_controls import LiveControls, SnapshotWriter


class LiveBackground(Background):
    """Composes with the background the controls select, or shows the mask, or passes the frame through."""

    def __init__(self, controls: LiveControls) -> None:
        self.controls = controls
        self.choices = controls.backgrounds()
        self.layouts = tuple(
            layout for layout in (BGR, I420) if all(layout in choice.layouts for choice in self.choices)
        )
        self._blurs: dict[int, Blur] = {}  # blur sizes chosen live, opened on first use
        self._snapshots = 0
        self._writer = SnapshotWriter(controls.save_snapshot)
        self.has_alpha = self.choices[0].has_alpha  # transparent: only when it is the one choice

    def open(self, width: int, height: int, layout: str = BGR) -> None:
        super().open(width, height, layout)
        for choice in self.choices:
            choice.open(width, height, layout)

    def compose(self, image: np.ndarray, matte: Matte) -> np.ndarray:
        self._writer.raise_failure()
        state = self.controls.state()
        if state.pass_through and not self.has_alpha:
            out = image
        elif state.mask_view and not self.has_alpha:
            out = self._mask(image, matte)
        else:
            out = self._choice(state.index, state.blur).compose(image, matte)
        if state.snapshots > self._snapshots:
            self._snapshots = state.snapshots
            self._writer.submit(out.copy(), self.output_layout(self.layout))  # a copy: the frame's buffer is reused
        return out

    def _choice(self, index: int, blur: int | None) -> Background:
        """The selected background; a blur at its live size when that differs from the configured one."""
        choice = self.choices[index]
        if blur is None or not isinstance(choice, Blur) or blur == choice.ksize:
            return choice
        if blur not in self._blurs:
            self._blurs[blur] = Blur(blur)
            self._blurs[blur].open(self.width, self.height, self.layout)
        return self._blurs[blur]

    def _mask(self, image: np.ndarray, matte: Matte) -> np.ndarray:
        """The matte as a grey picture in the frame's layout: white = person."""
        if self.layout == I420:
            out = matte.i420(np.empty((self.height * 3 // 2, self.width), np.uint8))
            _, u, v = i420_planes(out)
            u[:] = v[:] = 128
            return out
        return MaskView().compose(image, matte)

    def close(self) -> None:
        for choice in [*self.choices, *self._blurs.values()]:
            choice.close()
        self._writer.close()
