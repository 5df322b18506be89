"""A stopped run ends in seconds even when an output or a thread is stuck in a call that never returns."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from pathlib import Path

from clips import decode
from test_cli_run import finish, start, wait_for_frames

from backdrop.benchmarks.rtsp_servers import stop_process
from backdrop.stream.core.pipeline import STOP_GRACE_S

EXIT_BUDGET_S = 5.0  # from the first signal to the process's exit: the README's promise, a bound that stays

# A Python API run with an output that blocks forever (like a GUI toolkit's imshow or a network write to a
# peer that stopped reading) once the video file beside it has a frame; the CLI's signal handling.
STUCK_RUN = """
import sys
import threading

from backdrop.model.segmenter import load_segmenter
from backdrop.stream.compositing.backgrounds import parse_background
from backdrop.stream.core.pipeline import Pipeline
from backdrop.commands.run import signal_exit_code, stop_on_signals
from backdrop.stream.sinks.base import Sink
from backdrop.stream.sinks.video_file import VideoFileSink
from backdrop.stream.sources.testsrc import TestSource


class StuckSink(Sink):
    def __init__(self, beside):
        self.beside = beside

    def open(self, width, height, fps):
        pass

    def write(self, frame):
        if self.beside.frames:  # the video file has a frame to keep
            print("blocked", file=sys.stderr, flush=True)
            threading.Event().wait()

    def close(self):
        pass


with TestSource(320, 240, fps=30, live=True) as source, load_segmenter("general", "onnxruntime", threads=1) as model:
    video = VideoFileSink(sys.argv[1])
    sinks = [video, StuckSink(video)]
    pipeline = Pipeline(source, model, parse_background("blur:9"), sinks)
    with stop_on_signals(pipeline) as received:
        stats = pipeline.run()
print("unfinished:", *stats["unfinished"], file=sys.stderr, flush=True)
sys.exit(signal_exit_code(received[0]) if received else 0)
"""

# The CLI while some other part of the program left a non-daemon thread stuck: exiting would wait for it.
STUCK_THREAD = """
import sys
import threading

threading.Thread(target=threading.Event().wait, name="stuck").start()
from backdrop.cli import main

sys.argv = ["backdrop", *sys.argv[1:]]
sys.exit(main())
"""


def stop_stuck_run(tmp_path: Path, *signals: int) -> tuple[int, float, list[str]]:
    """Start STUCK_RUN, send ``signals`` once its output is stuck: (exit code, seconds to exit, stderr lines)."""
    script = tmp_path / "stuck_run.py"
    script.write_text(STUCK_RUN)
    process, stderr = start(sys.executable, script, tmp_path / "out.mp4")
    try:
        stderr.wait_for("blocked", timeout=60)
        sent = time.monotonic()
        for signum in signals:
            process.send_signal(signum)
        exited_after_s = exit_time(process, sent)
        lines = finish(process, stderr, timeout=30)
    finally:
        stop_process(process)
    return process.returncode, exited_after_s, lines


def exit_time(process: subprocess.Popen[str], since: float) -> float:
    """Seconds from ``since`` to the process's exit (not to the end of its stderr, which ``finish`` reads)."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(30)  # past that, finish() fails the test
    return time.monotonic() - since


def test_a_stuck_output_cannot_keep_a_stopped_run_alive(tmp_path: Path) -> None:
    code, seconds, lines = stop_stuck_run(tmp_path, signal.SIGTERM)
    assert code == 143, lines
    assert seconds < EXIT_BUDGET_S, f"exited {seconds:.1f} s after SIGTERM"
    assert "unfinished: StuckSink" in lines  # named, not silently lost
    assert len(decode(tmp_path / "out.mp4")) >= 1  # the file beside it was still finished


def test_a_second_signal_does_not_wait_for_the_grace(tmp_path: Path) -> None:
    code, seconds, lines = stop_stuck_run(tmp_path, signal.SIGINT, signal.SIGTERM)
    assert code == 130, lines
    assert seconds < STOP_GRACE_S, f"exited {seconds:.1f} s after the signals"
    assert len(decode(tmp_path / "out.mp4")) >= 1


def test_a_stuck_thread_cannot_keep_the_cli_from_exiting(tmp_path: Path) -> None:
    script = tmp_path / "stuck_thread.py"
    script.write_text(STUCK_THREAD)
    video = tmp_path / "out.mp4"
    process, stderr = start(
        sys.executable, script, "run", "--source", "testsrc:320x240@30,live", "--output", video,
        "--runtime", "onnxruntime",
    )  # fmt: skip
    try:
        wait_for_frames(stderr)
        sent = time.monotonic()
        process.send_signal(signal.SIGTERM)
        exited_after_s = exit_time(process, sent)
        lines = finish(process, stderr, timeout=30)
    finally:
        stop_process(process)
    assert exited_after_s < EXIT_BUDGET_S, f"exited {exited_after_s:.1f} s after SIGTERM"
    assert process.returncode == 143, lines
    assert lines[-1].startswith("backdrop: stopped by SIGTERM after ")
    assert len(decode(video)) >= 1
