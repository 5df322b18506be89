"""RtspSink publishing to a real RTSP server (the GStreamer relay), read back with ffprobe and PyAV."""

# The relay fixture is imported and then named as a test parameter, which is what pytest wants.
# ruff: noqa: F811

from __future__ import annotations

import json
import logging
import signal
import subprocess
import time

import numpy as np
import pytest
from rtsp_fixtures import HOST, FrameFeeder, Relay, bgr, free_port, read_within, relay, wait_until  # noqa: F401

from backdrop.errors import ConfigError, SinkError
from backdrop.stream.sinks.rtsp import RtspSink
from backdrop.stream.sources.network import NetworkSource

pytestmark = pytest.mark.rtsp
GREEN = (0, 200, 0)
EVENT_TIMEOUT_S = 30.0  # how long a test waits for an event before failing: a failure bound, not a measurement


def probe(url: str, packets: int = 60) -> dict:
    """ffprobe's view of the published stream: codec, size and frames decoded from its first ``packets`` packets
    (counted, not timed: the stream's timestamps are the publisher's clock, slow on a loaded machine)."""
    result = subprocess.run(
        [
            "ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-select_streams", "v:0",
            "-read_intervals", f"%+#{packets}", "-count_frames",
            "-show_entries", "stream=codec_name,width,height,nb_read_frames", "-of", "json", url,
        ],
        capture_output=True, text=True, timeout=2 * EVENT_TIMEOUT_S, check=True,
    )  # fmt: skip
    return json.loads(result.stdout)["streams"][0]


def read_back(url: str, count: int) -> tuple[list[np.ndarray], float]:
    """``count`` frames decoded from ``url`` and the frame rate the stream declares."""
    with NetworkSource(url) as reader:
        frames = [bgr(read_within(reader, EVENT_TIMEOUT_S, f"frames from {url}")) for _ in range(count)]
        return frames, reader.fps


def test_publishes_h264_at_the_source_rate(relay: Relay) -> None:
    sink = RtspSink(relay.publish_url("out"))
    sink.open(320, 240, 30.0)
    with sink, FrameFeeder(sink, 320, 240, bgr=GREEN):
        relay.wait_receiving("out")
        stream = probe(relay.play_url("out"))
        frames, fps = read_back(relay.play_url("out"), 10)
        assert sink.connected and sink.reconnects == 0
    assert (stream["codec_name"], stream["width"], stream["height"]) == ("h264", 320, 240)
    assert fps == 30.0
    assert int(stream["nb_read_frames"]) >= 30  # 60 packets, less those before the first keyframe (one a second)
    for frame in frames:
        background = np.delete(frame, np.s_[frame.shape[1] // 2 - 20 :], axis=1)  # left part, mostly away from bar
        assert np.median(background.reshape(-1, 3), axis=0) == pytest.approx(GREEN, abs=12)


def test_opening_twice_is_an_error_not_a_second_interleaved_publisher(relay: Relay) -> None:
    sink = RtspSink(relay.publish_url("out"))
    sink.open(320, 240, 30.0)
    try:
        with pytest.raises(SinkError, match="already open"):
            sink.open(320, 240, 30.0)
    finally:
        sink.close()


def test_odd_frame_sizes_are_published_at_the_nearest_even_size(relay: Relay) -> None:
    sink = RtspSink(relay.publish_url("out"))
    sink.open(321, 241, 25.0)
    with sink, FrameFeeder(sink, 321, 241, fps=25.0):
        relay.wait_receiving("out")
        (frame,), _ = read_back(relay.play_url("out"), 1)
    assert frame.shape == (240, 320, 3)


def test_republishes_when_the_server_comes_back(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="backdrop.stream.sinks.rtsp")
    first = Relay(port=free_port()).start()
    sink = RtspSink(first.publish_url("out"), max_backoff_s=1.0)
    sink.open(320, 240, 30.0)
    with sink, FrameFeeder(sink, 320, 240) as feeder:
        first.wait_receiving("out")
        first.stop()
        wait_until(lambda: not sink.connected, EVENT_TIMEOUT_S, "the sink to notice the server is gone")
        assert "connection lost" in caplog.text
        # the writer never stalls while the server is away: a second of frames goes in meanwhile
        written_while_down = feeder.written
        wait_until(lambda: feeder.written >= written_while_down + 30, EVENT_TIMEOUT_S, "frames during the outage")
        assert not sink.connected
        second = Relay(port=first.port).start()
        try:
            second.wait_receiving("out", timeout=EVENT_TIMEOUT_S)  # it retries (backoff capped at 1 s)
            assert len(read_back(second.play_url("out"), 5)[0]) == 5
        finally:
            second.stop()
        assert sink.reconnects == 1 and "reconnected (reconnect 1)" in caplog.text
        counters = sink.counters()
        assert counters["dropped"] > 0 and counters["reconnects"] == 1  # outage frames were dropped, not queued


def test_close_returns_even_when_the_server_hangs(relay: Relay) -> None:
    sink = RtspSink(relay.publish_url("out"), timeout_s=2.0)
    sink.open(640, 360, 30.0)
    noise = np.random.default_rng(0).integers(0, 256, (8, 360, 640, 3), dtype=np.uint8)  # ~300 kB a frame in H.264
    relay.process.send_signal(signal.SIGSTOP)  # the server stops reading: the socket buffers fill, sends block
    try:
        with FrameFeeder(sink, 640, 360, frames=noise) as feeder:
            wait_until(lambda: feeder.written >= 60, EVENT_TIMEOUT_S, "two seconds of frames")
        started = time.monotonic()
        sink.close()
        assert time.monotonic() - started < sink.timeout_s + 2.0  # the publisher thread is abandoned, not awaited
    finally:
        relay.process.send_signal(signal.SIGCONT)


def test_open_fails_at_once_with_a_masked_one_line_error() -> None:
    sink = RtspSink(f"rtsp://admin:hunter2@{HOST}:{free_port()}/out/in")
    started = time.monotonic()
    with pytest.raises(SinkError) as error:
        sink.open(320, 240, 30.0)
    message = str(error.value)
    assert time.monotonic() - started < 5.0
    assert message.startswith(f"cannot publish to rtsp://***@{HOST}:") and "Connection refused" in message
    assert "hunter2" not in message and "\n" not in message


def test_rejects_a_url_that_is_not_rtsp() -> None:
    with pytest.raises(ConfigError, match="not an RTSP URL"):
        RtspSink("http://127.0.0.1:8554/out")
