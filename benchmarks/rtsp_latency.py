"""Latency of live RTSP output at 720p30, from stamped frames: capture → pipeline → RtspSink → server → reader.

Every frame carries its index as big black/white blocks with an inverted check row (readable after H.264; a
misread is rejected, not counted); the time it was captured is kept, and the reader decodes the index from each
frame it gets and takes the difference. One process runs all ends, so one clock serves them all. The server is
the GStreamer RTSP relay the tests use. Three chains, measured in the same run:

* ``pipeline``: a live 720p30 camera (the demo person clip) → the full Backdrop pipeline (ONNX model, a light
  background blur; the stamp sits on the person, whom the matte keeps) → RtspSink → relay → NetworkSource.
* ``rtsp``: frames handed straight to RtspSink → relay → NetworkSource (the transport alone), TCP and UDP.
* ``codec floor``: the same x264 settings encoding and FFmpeg decoding each frame in memory, nothing between.

The reader counts how many frames it read and how many had a clean stamp (a damaged frame's stamp is rejected,
not timed), so a broken stream shows up as a low count rather than as a good latency. Run it on an idle machine.

    .venv/bin/python -m benchmarks.rtsp_latency [--size 1280x720] [--fps 30] [--seconds 15] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from backdrop.benchmarks.machine import describe_machine, describe_short
from backdrop.benchmarks.rtsp_servers import Relay
from backdrop.errors import SourceError
from backdrop.model.segmenter import load_segmenter
from backdrop.pixels import to_bgr
from backdrop.stream.compositing.backgrounds import parse_background
from backdrop.stream.core.frame import Frame
from backdrop.stream.core.pipeline import Pipeline
from backdrop.stream.core.stats import percentiles_ms
from backdrop.stream.sinks.rtsp import X264_OPTIONS, RtspSink
from backdrop.stream.sources.base import Source
from backdrop.stream.sources.demo_clip import DemoClip
from backdrop.stream.sources.network import NetworkSource

STAMP_BITS = 10  # indices wrap every 1024 frames (34 s at 30 fps), far beyond any latency measured
STAMP_MODULO = 1 << STAMP_BITS
BLOCK = 24  # px: big enough to survive H.264 at any bitrate
# The stamp sits on the person's chest (kept by the matte), not on the background the pipeline replaces.
STAMP_CENTRE = (0.5, 0.8)  # fractions of width and height
WARMUP_S = 3.0  # connection set-up, the first keyframe and the model's first runs are not steady state


def _stamp_origin(image: np.ndarray) -> tuple[int, int]:
    height, width = image.shape[:2]
    return round(STAMP_CENTRE[0] * width - STAMP_BITS * BLOCK / 2), round(STAMP_CENTRE[1] * height - BLOCK)


def stamp(image: np.ndarray, index: int) -> None:
    """Write ``index`` as a row of black/white blocks, and below it the same bits inverted (a check)."""
    left, top = _stamp_origin(image)
    for bit in range(STAMP_BITS):
        value = 255 if index >> bit & 1 else 0
        x = left + bit * BLOCK
        image[top : top + BLOCK, x : x + BLOCK] = value
        image[top + BLOCK : top + 2 * BLOCK, x : x + BLOCK] = 255 - value


def read_stamp(image: np.ndarray) -> int | None:
    """The stamped index, or None when any block is unclear or disagrees with its check block."""
    left, top = _stamp_origin(image)
    index = 0
    for bit in range(STAMP_BITS):
        x = left + bit * BLOCK + BLOCK // 4
        rows = [top + BLOCK // 4 + row * BLOCK for row in (0, 1)]
        value, check = (float(image[y : y + BLOCK // 2, x : x + BLOCK // 2].mean()) for y in rows)
        if abs(value - check) < 128:
            return None
        index |= int(value > check) << bit
    return index


class StampedCamera(Source):
    """A live camera at ``fps`` showing the demo person clip with each frame's index stamped; logs capture times."""

    live = True

    def __init__(self, width: int, height: int, fps: float) -> None:
        self.clip = DemoClip(width, height)
        self.captured_at: dict[int, float] = {}
        self.index = 0
        self._fps = fps
        self._started = 0.0
        self._closed = threading.Event()

    def open(self) -> None:
        self._started = time.monotonic()

    def read(self) -> Frame | None:
        if self._closed.wait(max(0.0, self._started + self.index / self._fps - time.monotonic())):
            return None
        image = self.clip.frame(self.index)
        stamp(image, self.index % STAMP_MODULO)
        self.captured_at[self.index % STAMP_MODULO] = time.monotonic()
        self.index += 1
        return Frame(image, index=self.index - 1)

    def close(self) -> None:
        self._closed.set()

    @property
    def fps(self) -> float:
        return self._fps


def read_latencies(url: str, transport: str, captured_at: dict[int, float], seconds: float) -> tuple[list[float], int]:
    """Seconds from capture to decoded at the reader for every stamped frame read after the warm-up, and how many
    frames were read in that time (the rest had an unreadable stamp)."""
    latencies, frames_read = [], 0
    with NetworkSource(url, transport=transport) as reader:
        started = time.monotonic()
        while (now := time.monotonic()) < started + WARMUP_S + seconds:
            frame = reader.read()
            received = time.monotonic()
            if now <= started + WARMUP_S:
                continue
            if frame is None:
                raise SourceError(f"{reader.describe()} ended after {frames_read} measured frames")
            frames_read += 1
            index = read_stamp(to_bgr(frame.image, frame.layout))  # network sources deliver I420 where they can
            if index is not None and index in captured_at:
                latencies.append(received - captured_at[index])
    return latencies, frames_read


def through_relay(
    size: tuple[int, int], fps: float, seconds: float, transport: str, drive: Callable[[StampedCamera, RtspSink], None]
) -> tuple[list[float], int]:
    """(latencies, frames read) of a camera whose frames ``drive`` (in a thread) delivers to an RtspSink, read back
    via the relay (see read_latencies).

    ``drive`` opens the sink itself, as the pipeline does: a sink opened twice would publish two streams at once."""
    width, height = size
    camera = StampedCamera(width, height, fps)
    relay = Relay(("lat",)).start()
    sink = RtspSink(relay.publish_url("lat"))
    try:
        camera.open()
        driver = threading.Thread(target=drive, args=(camera, sink), daemon=True)
        driver.start()
        relay.wait_receiving("lat", timeout=60)
        measured = read_latencies(relay.play_url("lat"), transport, camera.captured_at, seconds)
        camera.close()
        driver.join(30)
    finally:
        camera.close()
        sink.close()
        relay.stop()
    return measured


def hand_to_sink(camera: StampedCamera, sink: RtspSink) -> None:
    first = camera.read()
    if first is None:
        return
    sink.open(*first.size, camera.fps)
    sink.write(first)
    while (frame := camera.read()) is not None:
        sink.write(frame)


def run_pipeline(camera: StampedCamera, sink: RtspSink) -> None:
    with load_segmenter("general", "onnxruntime", threads=1) as segmenter:
        Pipeline(camera, segmenter, parse_background("blur:9"), [sink], batch_size=1, queue_size=2).run()


def measure_codec_floor(size: tuple[int, int], fps: float, frames: int) -> list[float]:
    """Latencies (s) of x264 encode → FFmpeg decode of each frame in memory: the part no transport can remove."""
    width, height = size
    clip = DemoClip(width, height)
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
    encoder.time_base = Fraction(1, round(fps))
    encoder.framerate = Fraction(round(fps))
    encoder.gop_size = round(fps)
    encoder.max_b_frames = 0
    encoder.options = dict(X264_OPTIONS)
    decoder = av.CodecContext.create("h264", "r")
    latencies = []
    for index in range(frames):
        image = clip.frame(index)
        stamp(image, index)
        started = time.monotonic()
        frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        frame.pts = index
        decoded = [d.to_ndarray(format="bgr24") for p in encoder.encode(frame) for d in decoder.decode(p)]
        if decoded and read_stamp(decoded[-1]) == index and index >= fps:
            latencies.append(time.monotonic() - started)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1280x720", help="WIDTHxHEIGHT")
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--seconds", type=float, default=15.0, help="measured seconds per chain")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    size = (width, height)
    machine = describe_machine()
    print(f"RTSP latency at {args.size}@{args.fps:g} on {describe_short(machine)} (p50 / p95, ms)")

    floor = percentiles_ms(measure_codec_floor(size, args.fps, round(args.fps * 5)))
    results: dict[str, object] = {"size": args.size, "fps": args.fps, "machine": machine, "codec_floor_ms": floor}
    print(f"  {'codec floor: encode + decode in memory':48} {floor['p50']:6.1f} / {floor['p95']:6.1f}")
    chains = [
        ("pipeline_tcp", "capture → pipeline → RTSP out → reader (tcp)", run_pipeline, "tcp"),
        ("rtsp_tcp", "RtspSink → relay → reader (tcp)", hand_to_sink, "tcp"),
        ("rtsp_udp", "RtspSink → relay → reader (udp)", hand_to_sink, "udp"),
    ]
    for key, label, drive, transport in chains:
        samples, frames_read = through_relay(size, args.fps, args.seconds, transport, drive)
        summary = {**percentiles_ms(samples), "stamped_frames": len(samples), "frames_read": frames_read}
        results[f"{key}_ms"] = summary
        print(
            f"  {label:48} {summary['p50']:6.1f} / {summary['p95']:6.1f}   ({len(samples)} of {frames_read} frames"
            f" read had a clean stamp; p50 {summary['p50'] / floor['p50']:.1f}x the codec floor)"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
