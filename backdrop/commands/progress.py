"""The live progress display on stderr: a bar with ETA for finite sources, a rolling line for live ones."""

from __future__ import annotations

import sys
from typing import Any, TextIO


def format_progress(stats: dict[str, Any]) -> str:
    """One human line for a stats snapshot."""
    done, total = stats["frames_out"], stats["frame_count"]
    tail = (
        f"{stats['fps_out']:.1f} fps  latency p50 {stats['latency_ms']['p50']:.0f} ms  "
        f"dropped {stats['dropped']}  reconnects {stats['reconnects']}"
    )
    if total:
        fraction = min(1.0, done / total)
        bar = "#" * round(fraction * 24)
        eta = (total - done) / stats["fps_out"] if stats["fps_out"] > 0 else float("nan")
        return f"[{bar:<24}] {done}/{total} {fraction:4.0%}  ETA {eta:5.1f}s  {tail}"
    return f"{done} frames  {stats['elapsed_s']:.0f}s  {tail}"


class ProgressLine:
    """Rewrites one line on a terminal; into a file or pipe, prints a line every few seconds instead."""

    PIPE_INTERVAL_S = 2.0

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.last_printed = -float("inf")

    def update(self, stats: dict[str, Any], *, final: bool = False) -> None:
        line = format_progress(stats)
        if self.tty:
            self.stream.write("\r\x1b[2K" + line + ("\n" if final else ""))
        elif final or stats["elapsed_s"] - self.last_printed >= self.PIPE_INTERVAL_S:
            self.last_printed = stats["elapsed_s"]
            self.stream.write(line + "\n")
        self.stream.flush()
