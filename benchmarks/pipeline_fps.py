"""File → file throughput of the threaded pipeline beside a plain sequential loop, measured in the same run.

Both use the same clip (the demo person clip), model, runtime, and the same steps (stream/core/steps.py); the loop
calls them one frame at a time on one thread in BGR, as a simple script would (the pipeline stays in the
decoder's I420 where it can and runs the steps on threads: that is what it does better).
Beside them the codec floor: the same file decoded and re-encoded by two threads with nothing in between,
the most any file → file job with this codec can do here. Prints median fps over repeats and the ratios.

    .venv/bin/python benchmarks/pipeline_fps.py [--sizes 1280x720,1920x1080] [--frames 300] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import queue
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from backdrop.errors import SourceError
from backdrop.model.segmenter import Segmenter, load_segmenter
from backdrop.pixels import BGR
from backdrop.stream.compositing.backgrounds import parse_background
from backdrop.stream.config.run import EncoderConfig, MaskConfig
from backdrop.stream.core.frame import Frame
from backdrop.stream.core.pipeline import Pipeline
from backdrop.stream.core.steps import Compositor, FrameSteps, Infer
from backdrop.stream.sinks.video_file import VideoFileSink
from backdrop.stream.sources.demo_clip import write_clip
from backdrop.stream.sources.video_file import VideoFileSource


@dataclass(frozen=True)
class Settings:
    """What every run of one measurement uses."""

    background: str = "blur:21"
    model: str = "general"
    runtime: str = "onnxruntime"
    repeats: int = 3
    pipeline_threads: int | None = 1  # the other stages need the second core
    loop_threads: int | None = None  # the loop has the machine to itself: runtime default


class Timed:
    """Wall time and this process's CPU time (all threads) of a block, per frame."""

    def __enter__(self) -> Timed:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu

    def result(self, frames: int) -> tuple[float, float]:
        """(fps, CPU milliseconds per frame)."""
        return frames / self.wall, self.cpu / frames * 1000


@contextmanager
def timed_run(
    clip: Path, model: str, runtime: str, threads: int | None
) -> Iterator[tuple[Timed, VideoFileSource, Segmenter]]:
    """Open the clip and the model inside the timed block, so both runners pay the same start-up."""
    with (
        Timed() as timed,
        VideoFileSource(clip) as source,
        load_segmenter(model, runtime, threads=threads) as segmenter,
    ):
        yield timed, source, segmenter


def run_pipeline(
    clip: Path, output: Path, *, background: str, model: str, runtime: str, threads: int | None
) -> tuple[float, float]:
    """(fps, CPU ms/frame) of the threaded pipeline, from opening the clip to a finished output file."""
    with timed_run(clip, model, runtime, threads) as (timed, source, segmenter):
        stats = Pipeline(source, segmenter, parse_background(background), [VideoFileSink(output)]).run()
    return timed.result(stats["frames_out"])


def run_sequential(
    clip: Path, output: Path, *, background: str, model: str, runtime: str, threads: int | None
) -> tuple[float, float]:
    """(fps, CPU ms/frame) of the one-thread loop calling the pipeline's own steps, in BGR."""
    with timed_run(clip, model, runtime, threads) as (timed, source, segmenter):
        frame = source.read()
        if frame is None:
            raise SourceError(f"{clip} has no decodable frames")
        width, height = frame.size
        backdrop = parse_background(background)
        backdrop.open(width, height, BGR)
        steps = FrameSteps(Infer(segmenter), Compositor(MaskConfig(), backdrop, width, height, BGR), BGR)
        sink = VideoFileSink(output)
        sink.open(width, height, source.fps)
        frames = 0
        while frame is not None:
            sink.write(steps(frame))
            frames += 1
            frame = source.read()
        sink.close()
        backdrop.close()
    return timed.result(frames)


def run_codec_floor(clip: Path, output: Path, *, queue_size: int = 4) -> tuple[float, float]:
    """(fps, CPU ms/frame) of decode → encode alone, on two threads, in I420 when the file allows it."""
    frames: queue.Queue[Frame | None] = queue.Queue(queue_size)
    with Timed() as timed, VideoFileSource(clip) as source:

        def decode() -> None:
            while (frame := source.read()) is not None:
                frames.put(frame)
            frames.put(None)

        reader = threading.Thread(target=decode, name="codec-floor-decode")
        reader.start()
        sink, written = VideoFileSink(output), 0
        while (frame := frames.get()) is not None:
            if not written:
                sink.open(*frame.size, source.fps)
            sink.write(frame)
            written += 1
        reader.join()
        sink.close()
    return timed.result(written)


class ProcessRun(NamedTuple):
    """One fresh process run to its end."""

    wall_s: float
    cpu_s: float  # user + system time of the process and of the children it waited for (an encoder, say)
    stdout: str


def run_process(command: Sequence[str | Path]) -> ProcessRun:
    """Run ``command`` to its end; CalledProcessError (stderr kept) when it fails.

    The CPU time is the kernel's account of the child (resource usage of waited-for children, before and after),
    so it counts every thread and helper process of the child whatever else runs on the machine.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([str(part) for part in command], check=True, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return ProcessRun(wall, cpu, done.stdout)


def cli_run(clip: Path, output: Path, *extra: str | Path) -> ProcessRun:
    """``backdrop run`` as a fresh process (imports, model load, run, close), replacing an earlier run's ``output``
    (and stats file) with ``-y``."""
    command: list[str | Path] = [sys.executable, "-m", "backdrop.cli", "run", "--source", clip, "--output", output]
    return run_process([*command, "-y", "--no-progress", *extra])


def measure(clip: Path, folder: Path, args: Settings) -> dict[str, Any]:
    """Median fps of pipeline, loop and codec floor over interleaved repeats (drifting load hits all alike)."""
    common = {"background": args.background, "model": args.model, "runtime": args.runtime}
    runs: dict[str, list[tuple[float, float]]] = {"pipeline": [], "sequential": [], "codec_floor": []}
    for _ in range(args.repeats):
        runs["pipeline"].append(run_pipeline(clip, folder / "p.mp4", threads=args.pipeline_threads, **common))
        runs["sequential"].append(run_sequential(clip, folder / "s.mp4", threads=args.loop_threads or None, **common))
        runs["codec_floor"].append(run_codec_floor(clip, folder / "f.mp4"))
    result: dict[str, Any] = {}
    for mode, measured in runs.items():
        result[f"{mode}_fps"] = round(statistics.median(f for f, _ in measured), 1)
        result[f"{mode}_runs"] = [round(f, 1) for f, _ in measured]
        # CPU per frame does not depend on how busy the machine is; 2000 / it bounds fps on two idle cores
        result[f"{mode}_cpu_ms_per_frame"] = round(statistics.median(c for _, c in measured), 2)
    result["ratio"] = round(result["pipeline_fps"] / result["sequential_fps"], 2)
    result["floor_ratio"] = round(result["pipeline_fps"] / result["codec_floor_fps"], 2)
    return result


def measure_process(clip: Path, folder: Path) -> dict[str, object]:
    """Start-up to the first written frame, and peak RSS of a whole run, both of a fresh ``backdrop`` process."""
    onnx = ("--runtime", "onnxruntime")
    startup = statistics.median(cli_run(clip, folder / "one.mp4", *onnx, "--max-frames", "1").wall_s for _ in range(3))
    cli_run(clip, folder / "all.mp4", *onnx, "--stats-json", folder / "all.json")
    peak_mb = json.loads((folder / "all.json").read_text())["totals"]["peak_rss_mb"]  # as the process itself saw it
    return {"startup_to_first_frame_s": round(startup, 2), "peak_rss_mb": peak_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1280x720,1920x1080")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--background", default="blur:21")
    parser.add_argument("--model", default="general", help="general, landscape or a path to a model")
    parser.add_argument("--runtime", default="onnxruntime")
    parser.add_argument("--pipeline-threads", type=int, default=1, help="runtime threads in the pipeline")
    parser.add_argument("--loop-threads", type=int, default=0, help="runtime threads in the loop (0 = runtime default)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    settings = Settings(
        args.background, args.model, args.runtime, args.repeats, args.pipeline_threads, args.loop_threads or None
    )
    encoder = EncoderConfig()
    print(
        f"model {args.model}, background {args.background}, runtime {args.runtime}, "
        f"x264 {encoder.preset}, crf {encoder.crf}"
    )
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        for size in args.sizes.split(","):
            width, height = (int(v) for v in size.split("x"))
            clip = write_clip(folder / f"in_{size}.mp4", width=width, height=height, frames=args.frames)
            result = results[size] = measure(clip, folder, settings)
            runs = f"(runs: {result['pipeline_runs']} / {result['sequential_runs']} / {result['codec_floor_runs']})"
            print(
                f"{size}: pipeline {result['pipeline_fps']:6.1f} fps   sequential loop {result['sequential_fps']:6.1f} "
                f"fps   ratio {result['ratio']:4.2f}x   codec floor {result['codec_floor_fps']:6.1f} fps "
                f"(pipeline at {result['floor_ratio']:.0%} of it)   {runs}   CPU ms/frame: pipeline "
                f"{result['pipeline_cpu_ms_per_frame']}, loop {result['sequential_cpu_ms_per_frame']}, "
                f"floor {result['codec_floor_cpu_ms_per_frame']}",
                flush=True,
            )
        clip = folder / "in_1280x720.mp4"
        if clip.exists():
            process = results["process_1280x720"] = measure_process(clip, folder)
            print(
                f"1280x720 process: start-up to first frame written {process['startup_to_first_frame_s']} s, "
                f"peak RSS {process['peak_rss_mb']} MB"
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
