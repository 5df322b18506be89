"""Runs every benchmark section in turn behind one progress bar and assembles the result.

Sections: model only (benchmarks.model_speed), per-stage cost (benchmarks.stage_costs), end to end
(benchmarks.end_to_end, on benchmarks.pipeline_fps, with its CPU set against the stages') and, with
``--against mediapipe``, Backdrop against MediaPipe's documented loop (benchmarks.peer). The machine is described
at the start, and its load average taken again at the end, because other work on the machine is the largest
source of noise.
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from backdrop.benchmarks.end_to_end import Input, PipelinePlan, against_stages, measure_pipeline
from backdrop.benchmarks.inputs import demo_clip, record
from backdrop.benchmarks.machine import describe_machine, load_average
from backdrop.benchmarks.model_speed import ModelPlan, measure_models
from backdrop.benchmarks.peer import PeerPlan, measure_peer
from backdrop.benchmarks.pipeline_fps import Settings
from backdrop.benchmarks.report import SCHEMA, validate
from backdrop.benchmarks.stage_costs import StagePlan, measure_stages
from backdrop.errors import ConfigError, RuntimeUnavailable, SourceError
from backdrop.stream.sinks.video_file import is_video_file

SLOW_TO_START = ("keras",)  # TensorFlow takes ~10 s to import: left out of --quick unless asked for
LIVE_FRAME_CAP = 100_000  # a live source is recorded for --duration seconds, whatever its frame rate


@dataclass(frozen=True)
class BenchOptions:
    """One benchmark run; --quick only changes the defaults of the sizes below."""

    quick: bool = False
    runtimes: tuple[str, ...] = ()  # empty: every usable runtime
    resolutions: tuple[tuple[str, int, int], ...] = ()
    source: str | None = None  # None: the demo clip at every resolution
    duration_s: float | None = None
    frames: int = 150
    model_warmup: int = 10
    model_repeats: int = 100
    stage_warmup: int = 5
    stage_repeats: int = 50
    pipeline_repeats: int = 3
    threads: int | None = None  # runtime threads for the per-stage inference cost; None: the pipeline's
    mediapipe: tuple[str, str] | None = None  # --against mediapipe: its interpreter and version
    peer_resolutions: tuple[tuple[str, int, int], ...] = ()  # where the demo clip is run against MediaPipe


class Progress:
    """A progress bar on stderr: rewritten in place on a terminal, one line per step in a log."""

    def __init__(self, total: int, stream: TextIO = sys.stderr, *, enabled: bool = True) -> None:
        self.total, self.done, self.stream, self.enabled = max(1, total), 0, stream, enabled
        self.started = time.monotonic()
        self.tty = stream.isatty()

    def step(self, label: str) -> None:
        self.done = min(self.total, self.done + 1)
        if not self.enabled:
            return
        fraction = self.done / self.total
        line = (
            f"[{'#' * round(fraction * 24):<24}] {self.done}/{self.total} {fraction:4.0%} "
            f"{time.monotonic() - self.started:5.1f}s  {label}"
        )
        self.stream.write("\r\x1b[2K" + line if self.tty else line + "\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()


def gpu_note(machine: dict[str, Any]) -> str:
    """Why onnxruntime did not run on a GPU, when it did not."""
    if "CUDAExecutionProvider" in machine["onnxruntime_providers"]:
        return "" if machine["gpus"] else "; its CUDA provider is installed but no NVIDIA GPU is visible"
    if machine["gpus"]:
        return "; this onnxruntime build has no CUDA provider: pip install onnxruntime-gpu"
    return "; no NVIDIA GPU here for its CUDA provider"


def runtime_status(requested: tuple[str, ...], *, quick: bool) -> dict[str, dict[str, str]]:
    """Every registered runtime with its status: measured, unavailable (and why), or skipped (and why)."""
    from backdrop.model.segmenter import RUNTIMES, available_runtimes

    unknown = [name for name in requested if name not in RUNTIMES]
    if unknown:
        raise ConfigError(f"unknown runtime {unknown[0]!r}: choose from {', '.join(RUNTIMES)}")
    status = {}
    for name, reason in available_runtimes().items():
        if reason:
            if name in requested:
                raise ConfigError(f"runtime {name} cannot run here: {reason}")
            status[name] = {"status": "unavailable", "reason": reason}
        elif requested and name not in requested:
            status[name] = {"status": "skipped", "reason": "not selected with --runtime"}
        elif not requested and quick and name in SLOW_TO_START:
            status[name] = {"status": "skipped", "reason": "left out of --quick (slow to start); run without --quick"}
        else:
            status[name] = {"status": "measured", "reason": ""}
    if not any(entry["status"] == "measured" for entry in status.values()):
        raise ConfigError("no inference runtime can run here: " + "; ".join(e["reason"] for e in status.values()))
    return status


def prepare_inputs(options: BenchOptions, folder: Path) -> list[Input]:
    """The video files the end-to-end section runs on: the demo clip per resolution, or the given source."""
    if options.source is None:
        return [
            Input(label, f"{w}x{h}", demo_clip(folder, w, h, options.frames), f"demo clip {label}", options.frames)
            for label, w, h in options.resolutions
        ]
    from backdrop.stream.sources.video_file import VideoFileSource

    if is_video_file(options.source):
        path = Path(options.source)
        with VideoFileSource(path) as source:  # a missing or broken file fails here, as a SourceError
            first, frames = source.read(), source.frame_count
        description = path.name
    else:
        path = folder / "recorded.mp4"
        limit = LIVE_FRAME_CAP if options.duration_s else options.frames
        frames = record(options.source, path, max_frames=limit, duration_s=options.duration_s)
        with VideoFileSource(path) as source:
            first = source.read()
        description = f"{options.source} (recorded)"
    if first is None:
        raise SourceError(f"{path} has no decodable frames")
    size = "{}x{}".format(*first.size)
    return [Input(size, size, path, description, frames)]


def peer_inputs_for(options: BenchOptions, inputs: list[Input], folder: Path) -> list[Input]:
    """What runs against MediaPipe: the given source as it is, else the demo clip at the peer resolutions."""
    return inputs if options.source else prepare_inputs(replace(options, resolutions=options.peer_resolutions), folder)


def run_suite(options: BenchOptions, *, progress_stream: TextIO = sys.stderr, progress: bool = True) -> dict[str, Any]:
    """Run every section and return the validated result."""
    from backdrop.model.segmenter import load_segmenter

    started = time.monotonic()
    machine = describe_machine()
    runtimes = runtime_status(options.runtimes, quick=options.quick)
    measured = tuple(name for name, entry in runtimes.items() if entry["status"] == "measured")
    model_plan = ModelPlan(measured, warmup=options.model_warmup, repeats=options.model_repeats)
    stage_plan = StagePlan(options.resolutions, warmup=options.stage_warmup, repeats=options.stage_repeats)
    pipeline_plan = PipelinePlan(
        tuple(n for n in measured if n not in SLOW_TO_START) or measured[:1],
        Settings(repeats=options.pipeline_repeats),
    )
    peer_plan = PeerPlan(*options.mediapipe, pairs=options.pipeline_repeats) if options.mediapipe else None
    with tempfile.TemporaryDirectory(prefix="backdrop-bench-") as scratch:
        folder = Path(scratch)
        inputs = prepare_inputs(options, folder)  # first, so a bad --source fails before minutes of timing
        peer_inputs = [] if peer_plan is None else peer_inputs_for(options, inputs, folder)
        cells = model_plan.cells + stage_plan.cells + pipeline_plan.cells(len(inputs))
        cells += peer_plan.cells(len(peer_inputs)) if peer_plan else 0
        bar = Progress(cells, progress_stream, enabled=progress)
        model = measure_models(
            model_plan,
            on_row=lambda r: bar.step(f"model {r['runtime']} {r['variant']} batch {r['batch']} threads {r['threads']}"),
        )
        for name, error in model["failed"].items():
            runtimes[name] = {"status": "failed", "reason": error}
        working = tuple(name for name in measured if name not in model["failed"])
        if not working:
            raise RuntimeUnavailable("every runtime failed: " + "; ".join(model["failed"].values()))
        kept = tuple(name for name in pipeline_plan.runtimes if name in working) or working[:1]
        bar.total += (len(kept) - len(pipeline_plan.runtimes)) * len(inputs)
        pipeline_plan = replace(pipeline_plan, runtimes=kept)
        # the pipeline's runtime threads unless asked otherwise, so the stages add up to the work the pipeline does
        threads = options.threads or pipeline_plan.settings.pipeline_threads
        with load_segmenter("general", working[0], threads=threads) as segmenter:
            stages = measure_stages(
                stage_plan, segmenter, work_dir=folder, on_row=lambda r: bar.step(f"{r['stage']} {r['resolution']}")
            )
        pipeline = measure_pipeline(pipeline_plan, inputs, folder, on_run=bar.step)
        pipeline["against_stages"] = against_stages(pipeline, stages)
        peer = measure_peer(peer_plan, peer_inputs, folder, on_cell=bar.step) if peer_plan else None
        bar.finish()
    machine["load_average_end"] = load_average()
    for name in working:
        devices = sorted({r["device"] for r in model["rows"] if r["runtime"] == name} - {name})
        note = ("on " + ", ".join(devices) if devices else "") + (gpu_note(machine) if name == "onnxruntime" else "")
        runtimes[name]["reason"] = note.removeprefix("; ")
    result = {
        "schema": SCHEMA,
        "quick": options.quick,
        "duration_s": round(time.monotonic() - started, 1),
        "machine": machine,
        "runtimes": runtimes,
        "model": model,
        "stages": stages,
        "pipeline": pipeline,
        **({"peer": peer} if peer else {}),
    }
    return validate(result)
