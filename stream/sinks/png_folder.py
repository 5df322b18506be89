"""A folder of numbered PNG files; keeps an alpha channel (RGBA PNG) for transparent output.

Each frame is written under a hidden temporary name and moved into place, so a killed run never leaves a
half-written PNG under a frame's name; a folder that already holds frames is refused, so runs never mix.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2

from backdrop.errors import SinkError
from backdrop.pixels import BGRA, to_bgr
from backdrop.stream.core.frame import Frame
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
        earlier = sum(1 for _ in self.folder.glob("frame_*.png"))
        if earlier:
            raise SinkError(
                f"{self.describe()} already has {earlier} frames from an earlier run: "
                "choose an empty folder or remove them"
            )
        try:
            self.created = not self.folder.exists()
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SinkError(f"cannot create output folder {self.folder}: {e.strerror or e}") from e
        if not os.access(self.folder, os.W_OK):
            raise SinkError(f"cannot write PNG frames to {self.folder}: permission denied")

    def write(self, frame: Frame) -> None:
        path = self.folder / f"frame_{self.frames:06d}.png"
        partial = path.with_name(f".{path.name}.partial")
        image = frame.image if frame.layout == BGRA else to_bgr(frame.image, frame.layout)
        encoded, data = cv2.imencode(".png", image, self.params)
        if not encoded:
            raise SinkError(f"encoding {path} failed")
        try:
            partial.write_bytes(data)
            os.replace(partial, path)
        except OSError as e:
            partial.unlink(missing_ok=True)
            raise SinkError(f"writing {path} failed: {e.strerror or e}") from e
        self.frames += 1

    def close(self) -> None:
        if self.created and not self.frames:
            self.folder.rmdir()
            self.created = False

    def describe(self) -> str:
        return f"{self.folder}/"
