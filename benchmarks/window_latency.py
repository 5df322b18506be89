"""Capture → on-screen latency of the window path: ``backdrop bench --window`` (needs a display; ``xvfb-run -a``).

A live-paced 720p30 testsrc (a camera's pacing: a frame every 1/fps s, dropped when the pipeline is behind)
runs through the full pipeline (ONNX model, the default blur) into the window. The window's main thread stamps
each frame once it is on screen (after the buffer flip); latency is that moment minus the frame's
``captured_at``. The first seconds (model warm-up, window mapping) are left out. Frames the window had no time
for are counted as dropped, not timed. The target is p50 ≤ two frame intervals (66 ms at 30 fps).
"""

from __future__ import annotations

import time
from typing import Any

from backdrop.benchmarks.machine import describe_machine, describe_short
from backdrop.errors import SinkError
from backdrop.model.segmenter import load_segmenter
from backdrop.stream.compositing.backgrounds import parse_background
from backdrop.stream.core.pipeline import Pipeline
from backdrop.stream.core.stats import percentiles_ms
from backdrop.stream.sinks.window import WindowSink
from backdrop.stream.sources.testsrc import TestSource

WARMUP_S = 2.0


def measure_window_latency(
    width: int = 1280, height: int = 720, fps: float = 30.0, *, seconds: float = 10.0, background: str = "blur:21"
) -> dict[str, Any]:
    """Latency percentiles (ms) of frames shown in the window, with the frame counts behind them."""
    source = TestSource(width, height, fps=fps, frames=round(fps * (WARMUP_S + seconds)), live=True)
    window = WindowSink("backdrop latency")
    with load_segmenter("general", "onnxruntime", threads=1) as segmenter, source:  # the camera starts last
        started = time.monotonic()
        stats = Pipeline(source, segmenter, parse_background(background), [window], queue_size=2).run()
    steady = started + WARMUP_S
    shown = [on_screen - captured for captured, on_screen in window.shown if captured >= steady]
    if not shown:
        raise SinkError(f"no frame reached the window after the {WARMUP_S:g} s warm-up")
    return {
        "size": f"{width}x{height}",
        "fps": fps,
        "target_p50_ms": round(2000 / fps, 1),
        "latency_ms": percentiles_ms(shown),
        "frames_timed": len(shown),
        "frames_shown": window.presented,
        "frames_dropped": window.counters()["dropped"],
        "pipeline_fps": stats["fps"],
        "elapsed_s": round(time.monotonic() - started, 1),
        "machine": describe_short(describe_machine()),
    }


def summary(result: dict[str, Any]) -> str:
    """One line for the terminal and the README."""
    latency = result["latency_ms"]
    verdict = "meets" if latency["p50"] <= result["target_p50_ms"] else "misses"
    return (
        f"window latency at {result['size']}@{result['fps']:g}: p50 {latency['p50']:.1f} ms, "
        f"p95 {latency['p95']:.1f} ms ({verdict} the {result['target_p50_ms']:g} ms p50 target); "
        f"{result['frames_timed']} frames timed, "
        f"{result['frames_dropped']} dropped by the window; {result['machine']}"
    )
