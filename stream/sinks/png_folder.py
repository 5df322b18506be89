"""A folder of numbered PNG files; keeps an alpha channel (RGBA PNG) for transparent output.

Each frame is written under a hidden temporary name and moved into place, so a killed run never leaves a
half-written PNG under a frame's name; a folder that already holds frames is refused, so runs never mix, unless
the sink was told to ``replace`` them (``backdrop run -y``), when the earlier run's frames are removed first.
While open, the sink holds the folder's write lock (``.NAME.lock`` beside it, see stream.sinks.write_lock): a
second writer of the folder is refused as one, not as "an earlier run".
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2

from backdrop.errors import SinkError
from backdrop.pixels import BGRA, to_bgr
from backdrop.stream.core.frame import Frame
from backdrop.stream.sinks.base import Sink
from backdrop.stream.sinks.write_lock import WriteLock

FRAME_GLOB = "frame_*.png"


def earlier_frames(folder: Path) -> list[Path]:
    """The frames a run has left in ``folder`` (none when it is not a folder)."""
    return sorted(folder.glob(FRAME_GLOB)) if folder.is_dir() else []


class PngFolderSink(Sink):
    """Writes frame_000000.png, frame_000001.png … (fast, low compression: this is an intermediate format)."""

    def __init__(self, folder: str | Path, *, compression: int = 1, replace: bool = False) -> None:
        self.folder = Path(folder)
        self.replace = replace
        self.params = [cv2.IMWRITE_PNG_COMPRESSION, compression]
        self.frames = 0
        self.created = False
        self.lock = WriteLock(self.folder, label=self.describe())

    def open(self, width: int, height: int, fps: float) -> None:
        if self.folder.exists() and not self.folder.is_dir():
            raise SinkError(f"cannot write PNG frames to {self.folder}: it is a file")
        try:
            self.folder.parent.mkdir(parents=True, exist_ok=True)  # the lock lies there
        except OSError as e:
            raise SinkError(f"cannot create output folder {self.folder}: {e.strerror or e}") from e
        self.lock.acquire()
        try:
            self._prepare()
        except BaseException:
            self.lock.release()
            raise

    def _prepare(self) -> None:
        """An empty, writable folder (created when missing)."""
        earlier = earlier_frames(self.folder)
        if earlier and not self.replace:
            raise SinkError(
                f"{self.describe()} already has {len(earlier)} frames from an earlier run: "
                "choose an empty folder, remove them or pass -y/--overwrite"
            )
        try:
            for path in earlier:
                path.unlink()
        except OSError as e:
            raise SinkError(f"cannot remove the earlier frames in {self.describe()}: {e.strerror or e}") from e
        try:
            self.created = not self.folder.exists()
            self.folder.mkdir(exist_ok=True)
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
            partial.write_bytes(data.tobytes())
            os.replace(partial, path)
        except OSError as e:
            partial.unlink(missing_ok=True)
            raise SinkError(f"writing {path} failed: {e.strerror or e}") from e
        self.frames += 1

    def close(self) -> None:
        try:
            if self.created and not self.frames:
                self.folder.rmdir()
                self.created = False
        finally:
            self.lock.release()

    def describe(self) -> str:
        return f"{self.folder}/"
