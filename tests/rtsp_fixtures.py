"""Real processes for the streaming tests: the GStreamer RTSP relay, an FFmpeg publisher, and line watchers.

Everything waits on output lines or conditions with a deadline; nothing sleeps.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from backdrop.benchmarks.rtsp_servers import HOST, LineWatcher, Publisher, Relay, relay_available, stop_process
from backdrop.pixels import to_bgr
from backdrop.stream.core.frame import Frame
from backdrop.stream.sinks.base import Sink
from backdrop.stream.sources.base import Source

REPO = Path(__file__).resolve().parents[1]


class BackdropProcess:
    """``backdrop ARGS…`` as a child process, its stderr collected line by line."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "backdrop.cli", *args],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stderr = LineWatcher(self.process.stderr)

    def wait(self, timeout: float) -> int:
        """The exit code; fails the test, with the collected stderr, if it is still running after ``timeout``."""
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            stop_process(self.process)
            pytest.fail(f"backdrop still running after {timeout} s; stderr:\n{self.stderr.text()}")
        self.stderr.join(5)
        return code

    def stop(self) -> None:
        stop_process(self.process)


def bgr(frame: Frame) -> np.ndarray:
    """A frame's picture in BGR, whatever layout its source delivers (network sources: I420 when they can)."""
    return to_bgr(frame.image, frame.layout)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll ``predicate`` until it holds; fail the test naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    idle = threading.Event()
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.1f} s waiting for {what}")
        idle.wait(interval)


def read_within(source: Source, timeout: float, what: str) -> Frame:
    """``source.read()`` on a helper thread; fails the test naming ``what`` if no frame came within ``timeout`` s.

    A live source's read blocks for as long as the stream is away: bounded here, so a stream that never comes
    back fails this test instead of stalling the suite (the caller closes the source, which ends the read).
    """
    frames: list[Frame | None] = []
    reader = threading.Thread(target=lambda: frames.append(source.read()), name="read-within", daemon=True)
    reader.start()
    reader.join(timeout)
    if reader.is_alive():
        pytest.fail(f"timed out after {timeout:.1f} s waiting for {what}")
    if frames[0] is None:
        pytest.fail(f"the source ended while waiting for {what}")
    return frames[0]


def free_port() -> int:
    """A local port nothing listens on (bound, then released), for servers that must come and go."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def moving_bar_frame(index: int, width: int, height: int, bgr: tuple[int, int, int]) -> np.ndarray:
    """A solid colour with a white bar that moves every frame, so stale frames are detectable."""
    image = np.empty((height, width, 3), np.uint8)
    image[:] = bgr
    x = (index * 4) % max(1, width - 16)
    image[:, x : x + 16] = 255
    return image


class FrameFeeder:
    """Writes frames to a sink at ``fps`` from a thread, like a live pipeline, until stopped.

    By default each frame is ``moving_bar_frame`` in colour ``bgr``; ``frames`` cycles through given images instead.
    """

    def __init__(
        self,
        sink: Sink,
        width: int,
        height: int,
        fps: float = 30.0,
        bgr: tuple[int, int, int] = (0, 200, 0),
        frames: np.ndarray | None = None,
    ) -> None:
        self.written = 0
        self._sink = sink
        self._period = 1.0 / fps
        self._frames = frames
        self._geometry = (width, height, bgr)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._feed, daemon=True)

    def _frame(self, index: int) -> np.ndarray:
        if self._frames is not None:
            return self._frames[index % len(self._frames)]
        return moving_bar_frame(index, *self._geometry)

    def _feed(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            self._sink.write(Frame(self._frame(self.written)))
            self.written += 1
            next_at += self._period
            self._stop.wait(max(0.0, next_at - time.monotonic()))  # pacing, like a camera

    def __enter__(self) -> FrameFeeder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.fixture
def relay() -> Iterator[Relay]:
    if not relay_available():
        pytest.fail("GStreamer RTSP server missing: run `make system-deps` (`make test` does)")
    server = Relay().start()
    yield server
    server.stop()


@pytest.fixture
def publisher(relay: Relay) -> Iterator[Publisher]:
    """A running 320x240@30 publisher on the relay's ``cam`` stream."""
    pub = Publisher(relay.publish_url("cam")).start()
    relay.wait_receiving("cam")
    yield pub
    pub.stop()
