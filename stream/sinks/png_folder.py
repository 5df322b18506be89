"""A folder of numbered PNG files; keeps an alpha channel (RGBA PNG) for transparent output."""

from __future__ import annotations

import os
from pathlib import Path

import cv2

from backdrop.errors import SinkError
from backdrop.pixels import BGRA, to_bgr
from backdrop.stream.frame import Frame
from backdrop.stream.sinks.base import Sink


class PngFolderSink(Sink):
    """Writes frame_000000.png, frame_000001.png … (fast, low compression: this is an intermediate format)."""

    def __init__(self, folder: str | Path, *, compression: int = 1) -> None:
        self.folder = Path(folder)
        self.params = [cv2.IMWRITE_PNG_COMPRESSION, compression]
        self.frames = 0
        self.created = False

    def open(self, width: int, height: int, fps: float) -> None:
        if self.folder.exists() and not self.folder.is_dir():
            raise SinkError(f"cannot write PNG frames to {self.folder}: it is a file")
        try:
            self.created = not self.folder.exists()
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SinkError(f"cannot create output folder {self.folder}: {e.strerror or e}") from e
        if not os.access(self.folder, os.W_OK):
            raise SinkError(f"cannot write PNG frames to {self.folder}: permission denied")

    def write(self, frame: Frame) -> None:
        path = self.folder / f"frame_{self.frames:06d}.png"
        image = frame.image if frame.layout == BGRA else to_bgr(frame.image, frame.layout)
        if not cv2.imwrite(str(path), image, self.params):
            raise SinkError(f"writing {path} failed")
        self.frames += 1

    def close(self) -> None:
        if self.created and not self.frames:
            self.folder.rmdir()
            self.created = False

    def describe(self) -> str:
        return f"{self.folder}/"
