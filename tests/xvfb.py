"""A real X server for window tests: Xvfb on a free display, driven with xdotool, read back with FFmpeg.

Xvfb picks the display itself (``-displayfd``) and writes its number only once it accepts connections, so
starting needs no sleep and no guessed free number. Keys go to the window with ``xdotool key --window``;
closing it sends WM_DELETE_WINDOW, as a window manager's close button does (``xdotool windowclose`` would
destroy the window under the program instead, which no user can do). ``frozen()`` stops the server (SIGSTOP)
for a block, as a display server that hangs: every client call that waits for its answer waits until then.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

import numpy as np
import pytest

START_TIMEOUT_S = 10.0
TOOLS = ("Xvfb", "xdotool", "ffmpeg")


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


class Xvfb:
    """One X server for the ``with`` block; ``display`` is its name (":N"), ``env`` an environment using it."""

    def __init__(self, width: int = 1280, height: int = 800) -> None:
        self.size = (width, height)
        self.display = ""
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "DISPLAY": self.display}

    def __enter__(self) -> Xvfb:
        read, write = os.pipe()
        try:
            self.process = subprocess.Popen(
                ["Xvfb", "-displayfd", str(write), "-screen", "0", "{}x{}x24".format(*self.size), "-nolisten", "tcp"],
                pass_fds=(write,),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            os.close(write)
            number = b""
            deadline = time.monotonic() + START_TIMEOUT_S
            while not number.endswith(b"\n"):
                ready, _, _ = select.select([read], [], [], max(0.0, deadline - time.monotonic()))
                chunk = os.read(read, 16) if ready else b""
                if not chunk:
                    self.__exit__(None, None, None)
                    pytest.fail("Xvfb did not start (no display number within the timeout)")
                number += chunk
        finally:
            os.close(read)
        self.display = ":" + number.decode().strip()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)  # a frozen server would leave SIGTERM pending
            self.process.terminate()
            self.process.wait(10)

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """The server stopped (SIGSTOP) for the block: it accepts nothing and answers nothing, as a hung one."""
        if self.process is None:
            pytest.fail("the X server is not running")
        self.process.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            self.process.send_signal(signal.SIGCONT)

    def xdotool(self, *args: str, timeout: float = 10.0) -> str:
        done = subprocess.run(
            ["xdotool", *args], env=self.env, capture_output=True, text=True, timeout=timeout, check=True
        )
        return done.stdout

    def find_window(self, classname: str = "backdrop", timeout: float = 60.0) -> str:
        """The id of the first window of ``classname``, waiting (xdotool's --sync) until one is mapped."""
        return self.xdotool("search", "--sync", "--classname", classname, timeout=timeout).split()[0]

    def window_name(self, window: str) -> str:
        return self.xdotool("getwindowname", window).rstrip("\n")

    def key(self, window: str, *keys: str) -> None:
        self.xdotool("key", "--window", window, *keys)

    def key_down(self, window: str, key: str) -> None:
        """Press ``key`` without releasing it: for a key that closes the window, whose release would find none."""
        self.xdotool("keydown", "--window", window, key)

    def screenshot(self, window: str) -> np.ndarray:
        """What the screen shows inside ``window``, as a BGR array."""
        geometry = dict(line.split("=", 1) for line in self.xdotool("getwindowgeometry", "--shell", window).split())
        x, y, width, height = (int(geometry[key]) for key in ("X", "Y", "WIDTH", "HEIGHT"))
        raw = subprocess.run(
            [
                *("ffmpeg", "-loglevel", "error", "-f", "x11grab", "-video_size", f"{width}x{height}"),
                *("-i", f"{self.display}+{x},{y}", "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "bgr24", "pipe:1"),
            ],
            capture_output=True,
            timeout=20,
            check=True,
        ).stdout
        return np.frombuffer(raw, np.uint8).reshape(height, width, 3)

    def close_window(self, window: str) -> None:
        """Ask ``window`` to close, as a window manager's close button does: a WM_DELETE_WINDOW client message."""
        xlib = ctypes.CDLL(ctypes.util.find_library("X11"))
        xlib.XOpenDisplay.restype = ctypes.c_void_p
        xlib.XOpenDisplay.argtypes = [ctypes.c_char_p]
        xlib.XInternAtom.restype = ctypes.c_ulong
        xlib.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        xlib.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
        xlib.XFlush.argtypes = xlib.XCloseDisplay.argtypes = [ctypes.c_void_p]
        connection = xlib.XOpenDisplay(self.display.encode())
        if not connection:
            pytest.fail(f"cannot connect to {self.display}")
        try:
            event = _Event()
            message = event.xclient
            message.type, message.window, message.format = CLIENT_MESSAGE, int(window), 32
            message.message_type = xlib.XInternAtom(connection, b"WM_PROTOCOLS", False)
            message.data[0] = xlib.XInternAtom(connection, b"WM_DELETE_WINDOW", False)
            if not xlib.XSendEvent(connection, int(window), False, 0, ctypes.byref(event)):
                pytest.fail("XSendEvent failed")
            xlib.XFlush(connection)
        finally:
            xlib.XCloseDisplay(connection)


CLIENT_MESSAGE = 33  # X.h


class _ClientMessage(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("serial", ctypes.c_ulong),
        ("send_event", ctypes.c_int),
        ("display", ctypes.c_void_p),
        ("window", ctypes.c_ulong),
        ("message_type", ctypes.c_ulong),
        ("format", ctypes.c_int),
        ("data", ctypes.c_long * 5),
    ]


class _Event(ctypes.Union):
    _fields_ = [("xclient", _ClientMessage), ("pad", ctypes.c_long * 24)]  # XEvent is 24 longs


def median_bgr(image: np.ndarray) -> tuple[int, ...]:
    return tuple(int(v) for v in np.median(image.reshape(-1, image.shape[-1]), axis=0))
