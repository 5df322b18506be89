"""A local camera (an index or /dev/videoN) through OpenCV, in the mode the config asks for.

Cameras grant the nearest mode they have, not the one asked for, so the granted mode is read back and logged
once. V4L2 only offers sizes and rates within the current pixel format: the FourCC is set first, then the size,
then the rate (a USB camera gives 1080p30 only as MJPG; in YUYV the bus limits it to a few fps).

Opening reads the first frame, so a missing or busy camera is one error at once. A camera that stops
delivering after it played (unplugged, USB reset) is reopened with capped exponential backoff like a dropped
network stream, until ``give_up_after_s`` of continuous outage. Reads happen in the caller's thread; only the
backoff wait can be long, and ``interrupt()`` ends it.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from backdrop.errors import SourceError
from backdrop.stream.core.backoff import Backoff
from backdrop.stream.core.frame import Frame
from backdrop.stream.sources.base import Source

log = logging.getLogger(__name__)

FALLBACK_FPS = 30.0
FPS_TOLERANCE = 0.5  # a camera asked for 30 fps that reports 29.97 granted it

# (device, open parameters) → an object with cv2.VideoCapture's isOpened/set/get/read/release
CaptureOpener = Callable[[int | str, Sequence[int]], Any]


@dataclass(frozen=True)
class WebcamMode:
    """A camera mode; None fields are left to the camera (when asking) or unknown (when granted)."""

    width: int | None = None
    height: int | None = None
    fps: float | None = None
    pixel_format: str | None = None  # FourCC, e.g. MJPG or YUYV

    def describe(self) -> str:
        size = f"{self.width}x{self.height}" if self.width and self.height else "default size"
        rate = f"{self.fps:.3g} fps" if self.fps else "default fps"
        return f"{size} {self.pixel_format or 'default format'} at {rate}"

    def grants(self, asked: WebcamMode) -> bool:
        """Whether this (granted) mode is what ``asked`` asked for, in every field it set."""
        return (
            (asked.width is None or (self.width, self.height) == (asked.width, asked.height))
            and (asked.pixel_format is None or self.pixel_format == asked.pixel_format)
            and (asked.fps is None or (self.fps is not None and abs(self.fps - asked.fps) <= FPS_TOLERANCE))
        )


def mode_requests(asked: WebcamMode) -> list[tuple[int, float]]:
    """The capture properties to set for ``asked``, in the order V4L2 needs: FourCC, then size, then rate."""
    requests: list[tuple[int, float]] = []
    if asked.pixel_format:
        requests.append((cv2.CAP_PROP_FOURCC, float(cv2.VideoWriter.fourcc(*asked.pixel_format))))
    if asked.width and asked.height:
        requests += [(cv2.CAP_PROP_FRAME_WIDTH, float(asked.width)), (cv2.CAP_PROP_FRAME_HEIGHT, float(asked.height))]
    if asked.fps:
        requests.append((cv2.CAP_PROP_FPS, float(asked.fps)))
    return requests


def fourcc_name(code: float) -> str | None:
    """The four characters of a CAP_PROP_FOURCC value, or None when the backend reports none (0, garbage)."""
    value = int(code)
    if value <= 0:
        return None
    text = value.to_bytes(4, "little", signed=False).decode("latin-1") if value < 1 << 32 else ""
    return text if len(text) == 4 and text.isascii() and text.isprintable() else None


def granted_mode(capture: Any, image: np.ndarray) -> WebcamMode:
    """The mode a camera delivers: the size of a real frame, the rate and FourCC it reports."""
    fps = capture.get(cv2.CAP_PROP_FPS)
    return WebcamMode(
        image.shape[1], image.shape[0], fps if fps > 0 else None, fourcc_name(capture.get(cv2.CAP_PROP_FOURCC))
    )


def mode_report(name: str, granted: WebcamMode, asked: WebcamMode) -> str:
    """The one log line saying which mode the camera gave, and what was asked when that differs."""
    if asked == WebcamMode():
        note = "camera default"
    elif granted.grants(asked):
        note = "as asked"
    else:
        note = f"asked {asked.describe()}"
    return f"webcam {name}: {granted.describe()} ({note})"


def open_cv2_capture(device: int | str, params: Sequence[int]) -> cv2.VideoCapture:
    return cv2.VideoCapture(device, cv2.CAP_ANY, list(params))


class WebcamSource(Source):
    """Frames from a local camera device, reconnecting when it stops delivering after it played.

    ``granted`` is the mode the camera gave (known once open); ``counters()`` reports ``reconnects``.
    """

    live = True

    def __init__(
        self,
        device: int | str,
        *,
        mode: WebcamMode | None = None,
        open_timeout_s: float = 5.0,
        read_timeout_s: float = 2.0,
        max_backoff_s: float = 10.0,
        give_up_after_s: float | None = None,
        open_capture: CaptureOpener = open_cv2_capture,
    ) -> None:
        self.device = device
        self.mode = mode or WebcamMode()
        self.open_timeout_s = open_timeout_s
        self.read_timeout_s = read_timeout_s
        self.max_backoff_s = max_backoff_s
        self.give_up_after_s = give_up_after_s
        self.granted: WebcamMode | None = None
        self.reconnects = 0
        self.capture: Any = None
        self.index = 0
        self._open_capture = open_capture
        self._first: np.ndarray | None = None  # read by open(), returned by the first read()
        self._stop = threading.Event()
        self._lock = threading.Lock()  # close() must not release the capture under a read()

    def open(self) -> None:
        path = self._node()
        if path is not None and not path.exists():
            raise SourceError(
                f"cannot open webcam {self.describe()}: no such device (`backdrop devices` lists cameras)"
            )
        image = self._connect()
        if image is None:
            raise SourceError(
                f"cannot open webcam {self.describe()}: it delivers no frames (busy in another application?)"
            )
        self.granted = granted_mode(self.capture, image)
        self._first = image
        log.info(mode_report(self.describe(), self.granted, self.mode))

    def read(self) -> Frame | None:
        image: np.ndarray | None
        if self._first is not None:
            image, self._first = self._first, None
        else:
            if self.granted is None:
                raise SourceError(f"webcam {self.describe()} is not open")
            if self._stop.is_set():
                return None
            image = self._read_one() if self.capture is not None else None
            if image is None:
                image = self._reconnect()
                if image is None:  # stopped while reconnecting
                    return None
        self.index += 1
        return Frame(self._conformed(image), index=self.index - 1)

    def interrupt(self) -> None:
        """A stop during an outage: the waiting ``read()`` returns None instead of reconnecting."""
        self._stop.set()

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            self._release()

    @property
    def fps(self) -> float:
        return self.granted.fps if self.granted is not None and self.granted.fps else FALLBACK_FPS

    def counters(self) -> dict[str, int]:
        return {"reconnects": self.reconnects}

    def describe(self) -> str:
        return f"/dev/video{self.device}" if isinstance(self.device, int) else str(self.device)

    # -- connection ------------------------------------------------------------------------------------

    def _node(self) -> Path | None:
        """The device node to check before opening, where the platform has one (V4L2)."""
        if isinstance(self.device, str):
            return Path(self.device)
        return Path(self.describe()) if sys.platform.startswith("linux") else None

    def _connect(self) -> np.ndarray | None:
        """Open the camera in the asked mode and read one frame; None (and nothing held) if either fails."""
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            int(self.open_timeout_s * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            int(self.read_timeout_s * 1000),
        ]
        with self._lock:
            if self._stop.is_set():
                return None
            self.capture = self._open_capture(self.device, params)
            if self.capture.isOpened():
                for prop, value in mode_requests(self.mode):
                    self.capture.set(prop, value)
                ok, image = self.capture.read()
                if ok and image is not None:
                    return image
            self._release()
            return None

    def _read_one(self) -> np.ndarray | None:
        with self._lock:
            if self.capture is None:
                return None
            ok, image = self.capture.read()
        return image if ok and image is not None else None

    def _reconnect(self) -> np.ndarray | None:
        """Reopen the camera with backoff until it delivers again; None once stopped.

        Raises SourceError when the outage outlasts ``give_up_after_s``.
        """
        with self._lock:
            self._release()
        lost_at = time.monotonic()
        backoff = Backoff(max_s=self.max_backoff_s)
        log.warning("webcam %s: stopped delivering frames (unplugged?); reconnecting", self.describe())
        while True:
            delay = backoff.next_delay()
            if self.give_up_after_s is not None:  # try once more at the deadline
                delay = min(delay, max(0.0, lost_at + self.give_up_after_s - time.monotonic()))
            if self._stop.wait(delay):
                return None
            image = self._connect()
            outage = time.monotonic() - lost_at
            if image is not None:
                self.reconnects += 1
                log.warning(
                    "webcam %s: reconnected after %.1f s (reconnect %d)", self.describe(), outage, self.reconnects
                )
                return image
            if self.give_up_after_s is not None and outage >= self.give_up_after_s:
                raise SourceError(f"webcam {self.describe()}: gave up after {outage:.1f} s without a frame")
            log.warning("webcam %s: still no camera (attempt %d)", self.describe(), backoff.failures)

    def _conformed(self, image: np.ndarray) -> np.ndarray:
        """A reopened camera may grant another size; sinks keep the geometry of the first frame."""
        granted = self.granted
        if granted is None or (image.shape[1], image.shape[0]) == (granted.width, granted.height):
            return image
        if granted.width is None or granted.height is None:  # a granted mode always has the frame's size
            raise SourceError(f"webcam {self.describe()}: granted mode {granted.describe()} has no size")
        return cv2.resize(image, (granted.width, granted.height), interpolation=cv2.INTER_AREA)

    def _release(self) -> None:
        if self.capture is not None:
            self.capture.release()
            self.capture = None
