"""The one progress display on stderr: a bar with ETA when the total is known, a rolling count when it is not.

``backdrop run`` feeds it the pipeline's stats snapshots; the other long commands (eval, train, distill) feed it
counts of what they have done. On a terminal it rewrites one line; into a file or pipe it prints a line every
few seconds instead (the commands other than ``run`` show it on terminals only: see commands/arguments.py).
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

BAR_WIDTH = 24


def bar(done: int, total: int) -> str:
    """``[######      ] 12/48  25%``."""
    fraction = min(1.0, done / total)
    return f"[{'#' * round(fraction * BAR_WIDTH):<{BAR_WIDTH}}] {done}/{total} {fraction:4.0%}"


def eta(done: int, total: int, rate: float) -> str:
    return f"ETA {(total - done) / rate if rate > 0 else float('nan'):5.1f}s"


def format_progress(stats: dict[str, Any]) -> str:
    """One human line for a run's stats snapshot."""
    done, total = stats["frames_out"], stats["frame_count"]
    tail = (
        f"{stats['fps_out']:.1f} fps  latency p50 {stats['latency_ms']['p50']:.0f} ms  "
        f"dropped {stats['dropped']}  reconnects {stats['reconnects']}"
    )
    if total:
        return f"{bar(done, total)}  {eta(done, total, stats['fps_out'])}  {tail}"
    return f"{done} frames  {stats['elapsed_s']:.0f}s  {tail}"


def format_count(label: str, done: int, total: int | None, elapsed_s: float, detail: str = "") -> str:
    """One human line for ``done`` of ``total`` steps of a command that has run ``elapsed_s``."""
    rate = done / elapsed_s if elapsed_s > 0 else 0.0
    where = f"{bar(done, total)}  {eta(done, total, rate)}" if total else f"{done}  {elapsed_s:.0f}s"
    return f"{label} {where}" + (f"  {detail}" if detail else "")


class ProgressLine:
    """Rewrites one line on a terminal; into a file or pipe, prints a line every few seconds instead.

    A disabled one (``enabled=False``: not a terminal, or ``--no-progress``) shows nothing, so callers need no
    branch of their own.
    """

    PIPE_INTERVAL_S = 2.0

    def __init__(self, stream: TextIO | None = None, *, enabled: bool = True) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = self.stream.isatty()
        self.started = time.monotonic()
        self.last_printed = -float("inf")
        self.open = False  # a terminal line is showing that the next output must end first

    def update(self, stats: dict[str, Any], *, final: bool = False) -> None:
        """Show a run's stats snapshot."""
        self.show(format_progress(stats), final=final)

    def count(self, label: str, done: int, total: int | None = None, detail: str = "") -> None:
        """Show that ``done`` of ``total`` steps (frames, batches) are done."""
        self.show(format_count(label, done, total, time.monotonic() - self.started, detail))

    def show(self, line: str, *, final: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic() - self.started
        if self.tty:
            self.stream.write("\r\x1b[2K" + line + ("\n" if final else ""))
            self.open = not final
        elif final or now - self.last_printed >= self.PIPE_INTERVAL_S:
            self.last_printed = now
            self.stream.write(line + "\n")
        self.stream.flush()

    def end(self) -> None:
        """Clear a terminal line left showing: the command's summary comes next."""
        if self.open:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self.open = False
