"""How a network source starts and ends: a bad URL fails fast, a file over HTTP plays once, a long outage ends.

Real servers on 127.0.0.1 only: Python's HTTP server for files, pages and 404s, the GStreamer relay for RTSP,
and the browser preview as a live MJPEG stream that can be taken away.
"""

# The relay fixture is imported and then named as a test parameter, which is what pytest wants.
# ruff: noqa: F811

from __future__ import annotations

import functools
import logging
import re
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from clips import error_lines, run_cli
from rtsp_fixtures import HOST, FrameFeeder, Relay, bgr, free_port, relay  # noqa: F401

from backdrop.errors import SourceError
from backdrop.stream.core.backoff import Backoff
from backdrop.stream.sinks.preview import PreviewSink
from backdrop.stream.sources.demo_clip import read_stamp, write_clip
from backdrop.stream.sources.network import NetworkSource

QUICK = {"open_timeout_s": 1.0, "read_timeout_s": 1.0}
CLIP_FRAMES = 24
# every attempt is bounded by open + read timeout; the two retries wait 0.5 s and 1 s
OPEN_BOUND_S = 3 * (QUICK["open_timeout_s"] + QUICK["read_timeout_s"]) + 1.5 + 1.0


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[str]:
    """A plain HTTP server on a folder holding ``clip.mp4`` (frames stamped 0, 1, 2 …) and ``page.html``."""
    write_clip(tmp_path / "clip.mp4", width=320, height=180, frames=CLIP_FRAMES, with_stamp=True)
    (tmp_path / "page.html").write_text("<!doctype html><html><body><p>not a video</p></body></html>")
    server = ThreadingHTTPServer((HOST, 0), functools.partial(QuietHandler, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://{HOST}:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def open_error(url: str, **kwargs: object) -> tuple[str, float]:
    """The SourceError message ``open()`` raises for ``url``, and how long it took."""
    source = NetworkSource(url, **QUICK, **kwargs)
    started = time.monotonic()
    with pytest.raises(SourceError) as error:
        source.open()
    return str(error.value), time.monotonic() - started


@pytest.mark.parametrize("retries", [0, 2])
def test_a_closed_port_fails_after_the_quick_retries(retries: int, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="backdrop.stream.sources.network")
    url = f"rtsp://admin:hunter2@{HOST}:{free_port()}/cam/out"
    message, took = open_error(url, open_retries=retries)
    assert message == f"cannot open {url.replace('admin:hunter2', '***')}: Connection refused"
    assert caplog.text.count("retrying in") == retries
    assert took < OPEN_BOUND_S


def test_an_rtsp_path_nobody_publishes_fails(relay: Relay) -> None:
    message, took = open_error(relay.play_url("cam"))
    assert message.startswith(f"cannot open {relay.play_url('cam')}: ") and "\n" not in message
    assert took < OPEN_BOUND_S


@pytest.mark.parametrize(
    ("path", "reason"),
    [("missing.mp4", "Server returned 404 Not Found"), ("page.html", "Invalid data found when processing input")],
)
def test_an_http_url_that_is_no_video_fails(http_root: str, path: str, reason: str) -> None:
    message, took = open_error(f"{http_root}/{path}")
    assert message == f"cannot open {http_root}/{path}: {reason}"
    assert took < OPEN_BOUND_S


def test_a_file_over_http_plays_every_frame_once_then_ends(http_root: str) -> None:
    with NetworkSource(f"{http_root}/clip.mp4", **QUICK) as source:
        assert source.live is False  # known after open, before the first read: the pipeline applies backpressure
        assert source.fps == pytest.approx(30.0)
        frames = []
        while (frame := source.read()) is not None:
            frames.append(bgr(frame))
        assert source.read() is None
    assert [read_stamp(frame) for frame in frames] == list(range(CLIP_FRAMES))
    assert frames[0].shape == (180, 320, 3)


@pytest.mark.timeout(60)  # a source that never gives up would block the read below: fail, do not stall the suite
def test_an_outage_longer_than_give_up_after_s_ends_reading() -> None:
    give_up_after_s, open_timeout_s, read_timeout_s = 1.5, 1.0, 0.5
    preview = PreviewSink(f"http://{HOST}:0")
    preview.open(160, 120, 30.0)
    source = NetworkSource(
        f"http://{HOST}:{preview.port}/stream.mjpg",
        open_timeout_s=open_timeout_s,
        read_timeout_s=read_timeout_s,
        give_up_after_s=give_up_after_s,
    )
    try:
        with FrameFeeder(preview, 160, 120):
            source.open()
            assert source.live and bgr(source.read()).shape == (120, 160, 3)
        preview.close()
        with pytest.raises(SourceError, match=r"/stream\.mjpg: gave up after \d+\.\d s without a frame \(") as error:
            while source.read() is not None:  # frames still in flight when the preview closed
                pass
        assert "\n" not in str(error.value)
    finally:
        source.close()
        preview.close()
    # The outage as the source itself measured it, from losing the stream to giving up: not before
    # give_up_after_s, and after at most one more attempt, at the deadline, bounded by its own timeouts.
    outage_s = float(re.search(r"gave up after (\d+\.\d) s", str(error.value)).group(1))
    assert give_up_after_s <= outage_s <= give_up_after_s + open_timeout_s + read_timeout_s + 1.0, outage_s


def test_the_cli_reports_a_missing_file_over_http_in_one_line(
    http_root: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, stderr = run_cli(capsys, "run", "--source", f"{http_root}/missing.mp4", "--output", "null")
    assert code == 2
    assert error_lines(stderr) == [
        f"backdrop: error: cannot open {http_root}/missing.mp4: Server returned 404 Not Found"
    ]


@pytest.mark.parametrize(
    ("max_s", "delays"),
    [(10.0, [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]), (1.0, [0.5, 1.0, 1.0])],
)
def test_backoff_doubles_up_to_its_cap_and_starts_over_after_reset(max_s: float, delays: list[float]) -> None:
    backoff = Backoff(max_s=max_s)
    assert [backoff.next_delay() for _ in delays] == delays
    assert backoff.failures == len(delays)
    backoff.failures = 5000  # days of retries: no float overflow
    assert backoff.next_delay() == max_s
    backoff.reset()
    assert backoff.next_delay() == 0.5
