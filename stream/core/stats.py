"""Run statistics: per-stage times, frame counts, drops and capture→sink latency, as one JSON-ready snapshot.

Each counter has a single writer thread (capture counts frames in, composite counts frames out), and the
duration windows are deques, so recording costs no lock; ``snapshot`` can be called from any thread.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from backdrop.stream.core.queues import StageQueue

WINDOW = 2048  # recent samples kept per stage for the percentiles


def percentiles_ms(samples: Sequence[float]) -> dict[str, float]:
    """p50 and p95 of durations in seconds, in milliseconds (0 when there are none yet)."""
    if not samples:
        return {"p50": 0.0, "p95": 0.0}
    p50, p95 = np.percentile(np.asarray(samples, dtype=np.float64), [50, 95]) * 1000.0
    return {"p50": round(float(p50), 3), "p95": round(float(p95), 3)}


def peak_rss_mb() -> float | None:
    """This process's peak resident memory in MiB (Linux), None where /proc does not say.

    VmHWM counts from the process's own start; ru_maxrss would include the memory of whatever process
    spawned it (the kernel carries the spawner's high-water mark across exec).
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


class Counted(Protocol):
    """A source or sink that counts its own events (see ``Source.counters``)."""

    def counters(self) -> dict[str, int]: ...

    def describe(self) -> str: ...


class RunStats:
    """Everything the progress line, the preview page and ``--stats-json`` report.

    Drops are counted wherever they happen: in the queues between stages (live sources), inside a network
    source (frames replaced before anyone read them) and inside live sinks (frames a slow server missed).
    """

    def __init__(self, *, frame_count: int | None, counters: Sequence[Counted] = ()) -> None:
        self.frame_count = frame_count
        self.counted = list(counters)
        self.started = time.monotonic()
        self.first_output_at: float | None = None
        self.frames_in = 0
        self.frames_composited = 0
        self.frames_inferred = 0  # frames the model segmented (fewer than frames_in with model.interval)
        self.written: dict[str, int] = {}  # frames written, per sink
        self.stage_times: dict[str, deque[float]] = {}
        self.latencies: deque[float] = deque(maxlen=WINDOW)
        self.queues: list[StageQueue] = []

    def record(self, stage: str, seconds: float) -> None:
        """One frame's time in ``stage`` (stages that batch record their per-frame share)."""
        window = self.stage_times.get(stage)
        if window is None:
            window = self.stage_times.setdefault(stage, deque(maxlen=WINDOW))
        window.append(seconds)

    @property
    def frames_out(self) -> int:
        """Frames every sink has written (live sinks may drop different frames)."""
        return min(self.written.values(), default=0)

    def delivered(self, sink: str, captured_at: float) -> None:
        """A frame reached ``sink``: count it and record its capture→sink latency."""
        self.written[sink] = self.written.get(sink, 0) + 1
        now = time.monotonic()
        if self.first_output_at is None:
            self.first_output_at = now
        self.latencies.append(now - captured_at)

    def drops_and_reconnects(self) -> tuple[dict[str, int], int]:
        """(frames dropped per place — each queue, and each source or sink that drops — , reconnects in all)."""
        drops = {f"queue:{q.name}": q.dropped for q in self.queues}
        reconnects = 0
        for part in self.counted:
            counts = part.counters()
            if "dropped" in counts:
                drops[part.describe()] = counts["dropped"]
            reconnects += counts.get("reconnects", 0)
        return drops, reconnects

    def snapshot(self) -> dict[str, Any]:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        frames_out = self.frames_out
        drops, reconnects = self.drops_and_reconnects()
        return {
            "frames_in": self.frames_in,
            "frames_out": frames_out,
            "frames_composited": self.frames_composited,
            "frames_inferred": self.frames_inferred,
            "frame_count": self.frame_count,
            "dropped": sum(drops.values()),
            "drops": drops,
            "fps": round(frames_out / elapsed, 2),
            "fps_in": round(self.frames_in / elapsed, 2),
            "fps_out": round(frames_out / elapsed, 2),
            "elapsed_s": round(elapsed, 3),
            "first_output_s": None if self.first_output_at is None else round(self.first_output_at - self.started, 3),
            "latency_ms": percentiles_ms(list(self.latencies)),
            "stages": {
                name: {f"{key}_ms": value for key, value in percentiles_ms(list(window)).items()}
                for name, window in list(self.stage_times.items())
            },
            "queues": {q.name: len(q) for q in self.queues},
            "reconnects": reconnects,
            "peak_rss_mb": peak_rss_mb(),
        }
