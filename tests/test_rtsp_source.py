"""NetworkSource against a real RTSP server (the GStreamer relay) fed by a real FFmpeg publisher."""

# The relay and publisher fixtures are imported and then named as test parameters, which is what pytest wants.
# ruff: noqa: F811

from __future__ import annotations

import itertools
import logging
import signal
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from rtsp_fixtures import HOST, Publisher, Relay, bgr, free_port, publisher, relay, wait_until  # noqa: F401

from backdrop.errors import ConfigError, SourceError
from backdrop.pixels import I420
from backdrop.stream.config.run import parse_config
from backdrop.stream.sources.network import NetworkSource

pytestmark = pytest.mark.rtsp
STALL_DETECTION_S = 2.0  # the "detected within ~2 s": NetworkSource's default read_timeout_s
EVENT_TIMEOUT_S = 30.0  # how long a test waits for an event before failing: a failure bound, not a measurement


def read_frames(source: NetworkSource, count: int) -> list[np.ndarray]:
    return [bgr(source.read()) for _ in range(count)]


def open_in_background(source: NetworkSource) -> tuple[threading.Thread, list[BaseException]]:
    """Start ``source.open()`` in a thread; the list receives the SourceError it raises, if any."""
    errors: list[BaseException] = []

    def open_source() -> None:
        try:
            source.open()
        except SourceError as e:
            errors.append(e)

    opener = threading.Thread(target=open_source, daemon=True)
    opener.start()
    return opener, errors


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_reads_live_moving_frames(relay: Relay, publisher: Publisher, transport: str) -> None:
    source = NetworkSource(relay.play_url("cam"), transport=transport)
    with source:
        frames = read_frames(source, 20)
        assert source.connected and source.live
        assert source.fps == pytest.approx(30.0)
        assert source.layout == I420  # H.264's own planes, not a BGR conversion of every decoded frame
        # nobody reads now: the receiver keeps only the newest frame and counts the ones it replaced
        wait_until(lambda: source.counters()["dropped"] >= 5, EVENT_TIMEOUT_S, "unread frames to be counted as dropped")
    assert all(frame.shape == (240, 320, 3) and frame.dtype == np.uint8 for frame in frames)
    # testsrc2 moves every frame: a stale or repeated frame would be identical to its predecessor
    assert all(np.any(a != b) for a, b in itertools.pairwise(frames))
    assert source.read() is None  # closed: no more frames, no hang


@pytest.mark.parametrize("fault", ["killed", "frozen"])
def test_detects_dead_or_frozen_publisher_and_resumes(
    relay: Relay, publisher: Publisher, fault: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="backdrop.stream.sources.network")
    source = NetworkSource(relay.play_url("cam"))
    with source:
        read_frames(source, 10)
        # Each read waits for a frame newer than the one before, so the second of these two was delivered after
        # `reading`: the watchdog, which counts from the last frame delivered, cannot fire before reading + 2 s.
        reading = time.monotonic()
        read_frames(source, 2)
        if fault == "killed":
            publisher.kill()
        else:  # the TCP connection stays open but nothing arrives: the case cv2 turns into stale frames
            publisher.process.send_signal(signal.SIGSTOP)
        wait_until(lambda: not source.connected, EVENT_TIMEOUT_S, "the stall to be detected")
        # a real deadline, not a hair trigger (exact whatever the load: a late wake-up only adds to the left side)
        assert time.monotonic() - reading >= STALL_DETECTION_S
        assert "stream lost (no frame for 2.0 s); reconnecting" in caplog.text  # the watchdog, not an EOF

        if fault == "frozen":
            publisher.process.send_signal(signal.SIGCONT)
            publisher.kill()
        restarted = Publisher(relay.publish_url("cam")).start()
        try:
            # counted with the new connection's first frame
            wait_until(lambda: source.reconnects == 1, EVENT_TIMEOUT_S, "the reconnection")
            # the newest frame is the new connection's: it replaced any that arrived just before the stall
            frame = bgr(source.read())
            assert frame.shape == (240, 320, 3)
            assert source.reconnects == source.counters()["reconnects"] == 1
            assert "reconnected after" in caplog.text
        finally:
            restarted.stop()


def test_no_server_at_start_retries_with_backoff_until_it_appears(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="backdrop.stream.sources.network")
    port = free_port()
    source = NetworkSource(f"rtsp://{HOST}:{port}/cam/out", max_backoff_s=1.0, open_retries=20)
    opener, errors = open_in_background(source)
    wait_until(lambda: "retrying in 1.0 s (attempt 3)" in caplog.text, EVENT_TIMEOUT_S, "three connection attempts")
    assert "cannot connect (Connection refused); retrying in 0.5 s (attempt 1)" in caplog.text
    assert "retrying in 1.0 s (attempt 2)" in caplog.text  # doubled, then capped at max_backoff_s
    assert opener.is_alive()

    server = Relay(port=port).start()
    pub = Publisher(server.publish_url("cam")).start()
    try:
        opener.join(EVENT_TIMEOUT_S)
        assert not opener.is_alive() and not errors, "open() did not succeed once the server came up"
        assert bgr(source.read()).shape == (240, 320, 3)
        assert source.reconnects == 0  # never connected before: this is the first connection, not a reconnect
    finally:
        source.close()
        pub.stop()
        server.stop()


def test_close_interrupts_a_pending_open_promptly(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="backdrop.stream.sources.network")
    source = NetworkSource(f"rtsp://{HOST}:{free_port()}/cam/out", open_retries=20)
    opener, errors = open_in_background(source)
    wait_until(lambda: "cannot connect" in caplog.text, EVENT_TIMEOUT_S, "a failed connection attempt")
    source.close()
    # left alone, open() would go on retrying (20 retries, backoff doubling to 10 s) for minutes: it ended because
    # of close(), which is what the error says
    opener.join(EVENT_TIMEOUT_S)
    assert not opener.is_alive(), "open() kept retrying after close()"
    assert errors and "closed before the first frame" in str(errors[0])


def test_credentials_are_masked_in_logs_and_errors(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    source = NetworkSource(f"rtsp://admin:hunter2@{HOST}:{free_port()}/cam/out")
    opener, errors = open_in_background(source)
    wait_until(lambda: "cannot connect" in caplog.text, EVENT_TIMEOUT_S, "a connection failure log line")
    source.close()
    opener.join(EVENT_TIMEOUT_S)
    assert len(errors) == 1 and "hunter2" not in str(errors[0])
    assert source.describe() == f"rtsp://***@{HOST}:{source.url.rsplit(':', 1)[1]}"
    assert "rtsp://***@" in caplog.text
    assert "hunter2" not in caplog.text and "admin" not in caplog.text

    with pytest.raises(SourceError) as error:  # fatal at once: FFmpeg has no such protocol
        NetworkSource("nosuchproto://admin:hunter2@example.invalid/x").open()
    assert "hunter2" not in str(error.value) and "nosuchproto://***@example.invalid/x" in str(error.value)


def test_wrong_credentials_fail_at_once_with_one_masked_line() -> None:
    class RefusingCamera(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(HTTPStatus.UNAUTHORIZED)
            self.send_header("WWW-Authenticate", 'Basic realm="camera"')
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((HOST, 0), RefusingCamera)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        source = NetworkSource(f"http://admin:wrong@{HOST}:{server.server_address[1]}/video.mjpg")
        with pytest.raises(SourceError) as error:
            source.open()  # retrying cannot fix a wrong password: no backoff loop
    finally:
        server.shutdown()
        server.server_close()
    message = str(error.value)
    assert message.startswith(f"cannot open http://***@{HOST}:") and "401 Unauthorized" in message
    assert "wrong" not in message and "\n" not in message


def test_rejects_a_url_that_is_not_a_stream() -> None:
    with pytest.raises(ConfigError, match="not a stream URL"):
        NetworkSource("camera.local/stream")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("transport", "sctp", r"source.transport: must be tcp or udp"),
        ("read_timeout_s", 0, r"source.read_timeout_s: must be in \(0, 3600\]"),
        ("max_backoff_s", -1, r"source.max_backoff_s: must be in \(0, 3600\]"),
        ("open_retries", -1, r"source.open_retries: must be in \[0, 20\]"),
        ("give_up_after_s", 0, r"source.give_up_after_s: must be > 0, or null to retry forever"),
    ],
)
def test_bad_network_settings_are_rejected_once_by_the_config(key: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config({"source": {"uri": "rtsp://cam/x", key: value}})
