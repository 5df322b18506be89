"""How many live streams one machine holds: N live RTSP cameras through one ``backdrop serve`` against N
``backdrop run`` processes, on the same relay and publishers, in one run.

Each camera is an FFmpeg publisher looping the demo person clip at the chosen size and rate into the GStreamer
relay the tests use; the clip is encoded once beforehand and the publishers only copy its packets. Every
stream replaces its background (``--background``, default ``blur:21``) and writes to a browser-preview output
(nothing is encoded while nobody watches), which in ``run`` mode is also where its live figures are read.
After all streams write frames and a warm-up, the window of ``--seconds`` is measured: frames written and
dropped (drop % of the frames that reached the pipeline), CPU ms per written frame of the Backdrop processes
(from /proc; the publishers and the relay are not counted), resident memory per stream, the median of the
streams' latency p50, and for ``serve`` the mean cross-stream batch size.

    .venv/bin/python -m backdrop.benchmarks.serve_capacity --streams 4 --size 480p [--interval 1]
        [--background color:#00b140] [--seconds 20] [--json out.json]

The relay and the publishers still share the machine with what is measured: run nothing else alongside.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from backdrop.benchmarks.inputs import demo_clip, parse_resolution
from backdrop.benchmarks.machine import describe_machine
from backdrop.benchmarks.rtsp_servers import LineWatcher, Publisher, Relay, stop_process

CLIP_FRAMES = 150  # 5 s at 30 fps, looped by each publisher
START_TIMEOUT_S = 90.0
POLL_S = 0.25
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


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


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class Fleet:
    """The Backdrop side of one case: its processes, and what reads every stream's (frames, dropped, p50)."""

    def __init__(
        self,
        processes: list[subprocess.Popen],
        figures: Callable[[], list[tuple[int, int, float]]],
        api: str | None = None,  # serve's control API
    ) -> None:
        self.processes = processes
        self.figures = figures
        self.api = api
        self.errors = [LineWatcher(p.stderr) for p in processes]

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def stop(self) -> None:
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            stop_process(process, timeout=15)


def backdrop(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "backdrop.cli", *args], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def start_serve(urls: list[str], ports: list[int], folder: Path, args: argparse.Namespace) -> Fleet:
    config = {
        "background": args.background,
        "model": {"runtime": "onnxruntime", "batch_size": args.batch_size, "interval": args.interval},
        "serve": {"inference_workers": args.workers, "batch_wait_ms": args.batch_wait_ms},
        "streams": [
            {"name": f"s{i}", "source": url, "outputs": [f"http://127.0.0.1:{port}"]}
            for i, (url, port) in enumerate(zip(urls, ports, strict=True))
        ],
    }
    path = folder / "streams.yaml"
    path.write_text(yaml.safe_dump(config))
    (control,) = free_ports(1)
    process = backdrop("serve", "--config", str(path), "--control", f"127.0.0.1:{control}")
    api = f"http://127.0.0.1:{control}"

    def figures() -> list[tuple[int, int, float]]:
        return [(s["frames_out"], s["dropped"], s["latency_p50_ms"]) for s in get_json(f"{api}/streams")]

    return Fleet([process], figures, api)


def start_runs(urls: list[str], ports: list[int], folder: Path, args: argparse.Namespace) -> Fleet:
    path = folder / "run.yaml"
    path.write_text(yaml.safe_dump({"model": {"interval": args.interval}}))
    common = (
        "run",
        "--config",
        str(path),
        "--no-progress",
        "--runtime",
        "onnxruntime",
        "--background",
        args.background,
    )
    processes = [
        backdrop(*common, "--source", url, "--output", f"http://127.0.0.1:{port}")
        for url, port in zip(urls, ports, strict=True)
    ]

    def figures() -> list[tuple[int, int, float]]:
        stats = [get_json(f"http://127.0.0.1:{port}/stats.json") for port in ports]
        return [(s["frames_out"], s["dropped"], s["latency_ms"]["p50"]) for s in stats]

    return Fleet(processes, figures)


def wait_flowing(fleet: Fleet, streams: int) -> None:
    """Until every stream has written a frame (the start-up — model loads, first keyframes — is not measured)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    idle = threading.Event()
    while time.monotonic() < deadline:
        try:
            figures = fleet.figures()
            if len(figures) == streams and all(f[0] > 0 for f in figures):
                return
        except (OSError, KeyError, ValueError):
            pass  # not listening yet
        if any(p.poll() is not None for p in fleet.processes):
            raise RuntimeError("a backdrop process ended: " + " | ".join(e.text() for e in fleet.errors))
        idle.wait(POLL_S)
    raise RuntimeError(f"streams not flowing after {START_TIMEOUT_S:.0f} s")


def measure(fleet: Fleet, streams: int, seconds: float, warmup: float) -> dict[str, Any]:
    wait_flowing(fleet, streams)
    pause = threading.Event()
    pause.wait(warmup)
    before, cpu_before = fleet.figures(), cpu_seconds(fleet.pids)
    pause.wait(seconds)
    after, cpu_after = fleet.figures(), cpu_seconds(fleet.pids)
    memory = rss_mb(fleet.pids)
    frames = sum(a[0] - b[0] for a, b in zip(after, before, strict=True))
    dropped = sum(a[1] - b[1] for a, b in zip(after, before, strict=True))
    result = {
        "fps_per_stream": round(frames / streams / seconds, 2),
        "drop_percent": round(100.0 * dropped / max(1, frames + dropped), 2),
        "cpu_ms_per_frame": round(1000.0 * (cpu_after - cpu_before) / max(1, frames), 2),
        "cpu_cores_busy": round((cpu_after - cpu_before) / seconds, 2),
        "rss_mb_total": memory,
        "rss_mb_per_stream": round(memory / streams, 1),
        "latency_p50_ms": round(statistics.median(a[2] for a in after), 1),
    }
    if fleet.api is not None:
        metrics = urllib.request.urlopen(f"{fleet.api}/metrics", timeout=10).read().decode()
        values = dict(line.rsplit(" ", 1) for line in metrics.splitlines() if line.startswith("backdrop_inference"))
        batches = max(1.0, float(values.get("backdrop_inference_batches_total", 0)))
        result["mean_batch_size"] = round(float(values.get("backdrop_inference_frames_total", 0)) / batches, 2)
        result["mixed_batch_percent"] = round(
            100 * float(values.get("backdrop_inference_mixed_batches_total", 0)) / batches, 1
        )
    return result


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


def run_case(mode: str, streams: int, width: int, height: int, fps: int, args: argparse.Namespace) -> dict[str, Any]:
    names = tuple(f"s{i}" for i in range(streams))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        clip = camera_clip(demo_clip(folder, width, height, CLIP_FRAMES), fps)
        relay = Relay(names).start()
        publishers = [Publisher(relay.publish_url(name), clip=clip, fps=fps, copy=True).start() for name in names]
        fleet = None
        try:
            for name in names:
                relay.wait_receiving(name, timeout=60)
            urls = [relay.play_url(name) for name in names]
            ports = free_ports(streams)
            fleet = start_serve(urls, ports, folder, args) if mode == "serve" else start_runs(urls, ports, folder, args)
            figures = measure(fleet, streams, args.seconds, args.warmup)
            return {
                "mode": mode,
                "streams": streams,
                "interval": args.interval,
                "background": args.background,
                **figures,
            }
        finally:
            if fleet is not None:
                fleet.stop()
            for publisher in publishers:
                publisher.stop()
            relay.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", default="4", help="comma-separated stream counts, e.g. 2,4,6")
    parser.add_argument("--size", default="480p", help="480p, 720p or WIDTHxHEIGHT")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window per case")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--modes", default="serve,run", help="serve (one process), run (one process per stream)")
    parser.add_argument("--batch-size", type=int, default=4, help="serve: model.batch_size")
    parser.add_argument("--workers", type=int, default=2, help="serve: serve.inference_workers")
    parser.add_argument("--batch-wait-ms", type=float, default=5.0, help="serve: serve.batch_wait_ms")
    parser.add_argument("--interval", type=int, default=0, help="model.interval: frames that reuse the latest mask")
    parser.add_argument("--background", default="blur:21", help="every stream's background (blur:21, color:#00b140, …)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    label, width, height = parse_resolution(args.size)
    results = []
    for count in (int(n) for n in args.streams.split(",")):
        for mode in args.modes.split(","):
            results.append(
                shown({"size": label, "fps": args.fps, **run_case(mode, count, width, height, args.fps, args)})
            )
    save(results, args.json)
    return 0


def shown(result: dict[str, Any]) -> dict[str, Any]:
    """``result``, printed as one JSON line as soon as it is measured."""
    print(json.dumps(result), flush=True)
    return result


def save(results: list[dict[str, Any]], path: Path | None) -> None:
    """Write ``results`` with the machine they were measured on, when a path was given."""
    if path:
        path.write_text(json.dumps({"machine": describe_machine(), "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
