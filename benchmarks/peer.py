"""Backdrop against MediaPipe's documented loop: two whole processes on the same clip, in the same run.

Ours is ``backdrop run`` with the default config (file → H.264 file); theirs is MediaPipe's selfie-segmentation
example loop (benchmarks/mediapipe_loop.py) in MediaPipe's own interpreter, writing H.264 at the same x264
preset and CRF. Each is timed from process start to a finished file, start-up included, as a user waits for
it; the CPU time is the kernel's account of each process and its helpers. The runs alternate (ours, theirs,
ours, …) so drifting machine load hits both alike, and each side's median over the pairs is reported with the
ratios: our fps ÷ theirs (above 1: we are faster) and our CPU per frame ÷ theirs (below 1: we use less).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backdrop.benchmarks import mediapipe_loop
from backdrop.benchmarks.end_to_end import Input, summary
from backdrop.benchmarks.pipeline_fps import ProcessRun, cli_run, run_process
from backdrop.errors import RuntimeUnavailable
from backdrop.stream.config.run import EncoderConfig, RunConfig

ENV = "BACKDROP_MEDIAPIPE_PYTHON"
GET_IT = "make mediapipe-env builds one (.cache/mpvenv/bin/python)"
# background kind -> (ours, theirs): the example's grey plate, and the default config's blur (theirs blurs the
# whole frame with cv2.GaussianBlur at the same kernel, the example's other suggestion)
BACKGROUNDS = {
    "color": ("color:#{:02x}{:02x}{:02x}".format(*mediapipe_loop.GREY), "color"),
    "blur": (RunConfig().background, RunConfig().background),
}


@dataclass(frozen=True)
class PeerPlan:
    """MediaPipe's interpreter (and its mediapipe version), and how many (ours, theirs) pairs to run per input and
    background."""

    python: str
    version: str
    pairs: int = 3
    backgrounds: tuple[str, ...] = tuple(BACKGROUNDS)

    def cells(self, inputs: int) -> int:
        return inputs * len(self.backgrounds)


def _version(python: str) -> str:
    """mediapipe's version under ``python``; RuntimeUnavailable when that interpreter cannot import it."""
    try:
        done = subprocess.run(
            [python, "-c", "import mediapipe; print(mediapipe.__version__)"], capture_output=True, text=True
        )
    except OSError as e:
        raise RuntimeUnavailable(f"--against mediapipe: cannot start {python}: {e.strerror or e}; {GET_IT}") from e
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or ["failed"])[-1]
        raise RuntimeUnavailable(f"--against mediapipe: {python} cannot import mediapipe ({why}); {GET_IT}")
    return done.stdout.strip()


def find_mediapipe(explicit: str | None) -> tuple[str, str]:
    """(interpreter, mediapipe version): ``explicit`` (--mediapipe-python), else $BACKDROP_MEDIAPIPE_PYTHON, else
    this interpreter when it has mediapipe. MediaPipe pins numpy < 2, so it usually lives in a venv of its own."""
    python = explicit or os.environ.get(ENV) or (sys.executable if importlib.util.find_spec("mediapipe") else None)
    if not python:
        raise RuntimeUnavailable(
            f"--against mediapipe needs a Python with mediapipe: {GET_IT}; pass it with --mediapipe-python or ${ENV}"
        )
    if shutil.which("ffmpeg") is None:
        raise RuntimeUnavailable(
            "--against mediapipe: MediaPipe's loop writes H.264 with the ffmpeg command: install ffmpeg"
        )
    return python, _version(python)


def _theirs(plan: PeerPlan, clip: Path, output: Path, background: str) -> tuple[ProcessRun, int]:
    encoder = EncoderConfig()
    command: list[str | Path] = [plan.python, mediapipe_loop.__file__, clip, output, "--background", background]
    command += ["--preset", encoder.preset, "--crf", str(encoder.crf)]  # what `backdrop run` writes with
    try:
        run = run_process(command)
    except subprocess.CalledProcessError as e:
        why = (e.stderr.strip().splitlines() or [f"exit status {e.returncode}"])[-1]
        raise RuntimeUnavailable(f"MediaPipe's loop failed on {clip.name}: {why}") from e
    return run, json.loads(run.stdout.splitlines()[-1])["frames"]


def _ours(clip: Path, output: Path, background: str) -> tuple[ProcessRun, int]:
    stats = output.with_suffix(".json")
    run = cli_run(clip, output, "--background", background, "--stats-json", stats)
    return run, json.loads(stats.read_text())["totals"]["frames_out"]


def _fps(runs: Sequence[tuple[ProcessRun, int]]) -> dict[str, float]:
    values = [round(frames / run.wall_s, 1) for run, frames in runs]
    return summary(values, statistics.median(values))


def _cpu_ms(runs: Sequence[tuple[ProcessRun, int]]) -> float:
    return round(statistics.median(run.cpu_s * 1000 / frames for run, frames in runs), 2)


def measure_peer(
    plan: PeerPlan, inputs: list[Input], folder: Path, *, on_cell: Callable[[str], None] = print
) -> dict[str, Any]:
    """The peer section of a benchmark result: per input and background, both sides' fps and CPU per frame."""
    rows = []
    for source in inputs:
        for kind in plan.backgrounds:
            ours_spec, theirs_spec = BACKGROUNDS[kind]
            ours, theirs = [], []
            for _ in range(plan.pairs):
                ours.append(_ours(source.path, folder / "peer_ours.mp4", ours_spec))
                theirs.append(_theirs(plan, source.path, folder / "peer_theirs.mp4", theirs_spec))
            frames = {count for _, count in ours + theirs}
            if len(frames) != 1:
                raise RuntimeError(f"{source.path.name}: the two loops wrote different frame counts {sorted(frames)}")
            row: dict[str, Any] = {
                "input": source.description,
                "resolution": source.label,
                "size": source.size,
                "frames": frames.pop(),
                "background": kind,
                "ours": ours_spec,
                "fps": _fps(ours),
                "mediapipe_fps": _fps(theirs),
                "cpu_ms_per_frame": _cpu_ms(ours),
                "mediapipe_cpu_ms_per_frame": _cpu_ms(theirs),
                "pairs": plan.pairs,
            }
            row["ratio"] = round(row["fps"]["median"] / row["mediapipe_fps"]["median"], 3)
            row["cpu_ratio"] = round(row["cpu_ms_per_frame"] / row["mediapipe_cpu_ms_per_frame"], 3)
            rows.append(row)
            on_cell(f"against MediaPipe, {kind}, {source.label}")
    encoder = EncoderConfig()
    return {
        "baseline": "mediapipe",
        "mediapipe": plan.version,
        "settings": {
            "pairs": plan.pairs,
            "ours": "`backdrop run` (default config)",
            "theirs": "selfie-segmentation example loop (model_selection=0, mask > 0.1)",
            "encoder": f"libx264 {encoder.preset} crf {encoder.crf}",
        },
        "rows": rows,
    }
