"""A folder of images, read in sorted name order at a nominal frame rate."""

from __future__ import annotations

from pathlib import Path

import cv2

from backdrop.errors import SourceError
from backdrop.pixels import IMAGE_SUFFIXES
from backdrop.stream.core.frame import Frame
from backdrop.stream.sources.base import Source


class ImageFolderSource(Source):
    """Every image in a folder, sorted by name; later images are resized to the first one's size."""

    live = False

    def __init__(self, folder: str | Path, *, fps: float = 30.0) -> None:
        self.folder = Path(folder)
        self._fps = fps
        self.paths: list[Path] = []
        self.position = 0
        self.size: tuple[int, int] | None = None
        self.unreadable: list[str] = []
        self.damage: str | None = None

    def open(self) -> None:
        try:
            self.paths = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        except OSError as e:
            raise SourceError(f"cannot list image folder {self.folder}: {e.strerror or e}") from e
        if not self.paths:
            raise SourceError(f"no images in folder {self.folder}")
        self.position = 0

    def read(self) -> Frame | None:
        while self.position < len(self.paths):
            path = self.paths[self.position]
            self.position += 1
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                self.unreadable.append(path.name)
                self.damage = f"{self.folder}: skipped unreadable images: {', '.join(self.unreadable)}"
                continue
            if self.size is None:
                self.size = (image.shape[1], image.shape[0])
            elif (image.shape[1], image.shape[0]) != self.size:
                image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
            index = self.position - 1
            return Frame(image, index=index, pts_s=index / self._fps)
        return None

    def close(self) -> None:
        self.position = len(self.paths)

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def frame_count(self) -> int | None:
        return len(self.paths)

    def describe(self) -> str:
        return f"{self.folder}/"
