"""Live controls: one object holding what a viewer may change during a run, shared by every front end.

Window hotkeys and the preview page's buttons both call ``act(name)``; the run's background
(stream/compositing/live.py) reads ``state()`` on every frame. Every change is logged and kept as a short
hint that the window and the preview draw over the picture for HINT_S seconds (not into recorded files).
Snapshots are encoded and written by a SnapshotWriter thread, never on the composite thread.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from backdrop.errors import ConfigError, SinkError
from backdrop.pixels import to_bgr
from backdrop.stream.compositing.backgrounds import Background, Blur, parse_background
from backdrop.stream.config.run import RunConfig

if TYPE_CHECKING:
    from backdrop.stream.sinks.base import Sink

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
SNAPSHOT_BACKLOG = 2  # snapshots that may wait for the disk behind the one being written; more are dropped
SNAPSHOT_CLOSE_S = 2.0  # how long closing waits for snapshots still being written


@dataclass(frozen=True)
class LiveState:
    """What the compose step needs from the controls for one frame."""

    index: int  # which background of the cycle
    blur: int | None  # that background's live blur size, when it is a blur
    mask_view: bool
    pass_through: bool
    snapshots: int  # snapshots requested so far: the compose step saves one when this grows


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

    def attach(self, sinks: Iterable[Sink]) -> None:
        """Hand the controls to every sink; the front ends among them (the window, the preview) take them."""
        for sink in sinks:
            sink.use_controls(self)

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


class SnapshotWriter:
    """Encodes and writes snapshots on one daemon thread, so neither a PNG (tens of ms at 1080p) nor a slow disk
    stalls the composite thread that takes them.

    The thread starts with the first snapshot, so runs that take none start none. ``submit`` and ``close`` come
    from one run's compose step and then its close, never at once.
    """

    def __init__(self, save: Callable[[np.ndarray], object], *, close_s: float = SNAPSHOT_CLOSE_S) -> None:
        self._save = save  # writes one BGR picture (LiveControls.save_snapshot)
        self.close_s = close_s
        # bounded by submit, not by the queue, so the stop that close sends always fits
        self._jobs: queue.SimpleQueue[tuple[np.ndarray, str] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._error: Exception | None = None  # the first failed write; only the writer thread sets it

    def submit(self, image: np.ndarray, layout: str) -> None:
        """Queue ``image`` (in ``layout``; the caller's own copy) to be saved; dropped when the disk is behind."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="snapshot-writer", daemon=True)
            self._thread.start()
        if self._jobs.qsize() >= SNAPSHOT_BACKLOG:
            log.warning("snapshot dropped: %d earlier ones are still being written", SNAPSHOT_BACKLOG + 1)
            return
        self._jobs.put((image, layout))

    def raise_failure(self) -> None:
        """Raise a failed write on the caller's thread, so it ends the run as it did when compose wrote."""
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        """Wait up to close_s for pending snapshots, so a run that ends right after one still leaves the file.

        A hung disk keeps only the daemon thread waiting, never the run; a failed write is raised here.
        """
        thread, self._thread = self._thread, None
        if thread is not None:
            self._jobs.put(None)  # the thread ends after the pending snapshots, even when that is after close_s
            thread.join(self.close_s)
            if thread.is_alive():
                log.warning("snapshots still being written after %g s are left unfinished", self.close_s)
        self.raise_failure()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                self._save(to_bgr(*job))
            except Exception as e:  # handed to the compose thread, which ends the run with it as before
                self._error = self._error or e


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
