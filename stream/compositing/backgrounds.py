"""Backgrounds: what replaces the pixels the matte marks as background, parsed from a spec string.

Specs: ``blur[:K]``, ``color:#RRGGBB``, a path to an image (scaled to cover) or a video (looped),
``transparent`` (BGRA out, alpha = matte) and ``mask`` (the matte itself, for debugging).
The replacements also compose I420 frames (see stream.pixels), so a file → file run never leaves YUV.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from backdrop.errors import BackgroundError, SourceError
from backdrop.pixels import BGR, BGRA, I420, IMAGE_SUFFIXES, VIDEO_SUFFIXES, bgr_to_i420, planes, to_bgr
from backdrop.stream.compositing.blend import I420Blender, Matte, blend, cleaned

if TYPE_CHECKING:
    from backdrop.stream.sources.video_file import VideoFileSource


def cover(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale ``image`` to cover width×height and crop the centre, as CSS ``object-fit: cover`` does."""
    ih, iw = image.shape[:2]
    scale = max(width / iw, height / ih)
    sw, sh = max(width, round(iw * scale)), max(height, round(ih * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    scaled = cv2.resize(image, (sw, sh), interpolation=interpolation)
    x, y = (sw - width) // 2, (sh - height) // 2
    return np.ascontiguousarray(scaled[y : y + height, x : x + width])


class Background(ABC):
    """Composes one frame with its matte. ``open`` receives the frame size and layout before the first frame."""

    has_alpha: bool = False  # True when compose returns BGRA
    layouts: tuple[str, ...] = (BGR,)  # frame layouts compose accepts
    cleans_edges = True  # clean edges where the mask config leaves it to the background (mask.clean_edges: auto)

    def open(self, width: int, height: int, layout: str = BGR) -> None:
        self.width, self.height, self.layout = width, height, layout

    def output_layout(self, layout: str) -> str:
        """The layout compose returns for frames in ``layout``."""
        return BGRA if self.has_alpha else layout

    @abstractmethod
    def compose(self, image: np.ndarray, matte: Matte) -> np.ndarray:
        """The output frame for ``image`` (in the layout given to open) and its ``matte`` (1 = person)."""

    def close(self) -> None:
        """Release any file the background reads."""


class Replacement(Background):
    """A background that puts another picture behind the person."""

    layouts = (BGR, I420)
    fresh_backdrop = False  # True when backdrop() returns a new array each call, which the blend may overwrite

    @abstractmethod
    def backdrop(self, image: np.ndarray) -> np.ndarray:
        """The full-resolution picture behind the person for this frame, in the frame's layout."""

    def open(self, width: int, height: int, layout: str = BGR) -> None:
        super().open(width, height, layout)
        self.blend = I420Blender(width, height).blend if layout == I420 else blend

    def compose(self, image: np.ndarray, matte: Matte) -> np.ndarray:
        matte = matte.cleaning(self.cleans_edges)
        return self.blend(image, self.backdrop(image), matte, backdrop_is_scratch=self.fresh_backdrop)

    def in_layout(self, picture: np.ndarray) -> np.ndarray:
        """A full-size BGR ``picture`` converted to the frame layout."""
        return bgr_to_i420(picture) if self.layout == I420 else picture


class Blur(Replacement):
    """The frame itself, blurred by a Gaussian of kernel ``ksize`` (computed at reduced size: same look, less work)."""

    fresh_backdrop = True
    # the backdrop is the old background itself, blurred: the band's old colours already belong there, and
    # estimating the person's instead (clean_edges: true) changes little for 1 ms of a 720p frame
    cleans_edges = False
    MAX_SIZE = 255  # a wider kernel looks no different and costs seconds per frame

    def __init__(self, ksize: int) -> None:
        if not (1 <= ksize <= self.MAX_SIZE and ksize % 2 == 1):
            raise BackgroundError(
                f"background 'blur:{ksize}': blur size must be odd, 1 to {self.MAX_SIZE}, e.g. blur:21"
            )
        self.ksize = ksize
        self.sigma = 0.3 * ((ksize - 1) * 0.5 - 1) + 0.8  # OpenCV's sigma for a kernel of this size
        self.factor = max(1, min(8, int(self.sigma)))

    def backdrop(self, image: np.ndarray) -> np.ndarray:
        out = np.empty_like(image)
        for plane, target in zip(planes(image, self.layout), planes(out, self.layout), strict=True):
            height, width = plane.shape[:2]
            small = cv2.resize(plane, (max(1, width // self.factor), max(1, height // self.factor)))
            # a half-size chroma plane is blurred half as far, so every plane blurs the same picture area
            small = cv2.GaussianBlur(small, (0, 0), self.sigma * width / self.width / self.factor)
            cv2.resize(small, (width, height), dst=target, interpolation=cv2.INTER_LINEAR)
        return out


class Color(Replacement):
    """A solid colour."""

    def __init__(self, bgr: tuple[int, int, int]) -> None:
        self.bgr = bgr

    def open(self, width: int, height: int, layout: str = BGR) -> None:
        super().open(width, height, layout)
        plate = np.empty((height, width, 3), np.uint8)
        plate[:] = self.bgr
        self.plate = self.in_layout(plate)

    def backdrop(self, image: np.ndarray) -> np.ndarray:
        return self.plate


class Picture(Replacement):
    """A still image, scaled to cover the frame once at open."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def open(self, width: int, height: int, layout: str = BGR) -> None:
        super().open(width, height, layout)
        image = cv2.imread(str(self.path), cv2.IMREAD_COLOR)
        if image is None:
            raise BackgroundError(f"cannot read background image {self.path}")
        self.plate = self.in_layout(cover(image, width, height))

    def backdrop(self, image: np.ndarray) -> np.ndarray:
        return self.plate


class Clip(Replacement):
    """A video played in a loop, one background frame per output frame, scaled to cover."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.reader: VideoFileSource | None = None

    def open(self, width: int, height: int, layout: str = BGR) -> None:
        super().open(width, height, layout)
        self._restart()
        last = self._next()
        if last is None:
            raise BackgroundError(f"background video {self.path} has no decodable frames")
        self.last = last
        self._restart()

    def _restart(self) -> None:
        from backdrop.stream.sources.video_file import VideoFileSource  # lazy: PyAV only when a clip is used

        self.close()
        self.reader = VideoFileSource(self.path)
        try:
            self.reader.open()
        except SourceError as e:
            raise BackgroundError(f"background video: {e}") from e

    def _next(self) -> np.ndarray | None:
        if self.reader is None:
            raise BackgroundError(f"background video {self.path} is not open")
        frame = self.reader.read()
        if frame is None:
            return None
        return self.in_layout(cover(to_bgr(frame.image, frame.layout), self.width, self.height))

    def backdrop(self, image: np.ndarray) -> np.ndarray:
        frame = self._next()
        if frame is None:  # end of the clip: play it again
            self._restart()
            frame = self._next()
        if frame is not None:
            self.last = frame
        return self.last

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()


class Transparent(Background):
    """Keeps the frame and writes the matte into an alpha channel (BGRA out)."""

    has_alpha = True

    def compose(self, image: np.ndarray, matte: Matte) -> np.ndarray:
        # the band's own colours: clean cut-outs, whatever they are later laid on
        out = cv2.cvtColor(cleaned(image, matte.cleaning(self.cleans_edges)), cv2.COLOR_BGR2BGRA)
        out[:, :, 3] = cv2.convertScaleAbs(matte.full(), alpha=255.0)
        return out


class MaskView(Background):
    """The matte as a grey picture: white = person. For debugging the segmentation."""

    def compose(self, image: np.ndarray, matte: Matte) -> np.ndarray:
        return cv2.cvtColor(cv2.convertScaleAbs(matte.full(), alpha=255.0), cv2.COLOR_GRAY2BGR)


_COLOR = re.compile(r"#?([0-9a-fA-F]{6})")
DEFAULT_BLUR = 21  # the kernel of a plain `blur`


def parse_background(spec: str) -> Background:
    """A Background for ``spec``; a BackgroundError names what is wrong with it."""
    kind, _, arg = spec.partition(":")
    if kind == "blur":
        if arg and not re.fullmatch(r"[0-9]{1,9}", arg):  # ASCII digits only: int() takes "²" and "٣" too
            raise BackgroundError(f"background {spec!r}: blur size must be a number, e.g. blur:21")
        return Blur(int(arg) if arg else DEFAULT_BLUR)
    if kind == "color":
        match = _COLOR.fullmatch(arg)
        if not match:
            raise BackgroundError(f"background {spec!r}: expected color:#RRGGBB")
        r, g, b = (int(match.group(1)[i : i + 2], 16) for i in (0, 2, 4))
        return Color((b, g, r))
    if spec == "transparent":
        return Transparent()
    if spec == "mask":
        return MaskView()
    path = Path(spec)
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES | VIDEO_SUFFIXES:
        raise BackgroundError(
            f"background {spec!r} is not blur[:K], color:#RRGGBB, transparent, mask, or an image/video file"
        )
    if not path.is_file():
        raise BackgroundError(f"background file not found: {spec}")
    return Picture(path) if suffix in IMAGE_SUFFIXES else Clip(path)
