"""What the Ray engine costs: the same live streams through ``LocalEngine`` and through ``RayEngine``, in one run.

Each stream is a live test source (``testsrc:WxH@FPS,live``, no network, so only the engines differ) blurred
by the shared model into a null output. After every stream writes frames and a warm-up, a window of
``--seconds`` is measured: output fps per stream, drops, the median latency p50, resident memory, and CPU ms
per written frame from /proc — for the Ray engine split into the actors (where the streams run), Ray's own
processes (raylet, GCS, idle workers, monitors) and this driver. The Ray engine starts its embedded Ray here
(one actor per stream unless ``--streams-per-actor``); its start-up time is reported too.

    .venv/bin/python -m backdrop.benchmarks.serve_ray_overhead --streams 2 --size 320x240 --fps 15 [--seconds 10]

Ray's CPU is counted from every process running Ray's code: run no other Ray on the machine meanwhile.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

from backdrop.benchmarks.inputs import parse_resolution
from backdrop.benchmarks.serve_capacity import cpu_seconds, rss_mb, save, shown
from backdrop.stream.config.serve import parse_serve_config
from backdrop.stream.core.figures import StreamFigures
from backdrop.stream.serve.engine import Engine, LocalEngine
from backdrop.stream.serve.tuning import FOR_STREAMS

START_TIMEOUT_S = 120.0


def ray_processes(exclude: set[int]) -> list[int]:
    """Processes running Ray's code (its package on the command line, or titled ``ray::…``), less ``exclude``."""
    import ray

    package = os.path.dirname(ray.__file__)
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in exclude:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as file:
                cmdline = file.read().decode(errors="replace")
        except OSError:
            continue
        if package in cmdline or cmdline.startswith("ray::"):
            found.append(int(entry))
    return found


def live(pids: list[int]) -> list[int]:
    return [pid for pid in pids if os.path.exists(f"/proc/{pid}")]


def _pid(figures: StreamFigures) -> int:
    """The process running the stream."""
    if figures.pid is None:
        raise RuntimeError(f"stream {figures.name} reported no process")
    return figures.pid


def wait_flowing(engine: Engine, streams: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    idle = threading.Event()
    while time.monotonic() < deadline:
        figures = engine.streams()
        if len(figures) == streams and all(f.frames_out > 0 for f in figures):
            return
        idle.wait(0.25)
    raise RuntimeError(f"streams not flowing after {START_TIMEOUT_S:.0f} s: {engine.streams()}")


def measure(engine: Engine, args: argparse.Namespace) -> dict[str, Any]:
    """Start ``engine``, wait for frames and the warm-up, measure the window, stop it."""
    started = time.monotonic()
    engine.start()
    try:
        wait_flowing(engine, args.streams)
        start_s = time.monotonic() - started
        pause = threading.Event()
        pause.wait(args.warmup)
        actors = sorted({_pid(f) for f in engine.streams()} - {os.getpid()})  # none for the local engine
        groups = {"driver": [os.getpid()]}
        if actors:
            groups.update(actors=actors, ray=ray_processes({os.getpid(), *actors}))
        before = engine.streams()
        cpu_before = {name: cpu_seconds(live(pids)) for name, pids in groups.items()}
        pids_before = {name: live(pids) for name, pids in groups.items()}
        pause.wait(args.seconds)
        after = engine.streams()
        cpu_after = {name: cpu_seconds(live(pids_before[name])) for name in groups}
        memory = sum(rss_mb(live(pids)) for pids in groups.values())
    finally:
        engine.stop()
    frames = sum(a.frames_out - b.frames_out for a, b in zip(after, before, strict=True))
    dropped = sum(a.dropped - b.dropped for a, b in zip(after, before, strict=True))
    cpu = {name: cpu_after[name] - cpu_before[name] for name in groups}
    result = {
        "start_s": round(start_s, 2),
        "fps_per_stream": round(frames / args.streams / args.seconds, 2),
        "drop_percent": round(100.0 * dropped / max(1, frames + dropped), 2),
        "cpu_ms_per_frame": round(1000.0 * sum(cpu.values()) / max(1, frames), 2),
        "cpu_ms_per_frame_by_process": {name: round(1000.0 * s / max(1, frames), 2) for name, s in cpu.items()},
        "rss_mb_total": round(memory, 1),
        "latency_p50_ms": round(statistics.median(a.latency_p50_ms for a in after), 1),
    }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=2)
    parser.add_argument("--size", default="320x240", help="480p, 720p or WIDTHxHEIGHT")
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured window per engine")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--streams-per-actor", type=int, default=1, help="ray: serve.streams_per_actor")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    label, width, height = parse_resolution(args.size)
    config = parse_serve_config(
        {
            "background": "blur:21",
            "model": {"runtime": "onnxruntime"},
            "serve": {"streams_per_actor": args.streams_per_actor},
            "streams": [
                {"name": f"s{i}", "source": f"testsrc:{width}x{height}@{args.fps},live", "outputs": ["null"]}
                for i in range(args.streams)
            ],
        }
    )
    from backdrop.stream.serve.ray_engine import RayEngine

    FOR_STREAMS.apply()  # this process is the local engine's, as `backdrop serve` tunes its own
    results = []
    for name, engine in (("local", LocalEngine(config)), ("ray", RayEngine(config))):
        results.append(
            shown({"engine": name, "streams": args.streams, "size": label, "fps": args.fps, **measure(engine, args)})
        )
    save(results, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
