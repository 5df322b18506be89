"""End-to-end fps: the threaded pipeline beside the plain sequential loop and the codec floor, same run.

The runs, their interleaved repeats (so drifting machine load hits all alike) and the CPU time per frame
come from ``benchmarks/pipeline_fps.py`` (file → blur → H.264 file; the floor is decode → encode alone);
this module only chooses the inputs and runtimes and shapes the result rows, and sets the pipeline's CPU per frame
against the sum of its stages timed one at a time (what running them together costs beyond the work itself).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from backdrop.benchmarks import pipeline_fps
from backdrop.benchmarks.stage_costs import pipeline_stages

MODES = ("pipeline", "sequential", "codec_floor")
BASELINE_MODE = "sequential"


@dataclass(frozen=True)
class Input:
    """One video file to run on, with the names it gets in tables."""

    label: str  # 480p, 720p, … or the file's own size
    size: str  # WIDTHxHEIGHT
    path: Path
    description: str  # where the frames came from
    frames: int | None  # frames in the file, when known


@dataclass(frozen=True)
class PipelinePlan:
    """Runtimes × inputs to run, each with ``settings`` (pipeline/sequential/floor ``settings.repeats`` times)."""

    runtimes: tuple[str, ...]
    settings: pipeline_fps.Settings = field(default_factory=pipeline_fps.Settings)

    def cells(self, inputs: int) -> int:
        return len(self.runtimes) * inputs


def summary(runs: list[float], median: float) -> dict[str, float]:
    """A statistic's record in a result: its median over ``runs``, their extremes and count."""
    return {"median": median, "min": min(runs), "max": max(runs), "runs": len(runs)}


def measure_pipeline(
    plan: PipelinePlan, inputs: list[Input], folder: Path, *, on_run: Callable[[str], None] = print
) -> dict[str, Any]:
    """The pipeline section of a benchmark result: fps per (input, runtime, mode) and pipeline ÷ sequential."""
    rows = []
    for source in inputs:
        for runtime in plan.runtimes:
            measured = pipeline_fps.measure(source.path, folder, replace(plan.settings, runtime=runtime))
            on_run(f"pipeline and sequential, {runtime}, {source.label}")
            for mode in MODES:
                fps = summary(measured[f"{mode}_runs"], measured[f"{mode}_fps"])
                rows.append(
                    {
                        "input": source.description,
                        "resolution": source.label,
                        "size": source.size,
                        "frames": source.frames,
                        "runtime": runtime,
                        "mode": mode,
                        "fps": fps,
                        "cpu_ms_per_frame": measured[f"{mode}_cpu_ms_per_frame"],
                        "ratio": round(fps["median"] / measured[f"{BASELINE_MODE}_fps"], 3),
                    }
                )
    return {
        "baseline": BASELINE_MODE,
        "settings": {name: value for name, value in asdict(plan.settings).items() if name != "runtime"},
        "rows": rows,
    }


def against_stages(pipeline: dict[str, Any], stages: dict[str, Any]) -> dict[str, Any]:
    """Pipeline CPU ms per frame ÷ the sum of its stages' CPU ms, each timed alone, per input of the stages' size.

    Only the pipeline rows of the runtime the stages were timed with: another runtime's inference costs differently.
    The pipeline's figure is its whole run (opening the clip and the model included); above 1 is what threads,
    queues and hand-overs add to the work.
    """
    names = pipeline_stages(pipeline["settings"]["background"])
    cpu = {(r["size"], r["stage"]): r["cpu_ms"] for r in stages["rows"]}
    rows = []
    for row in pipeline["rows"]:
        parts = {name: cpu[row["size"], name] for name in names if (row["size"], name) in cpu}
        if row["mode"] != "pipeline" or row["runtime"] != stages["runtime"] or len(parts) < len(names):
            continue
        total = sum(parts.values())
        rows.append(
            {
                "input": row["input"],
                "resolution": row["resolution"],
                "runtime": row["runtime"],
                "stages_cpu_ms": parts,
                "sum_cpu_ms": round(total, 2),
                "pipeline_cpu_ms": row["cpu_ms_per_frame"],
                "ratio": round(row["cpu_ms_per_frame"] / total, 3),
            }
        )
    return {"stages": list(names), "threads": stages["threads"], "rows": rows}
