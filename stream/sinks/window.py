"""A desktop window (pygame-ce, SDL2): ``--output window``.

GUI toolkits want one thread to own the window and its events. ``write()``, on the pipeline's writer thread,
only puts the newest frame into a LatestSlot (it never waits, and frames the display had no time for count as
dropped); the window's own thread shows the newest frame and handles the keys and the close button. pygame is
imported only here, in ``open()``: the core install (and every server) stays free of GUI libraries.

Why a thread of its own, not the main thread. Showing a frame waits for the display server (SDL's X11 blit ends
in XSync). A server that stops answering (frozen, suspended, a dead SSH forward) never returns that call, and on
the main thread that also kept Python's signal handlers from running: SIGTERM and a second SIGTERM were ignored
(measured: still alive after 15 s). On its own thread the stuck call holds nothing but that thread (pygame lets go
of the interpreter lock while it flips), the main thread keeps handling signals, and the pipeline's stop deadline
applies to the window as to any output: SIGTERM ends the run after about 4 s (measured 4.05 s) with 143, the
window named "not finished", the other outputs finished. The alternative, a watchdog beside a main-thread
window, would have had to close the other outputs, report and exit the process behind the back of a main thread
that never returns. The thread shows a frame as soon as it arrives: capture → screen p50 unchanged, fewer late
and dropped frames (benchmarks/results/NOTES.md, "Window latency"). macOS is the exception: Cocoa accepts windows
and events only on the main thread, so there the pipeline's waiting thread still does the work in ``pump()``
(``OWN_THREAD``).

``pygame.display.quit()`` keeps the interpreter lock while it waits for the server, so on a frozen server it
would stop every thread of the process. ``flip()`` waits without it, so closing flips first: a server that does
not answer leaves only the window's thread stuck, and that one is abandoned.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
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

INSTALL_HINT = "window output needs pygame: pip install 'backdrop-video[gui]'"
QUIT_KEYS = ("q", "escape")
KEYS = {  # pygame key names → LiveControls actions (docs/guide/live.md, live controls)
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
OWN_THREAD = sys.platform != "darwin"  # see the module docstring
EVENT_POLL_S = 0.05  # the window's thread reads keys at least this often while no frame arrives
OPEN_TIMEOUT_S = 15.0  # a display that takes longer to open a window does not answer
CLOSE_TIMEOUT_S = 5.0  # how long close() waits for the window's thread (a stopped run gives up sooner)


class WindowSink(Sink):
    """Shows the newest frame in a window titled "Backdrop — SOURCE"; q, Esc or its close button end the run (0)."""

    needs_main_thread = True  # pump() on the run's waiting thread: reports the viewer's quit (on macOS: does the work)
    layouts = (BGR, I420)

    def __init__(self, title: str | None = None) -> None:
        self.title = title or "Backdrop"  # an explicit title stays; else the source's description joins it
        self._fixed_title = title is not None
        self.controls: LiveControls | None = None
        self.closed_by_viewer = False
        self.presented = 0
        self.shown: deque[tuple[float, float]] = deque(maxlen=SHOWN_KEPT)  # (captured_at, on screen) per frame
        self._slot: LatestSlot[Frame] = LatestSlot()
        self._seq = 0
        self._pygame: Any = None  # the module, once open() has imported it
        self._thread: threading.Thread | None = None  # the window's own thread (OWN_THREAD)
        self._closing = threading.Event()  # close() asked the window's thread to end
        self._ended = threading.Event()  # the window's thread has ended: the viewer quit, close() or an error
        self._error: BaseException | None = None  # what ended the window's thread, re-raised by pump()

    def use_controls(self, controls: LiveControls) -> None:
        self.controls = controls

    def use_source_description(self, description: str) -> None:
        if not self._fixed_title:
            self.title = f"Backdrop — {description}"

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
        if not OWN_THREAD:
            self._open_window(pygame, width, height)
            return
        opened = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(pygame, width, height, opened), name="backdrop-window", daemon=True
        )
        self._thread.start()
        if not opened.wait(OPEN_TIMEOUT_S):
            raise SinkError(f"cannot open a window: the display did not answer within {OPEN_TIMEOUT_S:g} s")
        if self._error is not None:
            raise self._error

    def _open_window(self, pygame: Any, width: int, height: int) -> None:
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

    def _run(self, pygame: Any, width: int, height: int, opened: threading.Event) -> None:
        """The window's thread: open the window, show frames and read keys until the viewer or close() ends it."""
        try:
            try:
                self._open_window(pygame, width, height)
            finally:
                opened.set()
            while not self._closing.is_set() and self._step(EVENT_POLL_S):
                pass
        except BaseException as e:  # pump() re-raises it on the run's thread
            self._error = e
        finally:
            self._quit_window()
            self._ended.set()

    def write(self, frame: Frame) -> None:
        self._slot.put(frame)

    def counters(self) -> dict[str, int]:
        """Frames replaced by a newer one before the window showed them."""
        return {"dropped": self._slot.overwritten}

    def pump(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s (on macOS: show the newest frame and handle input meanwhile); False once the viewer
        asked to end the run. Only from the thread that opened the window (the pipeline's caller)."""
        if not OWN_THREAD:
            if self._pygame is None:
                return False
            return self._step(timeout)
        if not self._ended.wait(timeout):
            return True
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return False

    def _step(self, timeout: float) -> bool:
        """Show the newest frame (waiting up to ``timeout`` s for one) and handle input; False once the viewer asked
        to end the run. Only on the thread that opened the window."""
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
        pygame.display.flip()  # waits for the display server, without the interpreter lock
        self.shown.append((frame.captured_at, time.monotonic()))
        self.presented += 1

    def _viewer_quit(self, how: str) -> bool:
        log.info("the viewer %s: stopping", how)
        self.closed_by_viewer = True
        if not OWN_THREAD:
            self.close()
        return False

    def _quit_window(self) -> None:
        """Close the window on the thread that opened it; one that does not answer leaves this thread stuck."""
        self._slot.close()
        pygame, self._pygame = self._pygame, None
        if pygame is not None:
            pygame.display.flip()  # a round trip that lets go of the interpreter lock: see the module docstring
            pygame.display.quit()

    def close(self) -> None:
        """End the window. With its own thread: ask it and wait for it (at most CLOSE_TIMEOUT_S, after which a
        window whose display does not answer is left to the process's exit)."""
        self._slot.close()
        if not OWN_THREAD:
            self._quit_window()
            return
        self._closing.set()
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return
        thread.join(CLOSE_TIMEOUT_S)
        if thread.is_alive():
            log.warning("the window did not close: its display does not answer")

    def describe(self) -> str:
        return "window"
