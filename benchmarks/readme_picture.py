"""The README's before/after picture: one frame of the demo clip, and the same frame on three backgrounds.

Renders the bundled demo clip (``backdrop.stream.sources.demo_clip``) as H.264, decodes frame ``--frame`` the way a
run reads it, composites it with the Python API on a blur, a colour and a generated picture, and writes the four as
a labelled 2×2 sheet (input top left)::

    python -m backdrop.benchmarks.readme_picture docs/images/before_after.jpg

The result is committed; rerun this after a change to the model or the matte and commit the new picture.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import av
import cv2
import numpy as np

from backdrop.api import Backdrop
from backdrop.stream.sources.demo_clip import write_clip

MAX_BYTES = 150_000  # small enough to commit and to load at once on the front page


def scenery(width: int, height: int) -> np.ndarray:
    """A picture to put people in front of, made here so it needs no licence: sky, sun, sea and sand (BGR)."""
    t = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    sky = (1 - t) * np.array([235, 190, 120], np.float32) + t * np.array([250, 225, 200], np.float32)
    picture = np.broadcast_to(sky, (height, width, 3)).astype(np.uint8).copy()
    cv2.circle(picture, (int(width * 0.8), int(height * 0.22)), height // 10, (120, 220, 255), -1, cv2.LINE_AA)
    horizon, shore = int(height * 0.58), int(height * 0.78)
    picture[horizon:shore] = (170, 120, 40)
    picture[shore:] = (140, 200, 230)
    return cv2.GaussianBlur(picture, (0, 0), 2)


def decoded_frame(clip: Path, index: int) -> np.ndarray:
    """Frame ``index`` of ``clip``, decoded to BGR."""
    with av.open(str(clip)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == index:
                return frame.to_ndarray(format="bgr24")
    raise ValueError(f"{clip} has no frame {index}")


def labelled(image: np.ndarray, text: str, size: tuple[int, int]) -> np.ndarray:
    """``image`` scaled to ``size`` with ``text`` on a dark band in its top-left corner."""
    tile = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    scale, thickness = size[1] / 540, max(1, round(size[1] / 270))
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    pad = max(4, round(8 * scale))
    cv2.rectangle(tile, (0, 0), (w + 2 * pad, h + base + 2 * pad), (30, 30, 30), -1)
    cv2.putText(tile, text, (pad, pad + h), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return tile


def sheet(frame: np.ndarray, image: Path, tile: tuple[int, int]) -> np.ndarray:
    """The 2×2 sheet: the input, then the frame on a blur, a colour and ``image``."""
    backgrounds = (("blur:31", "blur:31"), ("color:#1e90ff", "color:#1e90ff"), ("an image", str(image)))
    tiles = [labelled(frame, "input (demo clip)", tile)]
    for label, spec in backgrounds:
        with Backdrop(background=spec, runtime="onnxruntime") as backdrop:
            tiles.append(labelled(backdrop.composite(frame), label, tile))
    return np.vstack([np.hstack(tiles[:2]), np.hstack(tiles[2:])])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="the JPEG to write, e.g. docs/images/before_after.jpg")
    parser.add_argument("--frame", type=int, default=40, help="which frame of the demo clip (default 40)")
    parser.add_argument("--tile", default="480x270", help="size of each of the four pictures (default 480x270)")
    parser.add_argument("--quality", type=int, default=85, help="JPEG quality (default 85)")
    args = parser.parse_args(argv)
    tile = tuple(int(v) for v in args.tile.lower().split("x"))
    if len(tile) != 2:
        parser.error("--tile must be WIDTHxHEIGHT")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        clip = write_clip(work / "demo_input.mp4", width=1280, height=720, frames=args.frame + 1)
        cv2.imwrite(str(work / "beach.png"), scenery(1280, 720))
        picture = sheet(decoded_frame(clip, args.frame), work / "beach.png", (tile[0], tile[1]))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, args.quality, cv2.IMWRITE_JPEG_OPTIMIZE, 1])
    if not ok:
        raise SystemExit("JPEG encoding failed")
    args.output.write_bytes(data.tobytes())
    note = "" if len(data) <= MAX_BYTES else f" (over {MAX_BYTES} bytes: lower --quality or --tile)"
    print(f"wrote {args.output}: {picture.shape[1]}x{picture.shape[0]}, {len(data)} bytes{note}")


if __name__ == "__main__":
    main()
