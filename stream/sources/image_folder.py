"""A folder of images, read in sorted name order at a nominal frame rate.

An image that cannot be used (unreadable, or smaller than the steps take: stream.core.steps.MIN_SIDE) is skipped
and named in ``damage``, which the run reports after writing every good frame; a folder with no usable image
at all is a SourceError that names them.
"""

from __future__ import annotations

from pathlib import Path

import cv2

from backdrop.errors import SourceError
from backdrop.pixels import IMAGE_SUFFIXES
from backdrop.stream.core.frame import Frame
from backdrop.stream.core.steps import MIN_SIDE, size_problem
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
        self.too_small: list[str] = []  # "NAME (WxH)"
        self.produced = 0
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
            elif size_problem(image.shape[1], image.shape[0]):
                self.too_small.append(f"{path.name} ({image.shape[1]}x{image.shape[0]})")
            else:
                if self.size is None:
                    self.size = (image.shape[1], image.shape[0])
                elif (image.shape[1], image.shape[0]) != self.size:
                    image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
                index = self.position - 1
                self.produced += 1
                return Frame(image, index=index, pts_s=index / self._fps)
            self.damage = f"{self.folder}: {self.skipped}"
        if not self.produced and self.skipped:  # nothing to run on: say why rather than "produced no frames"
            raise SourceError(f"no usable images in folder {self.folder}: {self.skipped}")
        return None

    @property
    def skipped(self) -> str:
        """What was skipped so far, and why ("" when nothing was)."""
        reasons = []
        if self.unreadable:
            reasons.append(f"skipped unreadable images: {', '.join(self.unreadable)}")
        if self.too_small:
            reasons.append(f"skipped images under {MIN_SIDE}x{MIN_SIDE} pixels: {', '.join(self.too_small)}")
        return "; ".join(reasons)

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
