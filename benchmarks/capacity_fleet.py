"""The Backdrop side of a capacity case: one ``backdrop serve`` or a ``backdrop run`` per stream, and how each is read.

Neither reading adds an output. ``serve`` is read through its control API (``GET /streams``) at the moment asked.
A ``backdrop run`` has no such API: it is read from its own progress line, which it prints on stderr every
2 s when that is a pipe (``frames … latency p50 … dropped …``), timed by when the line arrived. Both write
``--stats-json`` when stopped, which gives every stream's final figures (frames written, drops per output).
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from backdrop.benchmarks.rtsp_servers import LineWatcher

START_TIMEOUT_S = 90.0
POLL_S = 0.25
STOP_TIMEOUT_S = 30.0
PROGRESS_WAIT_S = 10.0  # a progress line is due every 2 s; this long without one is a stuck process
# backdrop.commands.progress.format_progress for a live source: "N frames  Es  F fps  latency p50 L ms  dropped D …"
PROGRESS = re.compile(r"(\d+) frames .* latency p50 (\d+) ms\s+dropped (\d+)")


@dataclass(frozen=True)
class StreamCount:
    """One stream's counters as read at ``at`` (time.monotonic()); the latency is its rolling p50 (last 2048 frames)."""

    at: float
    frames: int  # written by every output
    dropped: int
    latency_p50_ms: float


def parse_progress(at: float, line: str) -> StreamCount | None:
    """The counters in a ``backdrop run`` progress line received at ``at``, None for any other line."""
    match = PROGRESS.search(line)
    if match is None:
        return None
    return StreamCount(at, int(match.group(1)), int(match.group(3)), float(match.group(2)))


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


def backdrop(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "backdrop.cli", *args], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


@dataclass(frozen=True)
class Settings:
    """What every stream of a case runs with, whichever command runs it."""

    background: str
    interval: int | str  # model.interval: frames that reuse the latest mask, or "auto"
    batch_size: int  # serve only, as the next two
    workers: int
    batch_wait_ms: float


class Fleet(ABC):
    """The processes running a case's streams (named ``names``, in that order), started with their outputs."""

    def __init__(self, processes: list[subprocess.Popen], names: list[str]) -> None:
        self.processes = processes
        self.names = names
        self.stderr = [LineWatcher(p.stderr) for p in processes]

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    @abstractmethod
    def counts(self, since: float) -> list[StreamCount]:
        """Every stream's counters, each read after ``since`` (waiting for them where they come on their own)."""

    @abstractmethod
    def final(self) -> list[dict[str, Any]]:
        """Every stream's final figures (``--stats-json``'s ``streams.NAME``), once the fleet is stopped."""

    def batching(self) -> dict[str, float]:
        """Figures of the engine's cross-stream batching, where it has one."""
        return {}

    def wait_flowing(self) -> None:
        """Until every stream has written a frame (the start-up — model loads, first keyframes — is not measured)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        idle = threading.Event()
        while time.monotonic() < deadline:
            try:
                if all(count.frames > 0 for count in self.counts(time.monotonic() - 2 * POLL_S)):
                    return
            except (OSError, KeyError, ValueError, TimeoutError):
                pass  # not listening or printing yet
            if any(p.poll() is not None for p in self.processes):
                raise RuntimeError("a backdrop process ended: " + " | ".join(e.text() for e in self.stderr))
            idle.wait(POLL_S)
        raise RuntimeError(f"streams not flowing after {START_TIMEOUT_S:.0f} s")

    def stop(self) -> None:
        """One SIGTERM each, a graceful stop that finishes the files (a second would stop ``backdrop run`` at once)."""
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


class ServeFleet(Fleet):
    """One ``backdrop serve`` with every stream; read through its control API."""

    def __init__(self, sources: list[str], outputs: list[str], folder: Path, settings: Settings) -> None:
        names = [f"s{i}" for i in range(len(sources))]
        config = {
            "background": settings.background,
            "model": {"runtime": "onnxruntime", "batch_size": settings.batch_size, "interval": settings.interval},
            "serve": {"inference_workers": settings.workers, "batch_wait_ms": settings.batch_wait_ms},
            "streams": [
                {"name": name, "source": source, "outputs": [output]}
                for name, source, output in zip(names, sources, outputs, strict=True)
            ],
        }
        path = folder / "streams.yaml"
        path.write_text(yaml.safe_dump(config))
        self.stats = folder / "serve_stats.json"
        (control,) = free_ports(1)
        self.api = f"http://127.0.0.1:{control}"
        command = ("serve", "--config", str(path), "--control", f"127.0.0.1:{control}", "--stats-json", str(self.stats))
        super().__init__([backdrop(*command)], names)

    def counts(self, since: float) -> list[StreamCount]:
        at = time.monotonic()
        streams = {s["name"]: s for s in get_json(f"{self.api}/streams")}
        return [
            StreamCount(at, streams[n]["frames_out"], streams[n]["dropped"], streams[n]["latency_p50_ms"])
            for n in self.names
        ]

    def final(self) -> list[dict[str, Any]]:
        streams = json.loads(self.stats.read_text())["streams"]
        return [streams[name] for name in self.names]

    def batching(self) -> dict[str, float]:
        """Mean frames per inference and the share of batches mixing streams, since the start (not the window)."""
        with urllib.request.urlopen(f"{self.api}/metrics", timeout=10) as response:
            metrics = response.read().decode()
        values = dict(line.rsplit(" ", 1) for line in metrics.splitlines() if line.startswith("backdrop_inference"))
        batches = max(1.0, float(values.get("backdrop_inference_batches_total", 0)))
        return {
            "mean_batch_size": round(float(values.get("backdrop_inference_frames_total", 0)) / batches, 2),
            "mixed_batch_percent": round(
                100 * float(values.get("backdrop_inference_mixed_batches_total", 0)) / batches, 1
            ),
        }


class RunFleet(Fleet):
    """A ``backdrop run`` per stream; read from their progress lines."""

    def __init__(self, sources: list[str], outputs: list[str], folder: Path, settings: Settings) -> None:
        names = [f"s{i}" for i in range(len(sources))]
        path = folder / "run.yaml"
        path.write_text(yaml.safe_dump({"model": {"interval": settings.interval}}))
        self.stats = [folder / f"run_stats_{name}.json" for name in names]
        common = ("run", "--config", str(path), "--runtime", "onnxruntime", "--background", settings.background)
        processes = [
            backdrop(*common, "--source", source, "--output", output, "--stats-json", str(stats))
            for source, output, stats in zip(sources, outputs, self.stats, strict=True)
        ]
        super().__init__(processes, names)

    def counts(self, since: float) -> list[StreamCount]:
        return [self._progress_after(stderr, since) for stderr in self.stderr]

    @staticmethod
    def _progress_after(stderr: LineWatcher, since: float) -> StreamCount:
        while True:
            at, line = stderr.wait_after(" frames ", since, PROGRESS_WAIT_S)
            count = parse_progress(at, line)
            if count is not None:
                return count
            since = at  # a log line that mentions frames: the next one

    def final(self) -> list[dict[str, Any]]:
        return [json.loads(path.read_text())["streams"]["main"] for path in self.stats]
