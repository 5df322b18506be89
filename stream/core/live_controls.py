"""Live controls: one object holding what a viewer may change during a run, shared by every front end.

Window hotkeys and the preview page's buttons both call ``act(name)``; the run's background
(stream/compositing/live.py) reads ``state()`` on every frame. Every change is logged and kept as a short
hint that the window and the preview draw over the picture for HINT_S seconds (not into recorded files).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from backdrop.errors import ConfigError, SinkError
from backdrop.stream.compositing.backgrounds import Background, Blur, parse_background
from backdrop.stream.config.run import RunConfig

log = logging.getLogger(__name__)

HINT_S = 1.5
MAX_BLUR = Blur.MAX_SIZE
ACTIONS = (
    "next-background",
    "previous-background",
    "blur-up",
    "blur-down",
    "mask-view",
    "pass-through",
    "snapshot",
)


@dataclass(frozen=True)
class LiveState:
    """What the compose step needs from the controls for one frame."""

    index: int  # which background of the cycle
    blur: int | None  # that background's live blur size, when it is a blur
    mask_view: bool
    pass_through: bool
    snapshots: int  # snapshots requested so far: the compose step saves one when this grows


class UsesControls(Protocol):
    """A front end (window, preview) that drives the controls and draws their hint."""

    def use_controls(self, controls: LiveControls) -> None: ...


class LiveControls:
    """The live state of one run, changed by actions from any thread."""

    def __init__(self, specs: Iterable[str], *, snapshot_dir: str | Path = "snapshots", blur_step: int = 10) -> None:
        self.specs = list(dict.fromkeys(specs))  # the run's background first, each once
        self.snapshot_dir = Path(snapshot_dir)
        self.blur_step = blur_step
        self._blurs = [choice.ksize if isinstance(choice, Blur) else None for choice in self.backgrounds()]
        self._index = 0
        self._mask_view = False
        self._pass_through = False
        self._snapshots = 0
        self._saved = 0
        self._hint: tuple[str, float] | None = None
        self._lock = threading.Lock()
        self._actions: dict[str, Callable[[], str]] = {
            "next-background": lambda: self._step_background(1),
            "previous-background": lambda: self._step_background(-1),
            "blur-up": lambda: self._step_blur(self.blur_step),
            "blur-down": lambda: self._step_blur(-self.blur_step),
            "mask-view": self._toggle_mask_view,
            "pass-through": self._toggle_pass_through,
            "snapshot": self._request_snapshot,
        }

    @classmethod
    def from_config(cls, config: RunConfig) -> LiveControls:
        controls = config.controls
        if config.background == "transparent" and controls.backgrounds:
            raise ConfigError("controls.backgrounds: cannot switch away from a transparent background live")
        specs = (config.background, *controls.backgrounds)
        return cls(specs, snapshot_dir=controls.snapshot_dir, blur_step=controls.blur_step)

    def backgrounds(self) -> list[Background]:
        """A parsed Background per spec, in cycle order, fresh for each run; a bad spec fails here, before any run."""
        return [parse_background(spec) for spec in self.specs]

    def attach(self, front_ends: Iterable[object]) -> None:
        """Hand the controls to every front end that takes them (the window, the preview)."""
        for front_end in front_ends:
            if callable(getattr(front_end, "use_controls", None)):
                front_end.use_controls(self)

    # -- actions ---------------------------------------------------------------------------------------

    def act(self, name: str) -> str:
        """Apply action ``name`` (one of ACTIONS); returns the hint it shows. Unknown names are a ConfigError."""
        action = self._actions.get(name)
        if action is None:
            raise ConfigError(f"unknown control {name!r} (known: {', '.join(ACTIONS)})")
        with self._lock:
            hint = action()
            self._hint = (hint, time.monotonic())
        log.info("%s", hint)
        return hint

    def _step_background(self, step: int) -> str:
        self._index = (self._index + step) % len(self.specs)
        return f"background {self._index + 1}/{len(self.specs)}: {self._describe(self._index)}"

    def _step_blur(self, step: int) -> str:
        size = self._blurs[self._index]
        if size is None:
            return f"blur: background {self.specs[self._index]} is not a blur"
        self._blurs[self._index] = min(MAX_BLUR, max(1, size + step))
        return f"blur {self._blurs[self._index]}"

    def _toggle_mask_view(self) -> str:
        self._mask_view = not self._mask_view
        return f"mask view {'on' if self._mask_view else 'off'}"

    def _toggle_pass_through(self) -> str:
        self._pass_through = not self._pass_through
        return f"replacement {'off (pass-through)' if self._pass_through else 'on'}"

    def _request_snapshot(self) -> str:
        self._snapshots += 1
        return "snapshot requested"

    def _describe(self, index: int) -> str:
        size = self._blurs[index]
        return f"blur:{size}" if size is not None else self.specs[index]

    # -- read by the compose step and the front ends ----------------------------------------------------

    def state(self) -> LiveState:
        with self._lock:
            return LiveState(
                self._index, self._blurs[self._index], self._mask_view, self._pass_through, self._snapshots
            )

    def hint(self, now: float | None = None) -> str | None:
        """The last change's text while it is fresh (HINT_S), else None."""
        with self._lock:
            hint = self._hint
        if hint is None or (now if now is not None else time.monotonic()) - hint[1] > HINT_S:
            return None
        return hint[0]

    def save_snapshot(self, image: np.ndarray) -> Path:
        """Write a BGR ``image`` as snapshot-YYYYmmdd-HHMMSS-N.png in the snapshot folder, never overwriting.

        The PNG is written beside its name first and then linked to it, so the name appears only once the file
        is complete, and two snapshots in one second get different numbers.
        """
        ok, png = cv2.imencode(".png", image)
        if not ok:
            raise SinkError(f"cannot encode a {image.shape[1]}x{image.shape[0]} snapshot as PNG")
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        try:
            self.snapshot_dir.mkdir(parents=True, exist_ok=True)
            partial = self.snapshot_dir / f".snapshot-{os.getpid()}-{threading.get_ident()}.partial"
            partial.write_bytes(png.tobytes())
            try:
                while True:
                    self._saved += 1
                    path = self.snapshot_dir / f"snapshot-{stamp}-{self._saved}.png"
                    try:
                        os.link(partial, path)
                        break
                    except FileExistsError:
                        continue
            finally:
                partial.unlink(missing_ok=True)
        except OSError as e:
            raise SinkError(f"cannot save a snapshot in {self.snapshot_dir}: {e.strerror or e}") from e
        with self._lock:
            self._hint = (f"snapshot saved: {path}", time.monotonic())
        log.info("snapshot saved: %s", path)
        return path


def draw_hint(image: np.ndarray, text: str | None) -> np.ndarray:
    """``image`` (BGR) with ``text`` in a dark box at its bottom left; the image itself when there is no text."""
    if not text:
        return image
    out = image.copy()
    height = out.shape[0]
    scale = max(0.5, height / 720)
    thickness = max(1, round(2 * scale))
    (width, text_height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    pad = round(10 * scale)
    top = height - text_height - baseline - 3 * pad
    cv2.rectangle(out, (pad, top), (3 * pad + width, height - pad), (32, 32, 32), cv2.FILLED)
    cv2.putText(
        out, text, (2 * pad, height - 2 * pad - baseline), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness
    )
    return out
