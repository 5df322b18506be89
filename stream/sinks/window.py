"""A desktop window (pygame-ce, SDL2), driven from the main thread: ``--output window``.

GUI toolkits want one thread, in practice the main one, to own the window and its events. So ``write()``, on
the pipeline's writer thread, only puts the newest frame into a LatestSlot (it never waits, and frames the
display had no time for count as dropped), and the pipeline's waiting main thread calls ``pump()``, which shows
the newest frame and handles the keys and the close button. pygame is imported only here, in ``open()``: the
core install (and every server) stays free of GUI libraries.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from typing import Any

from backdrop.errors import SinkError
from backdrop.pixels import BGR, I420, to_bgr
from backdrop.stream.core.frame import Frame
from backdrop.stream.core.latest import LatestSlot
from backdrop.stream.core.live_controls import LiveControls, draw_hint
from backdrop.stream.sinks.base import Sink

log = logging.getLogger(__name__)

INSTALL_HINT = "window output needs pygame: pip install 'backdrop[gui]'"
QUIT_KEYS = ("q", "escape")
KEYS = {  # pygame key names → LiveControls actions (README "Live controls")
    "n": "next-background",
    "p": "previous-background",
    "+": "blur-up",
    "=": "blur-up",
    "[+]": "blur-up",
    "-": "blur-down",
    "[-]": "blur-down",
    "m": "mask-view",
    "space": "pass-through",
    "s": "snapshot",
}
SHOWN_KEPT = 3000  # (captured, on screen) times kept for latency percentiles: 100 s at 30 fps


class WindowSink(Sink):
    """Shows the newest frame in a window; q, Esc or the close button end the run (exit 0)."""

    needs_main_thread = True  # the pipeline calls pump() from the thread that waits for the run
    layouts = (BGR, I420)

    def __init__(self, title: str = "backdrop") -> None:
        self.title = title
        self.controls: LiveControls | None = None
        self.closed_by_viewer = False
        self.presented = 0
        self.shown: deque[tuple[float, float]] = deque(maxlen=SHOWN_KEPT)  # (captured_at, on screen) per frame
        self._slot: LatestSlot[Frame] = LatestSlot()
        self._seq = 0
        self._pygame: Any = None  # the module, once open() has imported it

    def use_controls(self, controls: LiveControls) -> None:
        self.controls = controls

    def open(self, width: int, height: int, fps: float) -> None:
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise SinkError("window output needs a display (DISPLAY is not set); use a file, http:// or null output")
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
        os.environ.setdefault("SDL_NO_SIGNAL_HANDLERS", "1")  # Ctrl-C and SIGTERM stay with backdrop run
        os.environ.setdefault("SDL_VIDEO_X11_WMCLASS", "backdrop")  # window managers group it by this, not python
        # Plain (XShm) blits, not an OpenGL framebuffer: SDL's libGL crashes set_mode in a process that has loaded
        # TensorFlow (--runtime keras), and a 720p copy a frame needs no GPU.
        os.environ.setdefault("SDL_FRAMEBUFFER_ACCELERATION", "0")
        try:
            import pygame
        except ImportError as e:
            raise SinkError(INSTALL_HINT) from e
        try:
            pygame.display.init()
            desktop = pygame.display.get_desktop_sizes()[0]
            scale = min(1.0, 0.9 * desktop[0] / width, 0.9 * desktop[1] / height)  # a 4K frame on a laptop fits
            pygame.display.set_mode((round(width * scale), round(height * scale)), pygame.RESIZABLE)
        except pygame.error as e:
            pygame.display.quit()
            raise SinkError(f"cannot open a window: {e}") from e
        pygame.display.set_caption(self.title)
        self._pygame = pygame

    def write(self, frame: Frame) -> None:
        self._slot.put(frame)

    def counters(self) -> dict[str, int]:
        """Frames replaced by a newer one before the window showed them."""
        return {"dropped": self._slot.overwritten}

    def pump(self, timeout: float) -> bool:
        """Show the newest frame (waiting up to ``timeout`` s for one) and handle input; False once the viewer
        asked to end the run. Only from the thread that opened the window (the pipeline's caller)."""
        if self._pygame is None:
            return False
        taken = self._slot.take(self._seq, timeout)
        if taken is not None:
            self._seq, frame = taken
            self._present(frame)
        for event in self._pygame.event.get():
            if event.type == self._pygame.QUIT:
                return self._viewer_quit("closed the window")
            if event.type == self._pygame.KEYDOWN:
                key = self._pygame.key.name(event.key)
                if key in QUIT_KEYS:
                    return self._viewer_quit(f"pressed {key}")
                if key in KEYS and self.controls is not None:
                    self.controls.act(KEYS[key])
        return True

    def _present(self, frame: Frame) -> None:
        pygame = self._pygame
        image = to_bgr(frame.image, frame.layout)
        if self.controls is not None:
            image = draw_hint(image, self.controls.hint())
        height, width = image.shape[:2]
        picture = pygame.image.frombuffer(
            image.data if image.flags.c_contiguous else image.tobytes(), (width, height), "BGR"
        )
        screen = pygame.display.get_surface()
        if screen.get_size() != (width, height):
            picture = pygame.transform.scale(picture, screen.get_size())
        screen.blit(picture, (0, 0))
        pygame.display.flip()
        self.shown.append((frame.captured_at, time.monotonic()))
        self.presented += 1

    def _viewer_quit(self, how: str) -> bool:
        log.info("the viewer %s: stopping", how)
        self.closed_by_viewer = True
        self.close()
        return False

    def close(self) -> None:
        self._slot.close()
        pygame, self._pygame = self._pygame, None
        if pygame is not None:
            pygame.display.quit()

    def describe(self) -> str:
        return "window"
