"""A V4L2 webcam (by index or /dev/videoN) through OpenCV; live, so the pipeline drops frames it cannot keep up with."""

from __future__ import annotations

import cv2

from backdrop.errors import SourceError
from backdrop.stream.frame import Frame
from backdrop.stream.sources.base import Source


class WebcamSource(Source):
    """Frames from a local camera device."""

    live = True

    def __init__(self, device: int | str, *, open_timeout_s: float = 5.0, read_timeout_s: float = 2.0) -> None:
        self.device = device
        self.open_timeout_s = open_timeout_s
        self.read_timeout_s = read_timeout_s
        self.capture: cv2.VideoCapture | None = None
        self.index = 0

    def open(self) -> None:
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            int(self.open_timeout_s * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            int(self.read_timeout_s * 1000),
        ]
        self.capture = cv2.VideoCapture(self.device, cv2.CAP_ANY, params)
        if not self.capture.isOpened():
            self.close()
            raise SourceError(f"cannot open webcam {self.describe()}: no such device or it is busy")

    def read(self) -> Frame | None:
        if self.capture is None:
            raise SourceError(f"webcam {self.describe()} is not open")
        ok, image = self.capture.read()
        if not ok:
            raise SourceError(f"webcam {self.describe()} stopped delivering frames")
        self.index += 1
        return Frame(image, index=self.index - 1)

    def close(self) -> None:
        if self.capture is not None:
            self.capture.release()
            self.capture = None

    @property
    def fps(self) -> float:
        reported = self.capture.get(cv2.CAP_PROP_FPS) if self.capture is not None else 0.0
        return reported if reported > 0 else 30.0

    def describe(self) -> str:
        return f"/dev/video{self.device}" if isinstance(self.device, int) else str(self.device)
