"""``backdrop run`` end to end on live streams: RTSP camera in, RTSP out, faults, Ctrl-C, browser preview."""

# The relay fixture is imported and then named as a test parameter, which is what pytest wants.
# ruff: noqa: F811

from __future__ import annotations

import json
import signal
import subprocess
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
from rtsp_fixtures import (  # noqa: F401
    HOST,
    BackdropProcess,
    Publisher,
    Relay,
    bgr,
    free_port,
    read_within,
    relay,
    wait_until,
)

from backdrop.stream.sources.network import NetworkSource

GREEN_BACKGROUND = "color:#00ff00"
EVENT_TIMEOUT_S = 30.0  # how long a test waits for an event before failing: a failure bound, not a measurement
# More frames than a run can hold between its source and a reader of its RTSP output (four-frame queues between
# five stages, the output's own slot, the relay, the reader's slot): read after the source is back, the last of
# this many frames is one the run made from the new connection.
IN_FLIGHT_FRAMES = 32


class Backdrop(BackdropProcess):
    """``backdrop run …`` as a child process."""

    def __init__(self, *args: str) -> None:
        super().__init__("run", "--no-progress", *args)


def green_share(image: np.ndarray) -> float:
    """The fraction of pixels that are the replacement background's pure green."""
    b, g, r = (image[..., i].astype(int) for i in range(3))
    return float(np.mean((g > 200) & (b < 60) & (r < 60)))


@pytest.mark.slow
@pytest.mark.rtsp
def test_rtsp_in_process_rtsp_out_with_a_publisher_outage(relay: Relay, stamped_clip: Path, tmp_path: Path) -> None:
    stats_path = tmp_path / "stats.json"
    publisher = Publisher(relay.publish_url("cam"), clip=stamped_clip).start()
    relay.wait_receiving("cam")
    run = Backdrop(
        "--source", relay.play_url("cam"), "--output", relay.publish_url("out"), "--background", GREEN_BACKGROUND,
        "--max-frames", "240", "--stats-json", str(stats_path),
    )  # fmt: skip
    # A patient reader: it keeps its connection through the outage, so it measures when the output resumes.
    reader = NetworkSource(relay.play_url("out"), read_timeout_s=15.0)
    try:
        relay.wait_receiving("out", timeout=60)
        reader.open()
        before = [bgr(read_within(reader, EVENT_TIMEOUT_S, "the processed output")) for _ in range(10)]
        assert before[0].shape == (360, 640, 3)
        # processed: the person is kept, the rest became green (the camera's picture has no green at all)
        assert all(0.3 < green_share(frame) < 0.95 for frame in before)

        publisher.kill()
        run.stderr.wait_for("stream lost (no frame for 2.0 s); reconnecting", timeout=EVENT_TIMEOUT_S)
        publisher = Publisher(relay.publish_url("cam"), clip=stamped_clip).start()
        run.stderr.wait_for("reconnected after", timeout=2 * EVENT_TIMEOUT_S)
        # the output resumes, processed: each read is a newer frame, so the last of these came after the outage
        for _ in range(IN_FLIGHT_FRAMES + 1):
            after = bgr(read_within(reader, EVENT_TIMEOUT_S, "the output to resume"))
        assert 0.3 < green_share(after) < 0.95

        assert run.wait(timeout=60) == 0, run.stderr.text()
    finally:
        reader.close()
        publisher.stop()
        run.stop()
    stats = json.loads(stats_path.read_text())["streams"]["main"]
    assert stats["frames_out"] == 240  # --max-frames bounds a live source too
    assert stats["reconnects"] == 1


@pytest.mark.rtsp
def test_no_server_at_start_is_one_line_after_quick_retries() -> None:
    url = f"rtsp://admin:hunter2@{HOST}:{free_port()}/cam/out"
    run = Backdrop("--source", url, "--output", "null")
    try:
        code = run.wait(timeout=30)  # two quick retries (0.5 s, 1 s) of a refused connection, then the error
    finally:
        run.stop()
    output = run.stderr.text()
    assert code == 2, output
    errors = [line for line in output.splitlines() if line.startswith("backdrop: error:")]
    assert len(errors) == 1 and f"rtsp://***@{HOST}:" in errors[0], output
    assert "Traceback" not in output and "hunter2" not in output


@pytest.mark.rtsp
def test_ctrl_c_during_an_outage_ends_the_run(relay: Relay) -> None:
    publisher = Publisher(relay.publish_url("cam")).start()
    relay.wait_receiving("cam")
    run = Backdrop("--source", relay.play_url("cam"), "--output", relay.publish_url("out"))
    try:
        relay.wait_receiving("out", timeout=60)  # frames made it all the way through
        publisher.kill()
        run.stderr.wait_for("stream lost", timeout=60)
        run.process.send_signal(signal.SIGINT)
        code = run.wait(timeout=10)
    finally:
        publisher.stop()
        run.stop()
    assert code == 130, run.stderr.text()  # stopped by the user, not finished: never the success code


@pytest.mark.slow
@pytest.mark.usefixtures("chromium")
def test_browser_preview_of_a_run_shows_the_processed_frame(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    run = Backdrop("--source", "testsrc:320x240@30,live", "--output", url, "--background", GREEN_BACKGROUND)
    screenshot = tmp_path / "page.png"
    try:
        # the preview listens once the model has loaded and the first frame is in: however long that takes here
        run.stderr.wait_for(f"preview at {url}", timeout=2 * EVENT_TIMEOUT_S)
        viewer = NetworkSource(url + "stream.mjpg")
        viewer.open()
        assert bgr(viewer.read()).shape == (240, 320, 3)
        viewer.close()
        subprocess.run(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=800,600",
             f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={screenshot}", url],
            capture_output=True, timeout=120, check=True,
        )  # fmt: skip
        stats: dict = {}

        def stats_arrived() -> bool:
            stats.update(json.loads(urllib.request.urlopen(url + "stats.json", timeout=5).read()))
            return stats.get("frames_out", 0) > 0

        wait_until(stats_arrived, EVENT_TIMEOUT_S, "the pipeline's stats on the preview")
        run.process.send_signal(signal.SIGINT)
        assert run.wait(timeout=15) == 130, run.stderr.text()
    finally:
        run.stop()
    shot = cv2.imread(str(screenshot))
    # the processed 320×240 frame (testsrc has no person: all background, all green) is on the 800×600 page
    assert green_share(shot) * 800 * 600 > 0.5 * 320 * 240
    assert stats["frames_out"] > 0 and stats["fps"] > 0  # the pipeline's live stats reach the page's endpoint


def test_vcam_without_a_loopback_device_is_one_line_and_exit_2() -> None:
    if any(Path("/dev").glob("video*")):
        pytest.skip("a video device exists here: the no-device error cannot be shown")
    import pyvirtualcam  # noqa: F401  (the vcam extra, in dev: missing is a failure)

    run = Backdrop("--source", "testsrc:64x64,frames=5", "--output", "vcam")
    code = run.wait(timeout=120)
    errors = [line for line in run.stderr.lines if line.startswith("backdrop: error:") or "Traceback" in line]
    assert code == 2, run.stderr.text()
    assert len(errors) == 1 and "modprobe v4l2loopback" in errors[0]
