"""MediaPipe's documented selfie-segmentation loop over a video file, as a script for MediaPipe's own interpreter.

The loop of the solution's example (mediapipe/docs/solutions/selfie_segmentation.md): OpenCV reads a frame,
MediaPipe segments its RGB copy, ``np.where(mask > 0.1, frame, background)`` composites it. The example shows
or saves each picture; here every picture goes to an H.264 file, through the ``ffmpeg`` command with the
x264 preset and CRF Backdrop writes with (OpenCV's wheels carry no H.264 encoder), so both sides of a
comparison pay the same encoder. The background is the example's grey plate (``color``) or its other
suggestion, the frame blurred by ``cv2.GaussianBlur`` (``blur:K``, at Backdrop's kernel, so both blur alike).

Only the standard library, numpy, OpenCV and mediapipe are imported: this file runs as a plain script under an
interpreter that has no Backdrop (mediapipe pins numpy < 2). It prints one JSON line: frames written, the
mediapipe version.

    .cache/mpvenv/bin/python benchmarks/mediapipe_loop.py in.mp4 out.mp4 --preset ultrafast --crf 23
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import cv2
import numpy as np

GREY = (192, 192, 192)  # the example's BG_COLOR
THRESHOLD = 0.1  # the example's condition: segmentation_mask > 0.1


def encoder(path: str, width: int, height: int, fps: float, preset: str, crf: int) -> subprocess.Popen[bytes]:
    """An ffmpeg process that encodes the BGR frames written to its stdin as H.264 (yuv420p) into ``path``."""
    command = [
        "ffmpeg", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{width}x{height}",
        "-r", f"{fps:g}", "-i", "-", "-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p",
        path,
    ]  # fmt: skip
    return subprocess.Popen(command, stdin=subprocess.PIPE)


def run(source: str, output: str, background: str, preset: str, crf: int) -> int:
    """The documented loop from ``source`` to ``output``; returns the number of frames written."""
    import mediapipe as mp

    capture = cv2.VideoCapture(source)
    if not capture.isOpened():
        raise SystemExit(f"cannot open {source}")
    width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    writer = encoder(output, width, height, capture.get(cv2.CAP_PROP_FPS) or 30.0, preset, crf)
    pipe = writer.stdin
    if pipe is None:
        raise SystemExit("ffmpeg has no input pipe")
    kind, _, size = background.partition(":")
    blur = int(size or 21) if kind == "blur" else 0
    plate = np.empty((height, width, 3), np.uint8)
    plate[:] = GREY
    frames = 0
    with mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0) as segmentation:
        while True:
            ok, image = capture.read()
            if not ok:
                break
            rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            rgb.flags.writeable = False  # the example's hint: MediaPipe may read it without a copy
            results = segmentation.process(rgb)
            condition = np.stack((results.segmentation_mask,) * 3, axis=-1) > THRESHOLD
            backdrop = cv2.GaussianBlur(image, (blur, blur), 0) if blur else plate
            pipe.write(np.where(condition, image, backdrop).tobytes())
            frames += 1
    capture.release()
    pipe.close()
    if writer.wait() != 0:
        raise SystemExit(f"ffmpeg could not write {output}")
    return frames


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source")
    parser.add_argument("output")
    parser.add_argument("--background", default="color", help="color (the example's grey) or blur:K")
    parser.add_argument("--preset", required=True, help="x264 preset (Backdrop's encoder.preset)")
    parser.add_argument("--crf", type=int, required=True, help="x264 CRF (Backdrop's encoder.crf)")
    args = parser.parse_args()
    frames = run(args.source, args.output, args.background, args.preset, args.crf)
    import mediapipe as mp

    print(json.dumps({"frames": frames, "mediapipe": mp.__version__}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
