"""A contact sheet of matte edges: crops around the silhouette of a few frames, composited on a checker.

Edge faults (a glow, see-through hair, a halo) are hard to see in a whole frame and obvious in a close
crop over a pattern that no real background has. Rows are frames spread over the clip; columns are crops
centred on the top, left and right extremes of the person's 0.5 edge, each crop shown once per version of the
frame's colours (``backdrop eval --video``: the plain blend, then clean edges), side by side.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from backdrop.errors import BackdropError

ROWS = 4  # frames on the sheet
CROP = 0.2  # crop side as a share of the frame height
TILE = 192  # pixels per crop on the sheet
CHECKER = 12  # checker square side, in sheet pixels
CHECKER_COLOURS = ((255, 0, 255), (0, 200, 0))  # BGR magenta and green: colours no edge should show
LABEL_HEIGHT = 22


class EdgeCrops:
    """Collects the crops of frames spread evenly over a clip of unknown length, in bounded memory.

    Every ``stride``-th frame is kept; when twice ROWS are held, every other one is dropped and the stride
    doubles, so the kept frames stay spread over everything seen so far.
    """

    def __init__(self, versions: tuple[str, ...] = ("",)) -> None:
        self.versions = versions  # names of the pictures each frame is offered in, captioned over their crops
        self.stride = 1
        self.rows: list[tuple[int, list[np.ndarray]]] = []

    def offer(self, index: int, images: Callable[[], list[np.ndarray]], alpha: np.ndarray) -> None:
        """Keep frame ``index`` if it falls on the stride; ``images`` gives its BGR pictures, one per version, only
        when kept."""
        if index % self.stride:
            return
        self.rows.append((index, edge_tiles(images(), alpha)))
        if len(self.rows) >= 2 * ROWS:
            self.rows = self.rows[::2]
            self.stride *= 2

    def write(self, path: Path) -> Path:
        """Draw up to ROWS of the kept frames, evenly spaced, into a PNG at ``path``."""
        picks = np.linspace(0, len(self.rows) - 1, min(ROWS, len(self.rows))).round().astype(int)
        rows = [self.rows[i] for i in sorted(set(picks.tolist()))]
        sheet = np.vstack([labelled(index, tiles, self.versions) for index, tiles in rows])
        path.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(path), sheet):
            raise BackdropError(f"cannot write contact sheet {path}")
        return path


def checker(size: int) -> np.ndarray:
    cells = (np.indices((size, size)) // CHECKER).sum(axis=0) % 2
    return np.array(CHECKER_COLOURS, np.uint8)[cells]


def edge_points(alpha: np.ndarray) -> list[tuple[int, int]]:
    """(x, y) of the top-most, left-most and right-most edge points of the largest 0.5 region.

    Points on the frame's border are passed over (where the frame cuts the person there is no edge to see);
    the centre stands in when there is no edge at all.
    """
    height, width = alpha.shape
    contours, _ = cv2.findContours((alpha >= 0.5).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    points = max(contours, key=cv2.contourArea)[:, 0, :] if contours else np.empty((0, 2), int)
    inside = (points[:, 0] > 0) & (points[:, 0] < width - 1) & (points[:, 1] > 0) & (points[:, 1] < height - 1)
    points = points[inside]
    if not len(points):
        return [(width // 2, height // 2)] * 3
    picks = (points[:, 1].argmin(), points[:, 0].argmin(), points[:, 0].argmax())  # top, left, right
    return [(int(points[i, 0]), int(points[i, 1])) for i in picks]


def edge_tiles(images: list[np.ndarray], alpha: np.ndarray) -> list[np.ndarray]:
    """TILE×TILE crops, per edge point one of each picture in ``images``: the picture over the checker, weighted
    by the matte."""
    height, width = alpha.shape
    side = max(8, round(CROP * height))
    background = checker(TILE).astype(np.float32)
    tiles = []
    for x, y in edge_points(alpha):
        x0 = int(np.clip(x - side // 2, 0, max(0, width - side)))
        y0 = int(np.clip(y - side // 2, 0, max(0, height - side)))
        box = (slice(y0, y0 + side), slice(x0, x0 + side))
        weight = cv2.resize(alpha[box], (TILE, TILE), interpolation=cv2.INTER_LINEAR)[..., None]
        for image in images:
            crop = cv2.resize(image[box], (TILE, TILE), interpolation=cv2.INTER_LINEAR).astype(np.float32)
            tiles.append((crop * weight + background * (1 - weight)).round().astype(np.uint8))
    return tiles


def labelled(index: int, tiles: list[np.ndarray], versions: tuple[str, ...] = ("",)) -> np.ndarray:
    """The row of one frame's tiles under a caption naming the frame and, over each tile, its version."""
    row = np.hstack(tiles)
    caption = np.full((LABEL_HEIGHT, row.shape[1], 3), 32, np.uint8)
    for i in range(len(tiles)):
        text = " ".join(filter(None, (f"frame {index}" if i == 0 else "", versions[i % len(versions)])))
        cv2.putText(caption, text, (i * TILE + 6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return np.vstack([caption, row])
