"""Repeat-and-summarise timing shared by the benchmark sections: warm-up, repeats, median/min/max.

Wall time is what a user sees, but it grows with whatever else runs on the machine; CPU time (of every
thread of this process) does not, and shows work that wall time hides, such as thread pools spinning.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Samples:
    """Seconds of wall time and of process CPU time, one entry per timed call."""

    wall: list[float]
    cpu: list[float]

    def cpu_ms(self, *, per: int = 1) -> float:
        """Median CPU milliseconds per call, divided by ``per`` items."""
        return round(statistics.median(self.cpu) * 1000.0 / per, 4)


def summarize_ms(seconds: Sequence[float], *, per: int = 1) -> dict[str, float]:
    """Median, min and max of durations in seconds, in milliseconds per ``per`` items (e.g. frames of a batch)."""
    scale = 1000.0 / per
    return {
        "median": round(statistics.median(seconds) * scale, 4),
        "min": round(min(seconds) * scale, 4),
        "max": round(max(seconds) * scale, 4),
        "runs": len(seconds),
    }


def time_calls(call: Callable[[], object], *, warmup: int, repeats: int) -> Samples:
    """Time each of ``repeats`` calls of ``call``, after ``warmup`` untimed calls (caches, lazy initialisation)."""
    for _ in range(warmup):
        call()
    wall, cpu = [], []
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        call()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return Samples(wall, cpu)
