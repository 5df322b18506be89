"""Webcam modes, errors and reconnects, against a fake camera: there is no video device on this machine.

The fake stands in for cv2.VideoCapture on a V4L2 camera: it grants the nearest mode it has within the
current pixel format (as V4L2 does), and can be busy, unplugged after some frames, and plugged in again after
some failed opens. Only a real camera can show that OpenCV's V4L2 backend applies the properties this way.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import pytest

from backdrop.errors import ConfigError, SourceError
from backdrop.stream.config.run import SourceConfig, parse_config
from backdrop.stream.sources.factory import make_source
from backdrop.stream.sources.webcam import (
    WebcamMode,
    WebcamSource,
    fourcc_name,
    mode_report,
    mode_requests,
)

# A typical USB camera: 1080p only at 5 fps uncompressed, 30 fps as MJPG.
MODES = {
    "MJPG": {(1920, 1080): (30.0, 15.0), (1280, 720): (60.0, 30.0), (640, 480): (30.0,)},
    "YUYV": {(1920, 1080): (5.0,), (1280, 720): (10.0,), (640, 480): (30.0, 15.0)},
}
PROP_NAMES = {cv2.CAP_PROP_FOURCC: "fourcc", cv2.CAP_PROP_FRAME_WIDTH: "width", cv2.CAP_PROP_FRAME_HEIGHT: "height"}


@dataclass
class FakeCamera:
    """One camera device shared by every capture opened on it, so it can be unplugged and plugged back."""

    plugged: bool = True
    busy: bool = False
    frames_before_unplug: int | None = None  # reads that succeed before the camera is pulled out
    failed_opens_before_replug: int = 0
    replugged_modes: dict | None = None  # what the camera offers after it comes back (None: the same)
    fourcc: str = "YUYV"
    size: tuple[int, int] = (640, 480)
    fps: float = 30.0
    sets: list[tuple[str, float]] = field(default_factory=list)
    opens: int = 0
    failed_opens: int = 0
    reads: int = 0
    open_failed: threading.Event = field(default_factory=threading.Event)

    def modes(self) -> dict:
        return self.replugged_modes if self.replugged_modes and self.opens > 1 else MODES


class FakeCapture:
    """cv2.VideoCapture's surface over a FakeCamera."""

    def __init__(self, camera: FakeCamera) -> None:
        self.camera = camera
        camera.opens += 1
        if not camera.plugged:
            camera.failed_opens += 1
            camera.open_failed.set()
            if camera.failed_opens >= camera.failed_opens_before_replug:
                camera.plugged = True  # plugged back in: the next open succeeds
            self.opened = False
        else:
            self.opened = True
        self.width_asked = camera.size[0]

    def isOpened(self) -> bool:
        return self.opened

    def set(self, prop: int, value: float) -> bool:
        cam = self.camera
        cam.sets.append((PROP_NAMES.get(prop, "fps"), value))
        modes = cam.modes()
        if prop == cv2.CAP_PROP_FOURCC:
            name = fourcc_name(value)
            if name in modes:
                cam.fourcc = name
                cam.size = min(modes[name], key=lambda s: abs(s[0] - cam.size[0]) + abs(s[1] - cam.size[1]))
        elif prop == cv2.CAP_PROP_FRAME_WIDTH:
            self.width_asked = int(value)
        elif prop == cv2.CAP_PROP_FRAME_HEIGHT:
            sizes = modes[cam.fourcc]
            cam.size = min(sizes, key=lambda s: abs(s[0] - self.width_asked) + abs(s[1] - int(value)))
        else:  # fps: the nearest rate of the current size
            cam.fps = min(modes[cam.fourcc][cam.size], key=lambda f: abs(f - value))
        return True

    def get(self, prop: int) -> float:
        cam = self.camera
        if prop == cv2.CAP_PROP_FOURCC:
            return float(cv2.VideoWriter_fourcc(*cam.fourcc))
        if prop == cv2.CAP_PROP_FPS:
            return cam.fps
        return 0.0

    def read(self) -> tuple[bool, np.ndarray | None]:
        cam = self.camera
        if cam.busy or not cam.plugged or not self.opened:
            return False, None
        if cam.frames_before_unplug is not None and cam.reads >= cam.frames_before_unplug:
            cam.plugged = False
            cam.frames_before_unplug = None
            return False, None
        cam.reads += 1
        width, height = cam.size
        return True, np.full((height, width, 3), cam.reads % 256, np.uint8)

    def release(self) -> None:
        self.opened = False


def webcam(camera: FakeCamera, mode: WebcamMode | None = None, **kwargs: float | None) -> WebcamSource:
    def opener(device: int | str, params: Sequence[int]) -> FakeCapture:
        return FakeCapture(camera)

    return WebcamSource("/dev/null", mode=mode, open_capture=opener, **kwargs)


# -- mode negotiation (pure) --------------------------------------------------------------------------


def test_the_pixel_format_is_set_before_the_size_and_the_rate() -> None:
    asked = WebcamMode(1920, 1080, 30.0, "MJPG")
    assert mode_requests(asked) == [
        (cv2.CAP_PROP_FOURCC, float(cv2.VideoWriter_fourcc(*"MJPG"))),
        (cv2.CAP_PROP_FRAME_WIDTH, 1920.0),
        (cv2.CAP_PROP_FRAME_HEIGHT, 1080.0),
        (cv2.CAP_PROP_FPS, 30.0),
    ]
    assert mode_requests(WebcamMode()) == []


@pytest.mark.parametrize(
    ("code", "name"),
    [
        (cv2.VideoWriter_fourcc(*"MJPG"), "MJPG"),
        (cv2.VideoWriter_fourcc(*"YUYV"), "YUYV"),
        (0, None),
        (-1, None),
        (7, None),
    ],
)
def test_fourcc_values_read_back_as_names(code: float, name: str | None) -> None:
    assert fourcc_name(code) == name


@pytest.mark.parametrize(
    ("granted", "asked", "line"),
    [
        (WebcamMode(640, 480, 30, "YUYV"), WebcamMode(), "webcam cam: 640x480 YUYV at 30 fps (camera default)"),
        (WebcamMode(1920, 1080, 29.97, "MJPG"), WebcamMode(1920, 1080, 30, "MJPG"), "(as asked)"),
        (
            WebcamMode(1280, 720, 30, "MJPG"),
            WebcamMode(1920, 1080, 30, "MJPG"),
            "webcam cam: 1280x720 MJPG at 30 fps (asked 1920x1080 MJPG at 30 fps)",
        ),
        (WebcamMode(1920, 1080, 5, "YUYV"), WebcamMode(fps=30), "(asked default size default format at 30 fps)"),
        (WebcamMode(640, 480, None, None), WebcamMode(pixel_format="MJPG"), "640x480 default format at default fps"),
    ],
)
def test_the_mode_report_says_what_was_granted_and_what_was_asked(
    granted: WebcamMode, asked: WebcamMode, line: str
) -> None:
    assert line in mode_report("cam", granted, asked)


# -- opening -------------------------------------------------------------------------------------------


def test_a_mode_the_camera_has_is_granted_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    camera = FakeCamera()
    with caplog.at_level(logging.INFO), webcam(camera, WebcamMode(1920, 1080, 30.0, "MJPG")) as source:
        frame = source.read()
    assert frame is not None and frame.size == (1920, 1080)
    assert source.granted == WebcamMode(1920, 1080, 30.0, "MJPG") and source.fps == 30.0
    assert [r.getMessage() for r in caplog.records] == ["webcam /dev/null: 1920x1080 MJPG at 30 fps (as asked)"]


def test_a_mode_the_camera_lacks_gets_the_nearest_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    camera = FakeCamera()
    with caplog.at_level(logging.INFO), webcam(camera, WebcamMode(1920, 1080, 30.0, "YUYV")) as source:
        assert source.read().size == (1920, 1080)
    assert source.fps == 5.0  # the sinks encode at the rate the camera really gives
    assert "1920x1080 YUYV at 5 fps (asked 1920x1080 YUYV at 30 fps)" in caplog.text


def test_without_a_mode_the_camera_keeps_its_own() -> None:
    camera = FakeCamera()
    with webcam(camera) as source:
        assert source.read().size == (640, 480)
    assert camera.sets == []


def test_a_missing_camera_is_one_line() -> None:
    with pytest.raises(SourceError) as error:
        WebcamSource("/dev/video63").open()
    assert str(error.value) == "cannot open webcam /dev/video63: no such device (`backdrop devices` lists cameras)"


def test_a_busy_camera_is_one_line() -> None:
    source = webcam(FakeCamera(busy=True))
    with pytest.raises(SourceError, match=r"^cannot open webcam /dev/null: it delivers no frames \(busy in another"):
        source.open()
    assert source.capture is None  # nothing is held after the failure


def test_a_camera_that_is_unplugged_before_the_first_frame_is_an_error_at_once() -> None:
    camera = FakeCamera(plugged=False, failed_opens_before_replug=5)
    with pytest.raises(SourceError, match="cannot open webcam"):
        webcam(camera).open()
    assert camera.opens == 1  # no retries before the camera ever played


# -- unplugged mid-run ----------------------------------------------------------------------------------


def test_an_unplugged_camera_is_reopened_in_the_same_mode(caplog: pytest.LogCaptureFixture) -> None:
    camera = FakeCamera(frames_before_unplug=3, failed_opens_before_replug=2)
    asked = WebcamMode(1280, 720, 60.0, "MJPG")
    with caplog.at_level(logging.INFO), webcam(camera, asked, max_backoff_s=0.01) as source:
        frames = [source.read() for _ in range(6)]
    assert [int(f.image[0, 0, 0]) for f in frames] == [1, 2, 3, 4, 5, 6]  # every frame the camera gave, in order
    assert [f.index for f in frames] == list(range(6))
    assert source.reconnects == 1 and source.counters() == {"reconnects": 1}
    assert camera.opens == 4  # the first, two while unplugged, the one that worked
    assert camera.sets[-4:] == camera.sets[:4]  # the mode is asked for again
    assert "stopped delivering frames" in caplog.text and "reconnected after" in caplog.text


def test_a_camera_that_comes_back_smaller_keeps_the_first_size() -> None:
    camera = FakeCamera(frames_before_unplug=1, replugged_modes={"MJPG": {(640, 480): (30.0,)}})
    with webcam(camera, WebcamMode(1280, 720, 30.0, "MJPG"), max_backoff_s=0.01) as source:
        first, second = source.read(), source.read()
    assert first.size == second.size == (1280, 720)


@pytest.mark.timeout(60)  # a source that never gave up would block its read forever: fail instead of stalling
def test_an_outage_longer_than_give_up_after_s_ends_the_source_with_one_line() -> None:
    camera = FakeCamera(frames_before_unplug=2, failed_opens_before_replug=1000)
    with webcam(camera, give_up_after_s=0.2, max_backoff_s=0.05) as source:
        source.read(), source.read()
        with pytest.raises(SourceError, match=r"^webcam /dev/null: gave up after \d+\.\d s without a frame$") as error:
            source.read()
    # the outage as the source measured it: not shorter than give_up_after_s (however long a loaded machine took)
    assert float(str(error.value).split("gave up after ")[1].split()[0]) >= 0.2
    assert camera.failed_opens >= 2


def test_a_stop_during_an_outage_ends_the_blocked_read() -> None:
    camera = FakeCamera(frames_before_unplug=1, failed_opens_before_replug=1000)
    source = webcam(camera)  # the default backoff: seconds between attempts
    source.open()
    source.read()
    results: list[object] = []
    reader = threading.Thread(target=lambda: results.append(source.read()), daemon=True)
    reader.start()
    assert camera.open_failed.wait(30.0)  # the reader is in its outage, between attempts
    source.interrupt()
    reader.join(30.0)  # else it would retry for as long as the camera is away: here, for good
    assert not reader.is_alive() and results == [None]
    source.close()


# -- configuration -------------------------------------------------------------------------------------


def test_the_config_mode_reaches_the_webcam() -> None:
    config = SourceConfig(uri="/dev/video3", width=1280, height=720, fps=60.0, pixel_format="MJPG", give_up_after_s=9)
    source = make_source(config)
    assert isinstance(source, WebcamSource)
    assert source.mode == WebcamMode(1280, 720, 60.0, "MJPG") and source.give_up_after_s == 9


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ({"width": 1280, "height": 720, "pixel_format": "MJPG"}, None),
        ({"width": 1280}, "source.width: set width and height together"),
        ({"width": 8, "height": 8}, r"source.width: must be in \[16, 16384\]"),
        ({"pixel_format": "MJPEG"}, "source.pixel_format: must be a four-character code"),
        ({"pixel_format": "YU\u00e9V"}, "source.pixel_format"),
    ],
)
def test_webcam_mode_keys_are_checked(source: dict, error: str | None) -> None:
    if error is None:
        assert parse_config({"source": source}).source.pixel_format == "MJPG"
    else:
        with pytest.raises(ConfigError, match=error):
            parse_config({"source": source})
