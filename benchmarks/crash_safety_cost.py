"""What crash-safe recording costs: the same file → file run writing fragmented, flushed output and plain output.

The two variants alternate in one process with the model loaded once, so the container options
(stream/sinks/video_file.py CRASH_SAFE_OPTIONS) are the only difference between them; the order alternates too,
so neither always runs on a warmer machine. Reports each variant's median fps and CPU milliseconds per frame (all
threads) and the crash-safe run's cost relative to the plain one. The budget is 3 % of throughput.

    python -m backdrop.benchmarks.crash_safety_cost [--frames 300] [--repeats 12] [--suffix .mp4] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from backdrop.model.segmenter import Segmenter, load_segmenter
from backdrop.stream.compositing.backgrounds import parse_background
from backdrop.stream.core.pipeline import Pipeline
from backdrop.stream.sinks.video_file import CONTAINERS, VideoFileSink
from backdrop.stream.sources.demo_clip import write_clip
from backdrop.stream.sources.video_file import VideoFileSource

VARIANTS = {"crash_safe": True, "plain": False}


def one_run(clip: Path, output: Path, segmenter: Segmenter, *, crash_safe: bool) -> tuple[float, float]:
    """(fps, CPU ms per frame) of one pipeline run of ``clip`` into ``output``."""
    cpu, wall = time.process_time(), time.perf_counter()
    with VideoFileSource(clip) as source:
        sink = VideoFileSink(output, crash_safe=crash_safe)
        stats = Pipeline(source, segmenter, parse_background("blur:21"), [sink]).run()
    frames = stats["frames_out"]
    return frames / (time.perf_counter() - wall), (time.process_time() - cpu) / frames * 1000


def measure(frames: int, repeats: int, suffix: str, size: tuple[int, int] = (1280, 720)) -> dict[str, Any]:
    """Median fps and CPU ms/frame per variant over ``repeats`` alternating runs, and the crash-safe cost."""
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory() as folder, load_segmenter("general", "onnxruntime", threads=1) as segmenter:
        clip = write_clip(Path(folder) / "input.mp4", width=size[0], height=size[1], frames=frames)
        names = list(VARIANTS)
        for repeat in range(repeats):
            for name in names if repeat % 2 == 0 else names[::-1]:
                output = Path(folder) / f"{name}{suffix}"
                runs[name].append(one_run(clip, output, segmenter, crash_safe=VARIANTS[name]))
    result: dict[str, Any] = {"frames": frames, "repeats": repeats, "size": list(size), "suffix": suffix}
    for name, values in runs.items():
        result[name] = {
            "fps": statistics.median(fps for fps, _ in values),
            "cpu_ms_per_frame": statistics.median(cpu for _, cpu in values),
            "fps_runs": [round(fps, 1) for fps, _ in values],
        }
    safe, plain = result["crash_safe"], result["plain"]
    result["fps_cost"] = 1 - safe["fps"] / plain["fps"]
    result["cpu_cost"] = safe["cpu_ms_per_frame"] / plain["cpu_ms_per_frame"] - 1
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=12)
    parser.add_argument("--suffix", default=".mp4", choices=sorted(CONTAINERS))
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args(argv)
    result = measure(args.frames, args.repeats, args.suffix)
    for name in VARIANTS:
        figures = result[name]
        print(f"{name:10s} {figures['fps']:6.1f} fps  {figures['cpu_ms_per_frame']:6.2f} CPU ms/frame")
    print(f"crash safety costs {result['fps_cost']:+.1%} of fps, {result['cpu_cost']:+.1%} CPU per frame")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
