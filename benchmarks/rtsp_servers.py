"""Real RTSP servers and publishers on this machine: the GStreamer relay, an FFmpeg publisher, line watchers.

Used by the RTSP latency benchmark and by the tests. The relay (``gst_rtsp_relay.py``, beside this file) runs
under Debian's ``/usr/bin/python3``, which has GStreamer's Python bindings. Everything waits on output lines
with a deadline; nothing sleeps.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

SYSTEM_PYTHON = "/usr/bin/python3"
RELAY_SCRIPT = Path(__file__).with_name("gst_rtsp_relay.py")
HOST = "127.0.0.1"
T = TypeVar("T")


class LineWatcher:
    """Collects a text stream's lines, with when each arrived, in a thread so tests can wait for one with a deadline."""

    def __init__(self, stream) -> None:
        self.lines: list[str] = []
        self.received: list[float] = []  # time.monotonic() when each line arrived
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._collect, args=(stream,), daemon=True)
        self._thread.start()

    def _collect(self, stream) -> None:
        for line in stream:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self.received.append(time.monotonic())
                self._changed.notify_all()

    def wait_for(self, needle: str, timeout: float, occurrences: int = 1) -> str:
        """Block until ``needle`` has appeared ``occurrences`` times; return the last matching line."""

        def pick() -> str | None:
            matches = [line for line in self.lines if needle in line]
            return matches[-1] if len(matches) >= occurrences else None

        return self._wait(pick, f"{needle!r} not seen {occurrences}x", timeout)

    def wait_after(self, needle: str, since: float, timeout: float) -> tuple[float, str]:
        """Block until a line with ``needle`` arrives after ``since`` (time.monotonic()); return it with its time."""

        def pick() -> tuple[float, str] | None:
            arrived = zip(self.received, self.lines, strict=True)
            return next(((at, line) for at, line in arrived if at > since and needle in line), None)

        return self._wait(pick, f"no {needle!r} after {since:.1f}", timeout)

    def _wait(self, pick: Callable[[], T | None], failure: str, timeout: float) -> T:
        """``pick()``'s first answer other than None, checked as lines arrive; TimeoutError after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while (found := pick()) is None:
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    raise TimeoutError(f"{failure} within {timeout:.1f} s; output:\n" + self.text())
                self._changed.wait(min(left, 0.5))
            return found

    def text(self) -> str:
        with self._changed:
            return "\n".join(self.lines[-60:])

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


def stop_process(process: subprocess.Popen, timeout: float = 5.0) -> None:
    """Terminate a child we started, escalating to kill if it does not exit in time."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)


def relay_available() -> bool:
    probe = "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"
    try:
        return subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class Relay:
    """The GStreamer relay as a child process: publishers RECORD to ``NAME/in``, readers PLAY ``NAME/out``."""

    def __init__(self, streams: tuple[str, ...] = ("cam", "out"), port: int = 0) -> None:
        self.streams = streams
        self.port = port
        self.process: subprocess.Popen | None = None
        self.output: LineWatcher | None = None

    def start(self) -> Relay:
        self.process = subprocess.Popen(
            [SYSTEM_PYTHON, str(RELAY_SCRIPT), *self.streams, "--host", HOST, "--port", str(self.port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output = LineWatcher(self.process.stdout)
        self.port = int(self.output.wait_for("READY", timeout=30).split()[1])
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
        if self.output is not None:
            self.output.join(5)

    def publish_url(self, name: str) -> str:
        return f"rtsp://{HOST}:{self.port}/{name}/in"

    def play_url(self, name: str) -> str:
        return f"rtsp://{HOST}:{self.port}/{name}/out"

    def wait_receiving(self, name: str, timeout: float = 20, occurrences: int = 1) -> None:
        """Block until the relay has received the ``occurrences``-th publisher's first access unit on ``name``."""
        if self.output is None:
            raise RuntimeError("the relay is not started")
        self.output.wait_for(f"RECEIVING {name}", timeout, occurrences)

    def units_received(self, name: str) -> int:
        """Access units the stopped relay passed on for ``name`` (what its publishers sent, less repeats)."""
        if self.output is None:
            raise RuntimeError("the relay is not started")
        return int(self.output.wait_for(f"RECEIVED {name} ", timeout=5).split()[2])


class Publisher:
    """An FFmpeg process publishing H.264 to an RTSP URL in real time: a moving test pattern, or ``clip`` looped.

    ``copy`` sends ``clip``'s own H.264 packets (no B-frames, keyframes often) without re-encoding them, so a
    benchmark's cameras cost the machine almost nothing; otherwise every frame is encoded live.
    """

    def __init__(
        self,
        url: str,
        *,
        size: str = "320x240",
        fps: int = 30,
        gop: int = 15,
        clip: Path | None = None,
        copy: bool = False,
    ) -> None:
        if clip is None:
            source = ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}"]
        else:
            source = ["-stream_loop", "-1", "-i", str(clip)]
        encode = ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", str(gop), "-bf", "0",
                  "-pix_fmt", "yuv420p"]  # fmt: skip
        self.command = [
            "ffmpeg", "-hide_banner", "-loglevel", "error", "-re", *source,
            *(["-c:v", "copy"] if copy and clip is not None else encode),
            "-f", "rtsp", "-rtsp_transport", "tcp", url,
        ]  # fmt: skip
        self.process: subprocess.Popen | None = None

    def start(self) -> Publisher:
        self.process = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        return self

    def kill(self) -> None:
        """Kill without warning, like a camera losing power."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
