"""Clips for the motion-compensated matte benchmark: a person cut out of a photo, moving over a room, in shots.

Each shot puts one of the bundled photos' people (cut out once by the model's own matte of the photo, so the
composite holds a person and no photo background) over the demo room, moving one way:

* ``still``: nothing moves; only camera noise changes from frame to frame;
* ``talking``: a talking head, mostly still — a small sway and nod, and now and then a lean to one side and back;
* ``moving``: a person swaying across the frame, bobbing and stepping closer and back, the camera panning;
* ``pan``: the camera pans across a still person (both move together).

Shots follow each other with hard cuts (another person, another part of the room). Frames are rendered on
demand and written losslessly (H.264, qp 0), so every reader decodes the same pictures.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from backdrop.model.segmenter import Segmenter
from backdrop.stream.compositing.backgrounds import cover
from backdrop.stream.compositing.matte import MatteMaker
from backdrop.stream.config.run import MaskConfig
from backdrop.stream.sources.demo_clip import encode_h264, room

ASSETS = Path(__file__).resolve().parents[1] / "backdrop" / "assets"
MOTIONS = ("still", "talking", "moving", "pan")


@dataclass(frozen=True)
class Shot:
    """``frames`` frames of the person in ``photo`` doing ``motion`` under Gaussian noise of ``noise`` (0–255)."""

    photo: str
    motion: str
    frames: int
    noise: float = 4.0
    room_offset: float = 0.0  # where in the (twice as wide) room the shot starts, as a share of the frame width


def smoothstep(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3 - 2 * x)


def pose(motion: str, t: int, height: int) -> tuple[float, float, float, float]:
    """(person dx, person dy, person scale, room pan) in pixels at frame ``t`` of a shot."""
    if motion == "talking":
        lean_phase = t % 90  # every 3 s: 20 frames to lean over, 10 still, 20 back
        lean = smoothstep(lean_phase / 20) - smoothstep((lean_phase - 30) / 20)
        dx = 0.006 * height * np.sin(2 * np.pi * t / 50) + 0.05 * height * lean
        return dx, 0.004 * height * np.sin(2 * np.pi * t / 23), 1.0, 0.0
    if motion == "moving":
        dx = 0.10 * height * np.sin(2 * np.pi * t / 70)  # up to ≈ 6.5 px per frame at 720p
        scale = 1.0 + 0.04 * np.sin(2 * np.pi * t / 90)
        return dx, 0.015 * height * np.sin(2 * np.pi * t / 31), scale, 2.0 * t
    if motion == "pan":
        return -6.0 * t, 0.0, 1.0, 6.0 * t
    return 0.0, 0.0, 1.0, 0.0


class Cutout:
    """A photo's person as (BGR, alpha) at ``side``×``side``, cut out by the model's own refined matte."""

    def __init__(self, photo: Path, side: int, segmenter: Segmenter) -> None:
        image = cv2.imread(str(photo), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(photo)
        self.image = cover(image, side, side)
        mask = segmenter.segment(segmenter.contract.to_model_input(self.image)[None])[0]
        maker = MatteMaker(MaskConfig(temporal="none"), side, side)
        self.alpha = maker.matte(mask, self.image, None)[0].full()


class MotionClip:
    """Renders the frames of a list of shots at ``width``×``height``."""

    def __init__(self, shots: list[Shot], width: int, height: int, segmenter: Segmenter, seed: int = 0) -> None:
        self.shots, self.width, self.height, self.seed = shots, width, height, seed
        side = round(height * 0.95)
        self.cutouts = {name: Cutout(ASSETS / name, side, segmenter) for name in {s.photo for s in shots}}
        self.room = room(width, height)

    @property
    def cuts(self) -> list[int]:
        """The index of each shot's first frame but the first: where the picture changes at once."""
        starts = np.cumsum([shot.frames for shot in self.shots])[:-1]
        return [int(s) for s in starts]

    def __len__(self) -> int:
        return sum(shot.frames for shot in self.shots)

    def frames(self) -> Iterator[np.ndarray]:
        rng = np.random.default_rng(self.seed)
        for shot in self.shots:
            for t in range(shot.frames):
                yield self.render(shot, t, rng)

    def render(self, shot: Shot, t: int, rng: np.random.Generator) -> np.ndarray:
        width, height = self.width, self.height
        dx, dy, scale, pan = pose(shot.motion, t, height)
        start = shot.room_offset * width + pan
        wall = self.room
        shift = np.array([[1, 0, -(start % width)], [0, 1, 0]], np.float32)
        background = cv2.warpAffine(wall, shift, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
        cutout = self.cutouts[shot.photo]
        side = cutout.image.shape[0]
        x0, y0 = (width - side) / 2 + dx, height - side + dy + 0.02 * height
        centre = side / 2
        place = np.array([[scale, 0, x0 + centre * (1 - scale)], [0, scale, y0 + centre * (1 - scale)]], np.float32)
        person = cv2.warpAffine(cutout.image, place, (width, height), flags=cv2.INTER_LINEAR)
        alpha = cv2.warpAffine(cutout.alpha, place, (width, height), flags=cv2.INTER_LINEAR)[..., None]
        frame: np.ndarray = background.astype(np.float32) * (1 - alpha) + person.astype(np.float32) * alpha
        if shot.noise:
            frame += rng.normal(0.0, shot.noise, frame.shape).astype(np.float32)
        return np.clip(frame, 0, 255).astype(np.uint8)

    def write(self, path: Path, fps: float = 30.0) -> Path:
        """Encode every frame losslessly (H.264 qp 0, yuv420p) and return ``path``."""
        return encode_h264(path, self.frames(), (self.width, self.height), fps, {"qp": "0", "preset": "ultrafast"})
