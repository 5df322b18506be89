"""An OpenCV window (cv2.imshow): needs a display and an OpenCV build with GUI support."""

from __future__ import annotations

import os

import cv2

from backdrop.errors import SinkError
from backdrop.pixels import to_bgr
from backdrop.stream.frame import Frame
from backdrop.stream.sinks.base import Sink

QUIT_KEYS = {ord("q"), 27}  # q or Esc


class WindowClosed(Exception):
    """The viewer pressed q/Esc or closed the window: the run should stop gracefully."""


class WindowSink(Sink):
    """Shows each frame; pressing q or Esc ends the run."""

    def __init__(self, title: str = "backdrop") -> None:
        self.title = title
        self.opened = False

    def open(self, width: int, height: int, fps: float) -> None:
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise SinkError("window output needs a display (DISPLAY is not set); use a file, http:// or null output")
        try:
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL)
        except cv2.error as e:
            raise SinkError("window output needs OpenCV with GUI support: pip install opencv-python") from e
        cv2.resizeWindow(self.title, width, height)
        self.opened = True

    def write(self, frame: Frame) -> None:
        cv2.imshow(self.title, to_bgr(frame.image, frame.layout))
        if cv2.waitKey(1) & 0xFF in QUIT_KEYS or cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
            raise WindowClosed

    def close(self) -> None:
        if self.opened:
            cv2.destroyWindow(self.title)
            self.opened = False

    def describe(self) -> str:
        return "window"
