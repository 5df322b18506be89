"""The bundled demo input: a short clip of a person made from a public-domain photo, generated on demand.

The photo (NASA's portrait of Eileen Collins, ``backdrop/assets/astronaut.jpg``) sways gently in front of a
synthetic room. Each frame can carry its index as a binary code on the person's chest, so a test can
check after compositing (which keeps person pixels) that every frame arrived, in order.

    python -m backdrop.stream.sources.demo_clip out/demo_input.mp4 --size 1280x720 --frames 150
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from fractions import Fraction
from importlib import resources
from pathlib import Path

import av
import cv2
import numpy as np

DEFAULT_PHOTO = Path(str(resources.files("backdrop") / "assets" / "astronaut.jpg"))
STAMP_BITS = 12  # frame indices up to 4095
SWAY_PX = 0.03  # horizontal sway of the person, as a fraction of the frame height


def stamp_cells(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """(x0, y0, x1, y1) of the code's cells: a start cell (white), STAMP_BITS bits, an end cell (black).

    They sit across the chest of the person's suit, which the model marks as foreground throughout the sway.
    """
    cells = STAMP_BITS + 2
    left, right = width / 2 - 0.36 * height, width / 2 - 0.02 * height
    top, bottom = round(0.60 * height), round(0.66 * height)
    edges = np.linspace(left, right, cells + 1).round().astype(int)
    return [(int(edges[i]), top, int(edges[i + 1]), bottom) for i in range(cells)]


def stamp(image: np.ndarray, index: int) -> None:
    """Draw ``index`` as a binary code into ``image`` (in place)."""
    bits = [1, *((index >> b) & 1 for b in range(STAMP_BITS)), 0]
    for (x0, y0, x1, y1), bit in zip(stamp_cells(image.shape[1], image.shape[0]), bits, strict=True):
        image[y0:y1, x0:x1] = 255 if bit else 0


def read_stamp(image: np.ndarray) -> int | None:
    """The index stamped into ``image`` (BGR or BGRA), or None when the code is not there."""
    gray = cv2.cvtColor(image[..., :3], cv2.COLOR_BGR2GRAY)
    values = []
    for x0, y0, x1, y1 in stamp_cells(image.shape[1], image.shape[0]):
        mx, my = max(1, (x1 - x0) // 4), max(1, (y1 - y0) // 4)
        values.append(float(gray[y0 + my : y1 - my, x0 + mx : x1 - mx].mean()))
    bits = [v > 128 for v in values]
    if not bits[0] or bits[-1] or any(85 < v < 170 for v in values):
        return None
    return sum(1 << b for b, bit in enumerate(bits[1:-1]) if bit)


def room(width: int, height: int) -> np.ndarray:
    """A synthetic background, twice as wide as the frame so it can drift: a gradient wall with shelves."""
    wide = 2 * width
    yy, xx = np.mgrid[0:height, 0:wide].astype(np.float32)
    wall = np.empty((height, wide, 3), np.uint8)
    wall[..., 0] = 90 + 60 * np.sin(xx * (2 * np.pi / wide))
    wall[..., 1] = 120 + 50 * yy / height
    wall[..., 2] = 150 + 40 * np.cos(xx * (6 * np.pi / wide))
    rng = np.random.default_rng(7)
    for _ in range(12):
        x, y = int(rng.integers(0, wide - 80)), int(rng.integers(0, height - 40))
        w, h = int(rng.integers(40, max(41, width // 6))), int(rng.integers(10, max(11, height // 12)))
        colour = tuple(int(c) for c in rng.integers(30, 220, 3))
        cv2.rectangle(wall, (x, y), (x + w, y + h), colour, -1)
    return wall


class DemoClip:
    """Renders frame ``i`` of the demo: the photo, height-filling and swaying, over a drifting room."""

    def __init__(self, width: int, height: int, photo: Path = DEFAULT_PHOTO) -> None:
        image = cv2.imread(str(photo), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(f"demo photo not found: {photo}")
        side = height
        self.person = cv2.resize(image, (side, side), interpolation=cv2.INTER_CUBIC)
        self.width, self.height = width, height
        self.wall = room(width, height)

    def frame(self, index: int, *, with_stamp: bool = False) -> np.ndarray:
        offset = (index * 3) % self.width
        image = self.wall[:, offset : offset + self.width].copy()
        side = self.height
        sway = round(SWAY_PX * self.height * np.sin(index / 12.0))
        x0 = max(0, (self.width - side) // 2 + sway)
        x1 = min(self.width, x0 + side)
        image[:, x0:x1] = self.person[:, : x1 - x0]
        if with_stamp:
            stamp(image, index)
        return image


def write_clip(
    path: str | Path,
    *,
    width: int = 1280,
    height: int = 720,
    frames: int = 150,
    fps: float = 30.0,
    with_stamp: bool = False,
    photo: Path = DEFAULT_PHOTO,
) -> Path:
    """Encode the demo clip as H.264 (yuv420p) with PyAV and return its path."""
    clip = DemoClip(width, height, photo)
    pictures = (clip.frame(index, with_stamp=with_stamp) for index in range(frames))
    return encode_h264(Path(path), pictures, (width, height), fps, {"preset": "veryfast", "crf": "18"})


def encode_h264(
    path: Path, pictures: Iterable[np.ndarray], size: tuple[int, int], fps: float, options: dict[str, str]
) -> Path:
    """Write BGR ``pictures`` of ``size`` as an H.264 (yuv420p) file with x264 ``options``; returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = *size, "yuv420p"
        stream.options = options
        for image in pictures:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        container.mux(stream.encode(None))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--size", default="1280x720", help="WIDTHxHEIGHT (even numbers)")
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--stamp", action="store_true", help="draw each frame's index as a binary code")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    print(write_clip(args.output, width=width, height=height, frames=args.frames, fps=args.fps, with_stamp=args.stamp))


if __name__ == "__main__":
    main()
