"""How many live streams one machine holds: N live RTSP cameras through one ``backdrop serve`` against N
``backdrop run`` processes, on the same relay and publishers, in one run.

Each camera is an FFmpeg publisher looping the demo person clip at the chosen size and rate into the GStreamer
relay the tests use; the clip is encoded once beforehand and the publishers only copy its packets. Every
stream replaces its background (``--background``, default ``blur:21``) and writes one output of the kind
``--outputs`` names (benchmarks/capacity_outputs.py): ``record`` (an H.264 .mp4 per stream, as a deployment
records each camera), ``restream`` (H.264 over RTSP to the relay, as one re-streams it) or ``preview`` (a
browser preview nobody watches: nothing is encoded, a floor rather than a deployment). No output is added to
read the figures: serve's come from its control API, each ``backdrop run``'s from its own progress line
(benchmarks/capacity_fleet.py).

After all streams write frames and a warm-up, the window of ``--seconds`` is measured: frames written and
dropped (drop % of the frames that reached the pipeline), CPU ms per written frame of the Backdrop processes
(from /proc; the publishers and the relay are not counted) and cores busy. Read at the window's end: resident
memory per stream, the median of the streams' latency p50 (each a rolling figure over its last 2048 frames,
so it also covers the warm-up), and for ``serve`` the mean cross-stream batch size (since the start). Once
stopped, every output is checked: each recording is decoded and its frames counted against what its stream
wrote, each restream's frames counted as the relay received them. ``--repeats`` runs every case that many
times, serve and run alternating; each row is the median of its runs, which are kept beside it.

    .venv/bin/python -m backdrop.benchmarks.serve_capacity --streams 4 --size 720p [--outputs record]
        [--interval 0|1|auto] [--background color:#00b140] [--seconds 20] [--repeats 3] [--json out.json]
        [--keep recordings/]

The relay and the publishers still share the machine with what is measured: run nothing else alongside.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backdrop.benchmarks.capacity_fleet import Fleet, RunFleet, ServeFleet, Settings, StreamCount
from backdrop.benchmarks.capacity_outputs import OUTPUT_KINDS, CaseOutputs
from backdrop.benchmarks.inputs import demo_clip, parse_resolution
from backdrop.benchmarks.machine import describe_machine, describe_short, load_average
from backdrop.benchmarks.rtsp_servers import Publisher, Relay

CLIP_FRAMES = 150  # 5 s at 30 fps, looped by each publisher
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MODES = {"serve": ServeFleet, "run": RunFleet}


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes (and their reaped children) so far."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        total += sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime, stime, cutime, cstime
    return total / CLOCK_TICKS


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as status:
            total += next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return round(total / 1024, 1)


def per_second(before: StreamCount, after: StreamCount) -> tuple[float, float]:
    """One stream's frames written and dropped per second between two readings."""
    elapsed = after.at - before.at
    return (after.frames - before.frames) / elapsed, (after.dropped - before.dropped) / elapsed


def measure(fleet: Fleet, seconds: float, warmup: float) -> dict[str, float]:
    """The figures of a window of ``seconds``, after the streams flow and ``warmup`` more seconds.

    CPU is counted over the window itself; frames and drops at each stream's rate between its readings nearest
    the window's ends (a ``backdrop run`` is read as its progress lines arrive, up to 2 s after each end).
    """
    fleet.wait_flowing()
    pause = threading.Event()
    pause.wait(warmup)
    start, cpu_before = time.monotonic(), cpu_seconds(fleet.pids)
    before = fleet.counts(start)
    pause.wait(max(0.0, start + seconds - time.monotonic()))
    end, cpu_after = time.monotonic(), cpu_seconds(fleet.pids)
    memory = rss_mb(fleet.pids)
    after = fleet.counts(max(end, *(count.at for count in before)))
    rates = [per_second(b, a) for b, a in zip(before, after, strict=True)]
    frames, dropped = (seconds * sum(r[i] for r in rates) for i in (0, 1))
    streams = len(rates)
    return {
        "fps_per_stream": round(frames / streams / seconds, 2),
        "drop_percent": round(100.0 * dropped / max(1.0, frames + dropped), 2),
        "cpu_ms_per_frame": round(1000.0 * (cpu_after - cpu_before) / max(1.0, frames), 2),
        "cpu_cores_busy": round((cpu_after - cpu_before) / seconds, 2),
        "rss_mb_total": memory,
        "rss_mb_per_stream": round(memory / streams, 1),
        "latency_p50_ms": round(statistics.median(a.latency_p50_ms for a in after), 1),
    }


def camera_clip(clip: Path, fps: int) -> Path:
    """``clip`` encoded once as a camera sends it (a keyframe a second, no B-frames), for publishers that only
    copy its packets: live encoders for every camera would take the CPU the streams are measured on."""
    path = clip.with_name(f"camera_{clip.name}")
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", str(clip), "-c:v", "libx264", "-preset",
         "ultrafast", "-g", str(fps), "-bf", "0", "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )  # fmt: skip
    return path


@contextmanager
def cameras(paths: list[str], names: list[str], clip: Path, fps: int) -> Iterator[Relay]:
    """The relay with ``paths`` mounted and a publisher looping ``clip`` into each of ``names``; stopped after."""
    relay = Relay(tuple(paths)).start()
    publishers = [Publisher(relay.publish_url(name), clip=clip, fps=fps, copy=True).start() for name in names]
    try:
        for name in names:
            relay.wait_receiving(name, timeout=60)
        yield relay
    finally:
        for publisher in publishers:
            publisher.stop()
        relay.stop()


@dataclass(frozen=True)
class Run:
    """One measured run of a case: its figures, the load around it and what its outputs' check found."""

    started: str
    figures: dict[str, float]
    load_average: list[float] | None  # at the window's end, the benchmark's own processes included
    outputs_check: dict[str, Any] | None  # None for previews

    def to_json(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "load_average": self.load_average,
            **self.figures,
            "outputs_check": self.outputs_check,
        }


@contextmanager
def case_folder(keep: Path | None, name: str) -> Iterator[Path]:
    """Where a run writes its clip, configs and outputs: ``keep/name`` when kept, else a folder removed after."""
    if keep is None:
        with tempfile.TemporaryDirectory() as tmp:
            yield Path(tmp)
    else:
        folder = keep / name
        folder.mkdir(parents=True, exist_ok=False)  # never mixes two runs' files
        yield folder


def run_case(mode: str, streams: int, width: int, height: int, args: argparse.Namespace, repeat: int) -> Run:
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    names = [f"s{i}" for i in range(streams)]
    settings = Settings(args.background, args.interval, args.batch_size, args.workers, args.batch_wait_ms)
    with case_folder(args.keep, f"{mode}_{streams}_{repeat}") as folder:
        clip = camera_clip(demo_clip(folder, width, height, CLIP_FRAMES), args.fps)
        outputs = CaseOutputs(args.outputs, names, folder)
        with cameras(outputs.relay_paths, names, clip, args.fps) as relay:
            specs = outputs.specs(relay)
            with MODES[mode]([relay.play_url(name) for name in names], specs, folder, settings) as fleet:
                figures = {**measure(fleet, args.seconds, args.warmup), **fleet.batching()}
                load = load_average()
        return Run(started, figures, load, outputs.verify(relay, specs, fleet.final()))


def summarize(case: dict[str, Any], runs: list[Run]) -> dict[str, Any]:
    """The row of ``case``: the median of each figure over ``runs``, whether every output checked out, the runs."""
    medians = {key: round(statistics.median(run.figures[key] for run in runs), 2) for key in runs[0].figures}
    checks = [run.outputs_check for run in runs]
    verified = None if None in checks else all(check["ok"] for check in checks if check is not None)
    return {**case, "repeats": len(runs), **medians, "outputs_verified": verified, "runs": [r.to_json() for r in runs]}


def spread(key: str, row: dict[str, Any]) -> str:
    """A row's median of ``key``, with its runs' range when there are several."""
    values = [run[key] for run in row["runs"]]
    median = f"{row[key]:g}"
    return median if len(values) == 1 else f"{median} ({min(values):g}–{max(values):g})"


def table(rows: list[dict[str, Any]], machine: dict[str, Any]) -> str:
    """The rows as a Markdown table (medians, runs' range in brackets) under a line saying where and when."""
    load = "/".join(f"{v:g}" for v in machine["load_average"] or [])
    lines = [
        f"{describe_short(machine)}; {machine['date']}; load average before {load}",
        "| mode | streams | interval | outputs | fps per stream | dropped % | CPU ms / frame | cores busy "
        "| MiB per stream | latency p50 ms | outputs ok | runs |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    verdicts = {True: "yes", False: "NO", None: "–"}
    for row in rows:
        cells = (
            row["mode"], f"{row['streams']} × {row['size']}", row["interval"], row["outputs"],
            row["fps_per_stream"], spread("drop_percent", row), spread("cpu_ms_per_frame", row),
            row["cpu_cores_busy"], row["rss_mb_per_stream"], spread("latency_p50_ms", row),
            verdicts[row["outputs_verified"]], row["repeats"],
        )  # fmt: skip
        lines.append("| " + " | ".join(str(cell) for cell in cells) + " |")
    return "\n".join(lines)


def model_interval(text: str) -> int | str:
    """``--interval``: frames between inferred ones, or ``auto``."""
    return text if text == "auto" else int(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", default="4", help="comma-separated stream counts, e.g. 2,4,6")
    parser.add_argument("--size", default="480p", help="480p, 720p or WIDTHxHEIGHT")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--outputs", choices=OUTPUT_KINDS, default="record", help="what every stream writes")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window per case")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=3, help="runs per case; rows give their medians")
    parser.add_argument("--modes", default="serve,run", help="serve (one process), run (one process per stream)")
    parser.add_argument("--batch-size", type=int, default=4, help="serve: model.batch_size")
    parser.add_argument("--workers", type=int, default=2, help="serve: serve.inference_workers")
    parser.add_argument("--batch-wait-ms", type=float, default=5.0, help="serve: serve.batch_wait_ms")
    parser.add_argument("--interval", type=model_interval, default=0, help="model.interval: an int or auto")
    parser.add_argument("--background", default="blur:21", help="every stream's background (blur:21, color:#00b140, …)")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--keep", type=Path, help="keep each run's outputs here (MODE_STREAMS_REPEAT/s0.mp4 …)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats: at least 1")
    label, width, height = parse_resolution(args.size)
    machine = describe_machine()
    cases = [(int(n), mode) for n in args.streams.split(",") for mode in args.modes.split(",")]
    runs: dict[tuple[int, str], list[Run]] = {case: [] for case in cases}
    for repeat in range(args.repeats):  # cases alternate, so a slow spell of the machine touches them all
        for count, mode in cases:
            run = run_case(mode, count, width, height, args, repeat + 1)
            runs[count, mode].append(run)
            shown({"repeat": repeat + 1, "mode": mode, "streams": count, **run.to_json()})
    shared = {"size": label, "fps": args.fps, "interval": args.interval, "background": args.background}
    rows = [
        summarize({"mode": mode, "streams": count, **shared, "outputs": args.outputs}, runs[count, mode])
        for count, mode in cases
    ]
    print(table(rows, machine), flush=True)
    command = " ".join(["python -m backdrop.benchmarks.serve_capacity", *(sys.argv[1:] if argv is None else argv)])
    save(rows, args.json, machine=machine, command=command)
    return 0


def shown(result: dict[str, Any]) -> dict[str, Any]:
    """``result``, printed as one JSON line as soon as it is measured."""
    print(json.dumps(result), flush=True)
    return result


def save(
    results: list[dict[str, Any]], path: Path | None, *, machine: dict[str, Any] | None = None, **details: Any
) -> None:
    """Write ``results`` with the machine they were measured on (described now unless given), when a path was given."""
    if path:
        document = {"machine": machine or describe_machine(), **details, "results": results}
        path.write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
