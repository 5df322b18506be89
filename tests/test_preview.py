"""The browser preview with real HTTP clients, FFmpeg as an MJPEG reader, and headless Chromium."""

from __future__ import annotations

import http.client
import json
import logging
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import pytest
from cross_site import Post, attack
from rtsp_fixtures import FrameFeeder, bgr, free_port, read_within, wait_until

from backdrop.errors import ConfigError, SinkError
from backdrop.pixels import BGR
from backdrop.stream.config.run import HttpConfig
from backdrop.stream.core.frame import Frame
from backdrop.stream.core.live_controls import ACTIONS, LiveControls
from backdrop.stream.sinks import preview as preview_module
from backdrop.stream.sinks.preview import BOUNDARY, PreviewSink
from backdrop.stream.sources.network import NetworkSource

RED = (0, 0, 220)
BACKDROP = str(Path(sys.executable).with_name("backdrop"))
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=800,600",
]  # fmt: skip


TOKEN = "preview-token-0123456789"
EVENT_TIMEOUT_S = 30.0  # how long a test waits for an event before failing: a failure bound, not a measurement


@contextmanager
def opened(url: str = "http://127.0.0.1:0", http: HttpConfig | None = None) -> Iterator[PreviewSink]:
    sink = PreviewSink(url, http=http)
    sink.open(320, 240, 30.0)
    try:
        yield sink
    finally:
        sink.close()


@pytest.fixture
def preview(monkeypatch: pytest.MonkeyPatch) -> Iterator[PreviewSink]:
    monkeypatch.delenv("BACKDROP_TOKEN", raising=False)
    with opened() as sink:
        yield sink


class MjpegViewer:
    """A raw-socket HTTP client of /stream.mjpg that decodes every part it receives (``reading`` pauses it)."""

    def __init__(self, preview: PreviewSink) -> None:
        self.images: list[np.ndarray] = []
        self.reading = threading.Event()
        self.reading.set()
        self._socket = socket.create_connection((preview.host, preview.port), timeout=10)
        self._socket.sendall(f"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1:{preview.port}\r\n\r\n".encode())
        self._stream = self._socket.makefile("rb")
        status = self._stream.readline()
        headers = self._headers()
        assert status.startswith(b"HTTP/1.0 200") or status.startswith(b"HTTP/1.1 200"), status
        assert headers["content-type"] == f"multipart/x-mixed-replace; boundary={BOUNDARY}"
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _headers(self) -> dict[str, str]:
        headers = {}
        while (line := self._stream.readline().strip()) != b"":
            key, _, value = line.decode().partition(":")
            headers[key.lower()] = value.strip()
        return headers

    def _read(self) -> None:
        try:
            while self._stream.readline():  # the boundary line
                length = self._headers().get("content-length")
                if length is None:
                    return  # the server closed mid-part
                jpeg = self._stream.read(int(length))
                self._stream.readline()
                self.images.append(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR))
                self.reading.wait()
        except (OSError, ValueError):
            pass  # closed by the test or the server

    def close(self) -> None:
        self._socket.shutdown(socket.SHUT_RDWR)  # wakes the reader thread at once
        self.reading.set()
        self._thread.join(5)
        self._stream.close()
        self._socket.close()


def test_two_viewers_at_once_both_receive_live_frames(preview: PreviewSink) -> None:
    with FrameFeeder(preview, 320, 240, bgr=RED):
        viewers = [MjpegViewer(preview), MjpegViewer(preview)]
        try:
            for viewer in viewers:
                wait_until(lambda v=viewer: len(v.images) >= 15, EVENT_TIMEOUT_S, "15 frames at each viewer")
        finally:
            for viewer in viewers:
                viewer.close()
    for viewer in viewers:
        assert viewer.images[-1].shape == (240, 320, 3)
        assert np.median(viewer.images[-1].reshape(-1, 3), axis=0) == pytest.approx(RED, abs=10)
        # the bar moves every frame: consecutive parts are different frames, not repeats
        assert not np.array_equal(viewer.images[-1], viewer.images[-2])


def test_a_stalled_viewer_neither_slows_the_writer_nor_the_other_viewers(preview: PreviewSink) -> None:
    big = np.random.default_rng(1).integers(0, 256, (4, 240, 320, 3), dtype=np.uint8)  # JPEGs that fill buffers
    stalled = MjpegViewer(preview)
    stalled.reading.clear()  # reads one part, then never again: its socket buffers fill up
    healthy = MjpegViewer(preview)
    try:
        with FrameFeeder(preview, 320, 240, fps=60.0, frames=big) as feeder:
            # the writer is not held up: it gets through far more data than the stalled viewer's socket buffers take
            wait_until(lambda: feeder.written >= 240, 2 * EVENT_TIMEOUT_S, "240 frames written")
            received_before = len(healthy.images)
            wait_until(
                lambda: len(healthy.images) >= received_before + 30, EVENT_TIMEOUT_S, "the healthy viewer to go on"
            )
        assert len(stalled.images) <= 2
        assert json.loads(urllib.request.urlopen(preview.url + "stats.json", timeout=5).read())["viewers"] == 2
    finally:
        stalled.close()
        healthy.close()


def gray(level: int) -> np.ndarray:
    """A flat frame whose level survives JPEG, so a decoded frame tells which one it was."""
    return np.full((240, 320, 3), level, np.uint8)


def fetch_frame_level(preview: PreviewSink) -> int:
    jpeg = urllib.request.urlopen(preview.url + "frame.jpg", timeout=5).read()
    return int(np.median(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)))


def test_frame_jpg_is_the_newest_frame_even_when_nobody_watches_the_stream(preview: PreviewSink) -> None:
    levels = iter(range(20, 250, 10))
    for _ in range(3):  # each round: several frames nobody watched, then a snapshot
        for _ in range(4):
            newest = next(levels)
            preview.write(Frame(gray(newest)))
        assert abs(fetch_frame_level(preview) - newest) <= 2
    assert json.loads(urllib.request.urlopen(preview.url + "stats.json", timeout=5).read())["viewers"] == 0


def test_counts_frames_a_stream_viewer_skipped(preview: PreviewSink) -> None:
    preview.write(Frame(gray(10)))
    seq, _ = preview.newer_jpeg(0)
    for level in (20, 30, 40):  # the viewer is busy sending: two of these never reach it
        preview.write(Frame(gray(level)))
    assert preview.newer_jpeg(seq)[0] == seq + 3
    assert preview.counters() == {"dropped": 2}


def test_stats_endpoint_reports_pipeline_stats_and_staleness(
    preview: PreviewSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    def stats() -> dict:
        return json.loads(urllib.request.urlopen(preview.url + "stats.json", timeout=EVENT_TIMEOUT_S).read())

    assert stats()["stalled"] is True  # no frame yet: the page shows its "Reconnecting…" card
    # the stall threshold is a wall-clock age: longer than any pause of a loaded machine while a frame is fresh
    monkeypatch.setattr(preview_module, "STALLED_AFTER_S", 3600.0)
    preview.update_stats({"fps": 29.7, "latency_ms": {"p50": 41.0, "p95": 63.0}, "dropped": 2, "reconnects": 1})
    before_write = time.monotonic()
    preview.write(Frame(np.zeros((240, 320, 3), np.uint8)))
    current = stats()
    asked_within_s = time.monotonic() - before_write
    assert current["fps"] == 29.7 and current["reconnects"] == 1 and current["latency_ms"]["p50"] == 41.0
    assert current["stalled"] is False and 0 <= current["frame_age_s"] <= asked_within_s + 0.001  # this frame's age
    monkeypatch.setattr(preview_module, "STALLED_AFTER_S", 0.05)  # and once no frame came for that long: stalled
    wait_until(lambda: stats()["stalled"] is True, EVENT_TIMEOUT_S, "the frame to count as stale")
    page = urllib.request.urlopen(preview.url, timeout=5).read().decode()
    assert '<img id="stream" src="/stream.mjpg"' in page and "/stats.json" in page


@pytest.mark.timeout(180)  # Chromium gets 120 s of it
@pytest.mark.usefixtures("chromium")
def test_page_shows_the_live_frame_in_headless_chromium(preview: PreviewSink, tmp_path: Path) -> None:
    screenshot = tmp_path / "preview.png"
    preview.update_stats({"fps": 30.0, "latency_ms": {"p50": 40.0, "p95": 60.0}, "dropped": 0, "reconnects": 0})
    with FrameFeeder(preview, 320, 240, bgr=RED):
        subprocess.run(
            [
                "chromium",
                *CHROMIUM_FLAGS,
                f"--user-data-dir={tmp_path / 'profile'}",
                f"--screenshot={screenshot}",
                preview.url,
            ],
            capture_output=True,
            timeout=120,
            check=True,
        )
    shot = cv2.imread(str(screenshot))
    red = np.all(np.abs(shot.astype(int) - RED) <= 12, axis=2)
    # the 320×240 frame is on the page: most of its area shows the frame's red
    assert red.sum() > 0.7 * 320 * 240


@pytest.mark.timeout(120)  # every wait below has its own bound; this one catches a wait that has none
def test_ffmpeg_reads_the_mjpeg_stream_and_reconnects_after_a_preview_restart() -> None:
    port = free_port()
    first = PreviewSink(f"http://127.0.0.1:{port}")
    first.open(320, 240, 30.0)
    with FrameFeeder(first, 320, 240, bgr=RED):
        reader = NetworkSource(f"http://127.0.0.1:{port}/stream.mjpg", max_backoff_s=1.0)
        reader.open()
        assert reader.layout == BGR  # MJPEG's full-range planes are converted, not passed on as I420
        assert np.median(bgr(reader.read()).reshape(-1, 3), axis=0) == pytest.approx(RED, abs=10)
    first.close()
    try:
        wait_until(lambda: not reader.connected, EVENT_TIMEOUT_S, "the reader to notice the preview went away")
        second = PreviewSink(f"http://127.0.0.1:{port}")
        second.open(320, 240, 30.0)
        with second, FrameFeeder(second, 320, 240, bgr=(200, 0, 0)):
            wait_until(lambda: reader.reconnects == 1, EVENT_TIMEOUT_S, "the reader to reconnect")
            # the reconnection counts the new connection's first frame, the newest one now: the second preview's
            frame = bgr(read_within(reader, EVENT_TIMEOUT_S, "a frame from the second preview"))
            assert np.median(frame.reshape(-1, 3), axis=0) == pytest.approx((200, 0, 0), abs=10)
            assert reader.reconnects == 1
    finally:
        reader.close()


def test_binds_loopback_by_default_and_reports_a_busy_port() -> None:
    sink = PreviewSink("http://:0")
    sink.open(64, 48, 30.0)
    try:
        assert sink.host == "127.0.0.1"
        with socket.create_connection(("127.0.0.1", sink.port), timeout=5):
            pass
        busy = PreviewSink(f"http://127.0.0.1:{sink.port}")
        with pytest.raises(SinkError, match=rf"cannot serve the preview on http://127.0.0.1:{sink.port}/: .*in use"):
            busy.open(64, 48, 30.0)
    finally:
        sink.close()


@pytest.mark.parametrize("url", ["https://127.0.0.1:8080", "http://127.0.0.1:8080/live", "http://127.0.0.1:99999"])
def test_rejects_urls_it_cannot_serve(url: str) -> None:
    with pytest.raises(ConfigError):
        PreviewSink(url)


def post(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    """Status and JSON body of a POST (an HTTP error status is returned, not raised)."""
    request = urllib.request.Request(url, method="POST", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, {}


def test_control_endpoints_drive_the_live_controls_and_the_hint_shows(preview: PreviewSink) -> None:
    controls = LiveControls(["color:#00ff00", "color:#0000ff"])
    assert post(preview.url + "control/next-background")[0] == 404  # no controls attached yet
    preview.use_controls(controls)
    assert post(preview.url + "control/next-background") == (200, {"hint": "background 2/2: color:#0000ff"})
    assert controls.state().index == 1
    assert post(preview.url + "control/self-destruct")[0] == 404
    assert post(preview.url + "control/pass-through", {"Origin": "http://example.com"})[0] == 403  # a foreign page
    assert controls.state().pass_through is False
    preview.write(Frame(gray(230)))
    jpeg = urllib.request.urlopen(preview.url + "frame.jpg", timeout=5).read()
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert np.median(image[-20:, :40]) < 100 and np.median(image[:100]) > 200  # the hint box, bottom left only
    page = urllib.request.urlopen(preview.url, timeout=5).read().decode()
    assert all(f'data-action="{action}"' in page for action in ACTIONS)


def test_preview_buttons_change_the_output_of_a_run(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "run.yaml"
    config.write_text('controls: {backgrounds: ["color:#0000ff"]}\n')
    args = ["--config", config, "--source", "testsrc:320x240@30,live", "--background", "color:#00ff00"]
    run = subprocess.Popen(
        [BACKDROP, "run", *map(str, args), "--output", f"http://127.0.0.1:{port}", "--no-progress"],
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/"

    def frame() -> tuple[int, ...]:
        jpeg = urllib.request.urlopen(url + "frame.jpg", timeout=5).read()
        image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        return tuple(int(v) for v in np.median(image[: image.shape[0] // 2].reshape(-1, 3), axis=0))

    def near(bgr: tuple[int, ...], want: tuple[int, int, int]) -> bool:
        return all(abs(a - b) <= 12 for a, b in zip(bgr, want, strict=True))

    def serving() -> bool:
        try:
            return near(frame(), (0, 255, 0))
        except OSError:
            assert run.poll() is None, run.stderr.read()
            return False

    try:
        wait_until(serving, 2 * EVENT_TIMEOUT_S, "the green background at /frame.jpg")
        assert post(url + "control/pass-through")[0] == 200
        wait_until(lambda: not near(frame(), (0, 255, 0)), EVENT_TIMEOUT_S, "pass-through (the source's own picture)")
        post(url + "control/pass-through")
        post(url + "control/next-background")
        wait_until(lambda: near(frame(), (255, 0, 0)), EVENT_TIMEOUT_S, "the next background (blue)")
    finally:
        run.send_signal(signal.SIGINT)
        _, stderr = run.communicate(timeout=10)
    assert run.returncode == 130, stderr
    assert "backdrop: background 2/2: color:#0000ff" in stderr


# -- who the preview answers (stream/web/guard.py) and how many at once -----------------------------------------


def request(sink: PreviewSink, method: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    """Status and headers of one request (redirects are not followed; a given Host replaces the real one)."""
    connection = http.client.HTTPConnection(sink.host, sink.port, timeout=10)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response.status, {key.lower(): value for key, value in response.getheaders()}
    finally:
        connection.close()


def test_requests_naming_another_host_are_refused_and_the_own_names_work(preview: PreviewSink) -> None:
    controls = LiveControls(["color:#00ff00", "color:#0000ff"])
    preview.use_controls(controls)
    preview.write(Frame(gray(100)))
    for path in ("/", "/frame.jpg", "/stats.json", "/stream.mjpg"):  # a DNS-rebinding page reading the camera
        assert request(preview, "GET", path, {"Host": "evil.example"})[0] == 421, path
    rebound = {"Host": "evil.example", "Origin": "http://evil.example"}  # that page's same-origin fetch
    assert request(preview, "POST", "/control/next-background", rebound)[0] == 421
    assert controls.state().index == 0
    for host in (f"127.0.0.1:{preview.port}", f"localhost:{preview.port}"):
        assert request(preview, "GET", "/frame.jpg", {"Host": host})[0] == 200, host
    own_page = {"Origin": f"http://127.0.0.1:{preview.port}", "Sec-Fetch-Site": "same-origin"}  # the page's buttons
    assert request(preview, "POST", "/control/next-background", own_page)[0] == 200
    assert controls.state().index == 1


def test_a_name_in_http_allowed_hosts_is_answered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BACKDROP_TOKEN", raising=False)
    with opened(http=HttpConfig(allowed_hosts=("studio.lan",))) as sink:
        assert request(sink, "GET", "/stats.json", {"Host": f"studio.lan:{sink.port}"})[0] == 200
        assert request(sink, "GET", "/stats.json", {"Host": "other.lan"})[0] == 421


@pytest.mark.usefixtures("chromium")
def test_a_page_of_another_origin_cannot_drive_the_controls(
    preview: PreviewSink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="backdrop")
    controls = LiveControls(["color:#00ff00", "color:#0000ff"])
    preview.use_controls(controls)
    attack([Post(preview.url + "control/next-background", {}), Post(preview.url + "control/pass-through", {})])
    assert controls.state().index == 0 and controls.state().pass_through is False
    refused = [r.getMessage() for r in caplog.records if '"POST /control/' in r.getMessage()]
    assert len(refused) == 4 and all('" 403 ' in line for line in refused), refused  # fetch and form, each refused


def test_a_token_when_set_is_required_and_a_browser_gets_it_once_by_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKDROP_TOKEN", TOKEN)
    with opened() as sink:
        sink.write(Frame(gray(100)))
        assert request(sink, "GET", "/frame.jpg")[0] == 401
        assert request(sink, "GET", "/frame.jpg", {"Authorization": f"Bearer {TOKEN}"})[0] == 200
        status, headers = request(sink, "GET", f"/frame.jpg?token={TOKEN}")
        assert status == 303 and headers["location"] == "/frame.jpg"
        cookie = headers["set-cookie"].split(";", 1)[0]
        assert request(sink, "GET", "/frame.jpg", {"Cookie": cookie})[0] == 200


def test_a_preview_beyond_loopback_without_a_token_fails_to_open_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BACKDROP_TOKEN", raising=False)
    sink = PreviewSink("http://0.0.0.0:0")
    with pytest.raises(ConfigError, match=r"preview http://0\.0\.0\.0:0/: .* needs a token: set http.token_file") as e:
        sink.open(64, 48, 30.0)
    assert "\n" not in str(e.value)
    sink.close()


def test_idle_connections_over_the_cap_keep_no_viewer_out_once_their_deadline_passes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("BACKDROP_TOKEN", raising=False)
    monkeypatch.setattr(preview_module, "MAX_HANDLERS", 4)
    # the six connections must all be accepted before the first four time out: a deadline that a loaded machine's
    # accept loop cannot overrun, yet short enough to wait for
    monkeypatch.setattr(preview_module, "REQUEST_TIMEOUT_S", 3.0)
    with opened() as sink:
        idle = [socket.create_connection(("127.0.0.1", sink.port), timeout=EVENT_TIMEOUT_S) for _ in range(6)]
        try:
            answers = [connection.recv(64) for connection in idle]
        finally:
            for connection in idle:
                connection.close()
        assert answers.count(b"") == 4  # the first four were served, and closed at their deadline
        assert all(answer.startswith(b"HTTP/1.0 503") for answer in answers[4:])  # over the cap: 503 at once
        wait_until(lambda: request(sink, "GET", "/stats.json")[0] == 200, EVENT_TIMEOUT_S, "a free handler")
        MjpegViewer(sink).close()  # a viewer gets in


def test_client_mistakes_get_an_answer_and_leave_no_traceback(
    preview: PreviewSink, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG, logger="backdrop")

    def raw(data: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", preview.port), timeout=5) as connection:
            connection.sendall(data)
            return connection.recv(64)

    assert raw(b"GET /a b HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.0 400")  # a space in the path
    assert raw(b"GET / HTTP/1.1\r\n" + b"X-Many: 1\r\n" * 101).startswith(b"HTTP/1.0 431")  # over the header limit
    with socket.create_connection(("127.0.0.1", preview.port), timeout=5) as connection:  # hangs up mid-headers
        connection.sendall(b"GET /stats.json HTTP/1.1\r\nHost: 127")
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close sends RST
    wait_until(
        lambda: any("reset" in r.getMessage() for r in caplog.records), EVENT_TIMEOUT_S, "a debug line for the reset"
    )
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert "Traceback" not in capfd.readouterr().err
