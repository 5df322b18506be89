"""The virtual camera: how it fails here (no v4l2loopback), and its format negotiation against a fake device.

The first tests use the real pyvirtualcam against this machine's real /dev, and a really missing package.
"""

from __future__ import annotations

import enum
import logging
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest
from clips import CLIP_SIZE, run_cli

from backdrop.errors import SinkError
from backdrop.pixels import I420, bgr_to_i420
from backdrop.stream.core.frame import Frame
from backdrop.stream.sinks.vcam import LOAD_LOOPBACK, VirtualCameraSink

no_loopback_here = pytest.mark.skipif(
    any(Path("/dev").glob("video*")), reason="a video device exists here: the no-device error cannot be shown"
)


@no_loopback_here
@pytest.mark.parametrize("device", [None, "/dev/video7"])
def test_without_a_loopback_device_one_line_says_how_to_load_it(device: str | None) -> None:
    pytest.importorskip("pyvirtualcam", reason="the vcam extra is not installed")
    sink = VirtualCameraSink(device)
    with pytest.raises(SinkError) as error:
        sink.open(320, 240, 30.0)
    message = str(error.value)
    assert "\n" not in message
    assert LOAD_LOOPBACK in message and "modprobe v4l2loopback" in message
    if device:
        assert device in message
    sink.close()  # nothing was opened: closing is still safe


def test_without_pyvirtualcam_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyvirtualcam", None)  # makes `import pyvirtualcam` fail, as when not installed
    with pytest.raises(SinkError, match=r"pip install 'backdrop\[vcam\]'"):
        VirtualCameraSink().open(320, 240, 30.0)


# -- format negotiation, conversion and pacing, against a fake device ----------------------------------
# pyvirtualcam itself is real above; here it is replaced by a fake module whose one device accepts only the
# formats a test gives it and records what it is sent. What only a real v4l2loopback device or OBS can show
# (apps seeing the frames, the backend's own conversions) is not shown here.

FAKE_DEVICE = "/dev/video10"


class FakePixelFormat(enum.Enum):
    RGB = "raw "
    BGR = "24BG"
    RGBA = "ABGR"
    GRAY = "J400"
    I420 = "I420"
    NV12 = "NV12"
    YUYV = "YUY2"
    UYVY = "UYVY"


@dataclass
class FakeDevice:
    """The one virtual camera the fake backend has: the formats it takes and what it was given."""

    accepts: frozenset[str] = frozenset(f.name for f in FakePixelFormat)
    refusal: str = (
        "'v4l2loopback' backend: Virtual camera device /dev/video10 could not be configured: Invalid argument"
    )
    tried: list[str] = field(default_factory=list)
    opened: list[tuple[int, int, float, str, str | None]] = field(default_factory=list)
    calls: list[tuple[str, np.ndarray | None]] = field(default_factory=list)
    closed: int = 0


def fake_pyvirtualcam(device: FakeDevice) -> types.ModuleType:
    module = types.ModuleType("pyvirtualcam")

    class Camera:
        def __init__(
            self,
            width: int,
            height: int,
            fps: float,
            *,
            fmt: FakePixelFormat,
            device: str | None = None,
            print_fps: bool = False,
        ) -> None:
            fake.tried.append(fmt.name)
            if fmt.name not in fake.accepts:
                raise RuntimeError(fake.refusal)
            fake.opened.append((width, height, fps, fmt.name, device))
            self.device = device or FAKE_DEVICE
            self.backend = "v4l2loopback"
            self.native_fmt = FakePixelFormat.I420 if fmt.name in ("RGB", "BGR") else fmt

        def send(self, frame: np.ndarray) -> None:
            fake.calls.append(("send", frame.copy()))

        def sleep_until_next_frame(self) -> None:
            fake.calls.append(("sleep", None))

        def close(self) -> None:
            fake.closed += 1

    fake = device
    module.Camera = Camera  # type: ignore[attr-defined]
    module.PixelFormat = FakePixelFormat  # type: ignore[attr-defined]
    return module


@pytest.fixture
def device(monkeypatch: pytest.MonkeyPatch) -> FakeDevice:
    fake = FakeDevice()
    monkeypatch.setitem(sys.modules, "pyvirtualcam", fake_pyvirtualcam(fake))
    return fake


def solid(bgr: tuple[int, int, int], size: tuple[int, int] = (8, 4)) -> np.ndarray:
    return np.full((size[1], size[0], 3), bgr, np.uint8)


def sent(device: FakeDevice) -> list[np.ndarray]:
    return [frame for call, frame in device.calls if call == "send"]


def test_an_i420_run_goes_out_as_i420_untouched(device: FakeDevice) -> None:
    assert I420 in VirtualCameraSink.layouts  # so a video-file run stays in I420 up to the camera
    image = bgr_to_i420(solid((10, 200, 30)))
    with VirtualCameraSink() as sink:
        sink.open(8, 4, 25.0)
        sink.write(Frame(image, index=0, layout=I420))
    assert device.tried == ["I420"] and sink.fmt == "I420"
    assert device.opened == [(8, 4, 25.0, "I420", None)]
    (frame,) = sent(device)
    assert np.array_equal(frame, image)
    assert device.closed == 1


def test_a_device_fixed_to_yuyv_gets_yuyv_bytes(device: FakeDevice, caplog: pytest.LogCaptureFixture) -> None:
    device.accepts = frozenset({"YUYV", "BGR"})
    with caplog.at_level(logging.INFO), VirtualCameraSink(FAKE_DEVICE) as sink:
        sink.open(8, 4, 30.0)
        sink.write(Frame(solid((0, 0, 255)), index=0))  # pure red, BGR
    assert device.tried == ["I420", "NV12", "YUYV"] and sink.fmt == "YUYV"
    (frame,) = sent(device)
    assert frame.shape == (4, 16)  # two bytes a pixel
    # BT.601 limited-range red: Y 82, U 90, V 240, packed Y0 U Y1 V for every pixel pair
    assert np.abs(frame.reshape(-1, 4).astype(int) - [82, 90, 82, 240]).max() <= 1
    assert f"virtual camera {FAKE_DEVICE}: 8x4 YUYV at 30 fps (backend v4l2loopback)" in caplog.text
    assert "formats refused before YUYV" in caplog.text


@pytest.mark.parametrize(
    ("accepts", "fmt", "decode"),
    [
        ("NV12", "NV12", lambda f: cv2.cvtColor(f, cv2.COLOR_YUV2BGR_NV12)),
        ("UYVY", "UYVY", lambda f: cv2.cvtColor(f.reshape(4, 8, 2), cv2.COLOR_YUV2BGR_UYVY)),
        ("BGR", "BGR", lambda f: f),
        ("RGB", "RGB", lambda f: f[..., ::-1]),
    ],
)
def test_every_fallback_format_carries_the_picture(device: FakeDevice, accepts: str, fmt: str, decode) -> None:
    device.accepts = frozenset({accepts})
    colour = (40, 120, 220)
    with VirtualCameraSink() as sink:
        sink.open(8, 4, 30.0)
        sink.write(Frame(solid(colour), index=0))
    assert sink.fmt == fmt
    (frame,) = sent(device)
    assert np.abs(decode(frame).astype(int) - colour).max() <= 3  # YUV 4:2:0 round trip of a flat colour


def test_frames_are_paced_by_the_camera_clock(device: FakeDevice) -> None:
    with VirtualCameraSink() as sink:
        sink.open(8, 4, 12.5)
        for i in range(3):
            sink.write(Frame(solid((i, i, i)), index=i))
    assert device.opened[0][2] == 12.5  # the source's rate
    assert [call for call, _ in device.calls] == ["send", "sleep"] * 3


def test_the_device_name_is_the_one_opened(device: FakeDevice, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO), VirtualCameraSink() as sink:
        sink.open(8, 4, 30.0)
    assert sink.opened_device == FAKE_DEVICE and sink.describe() == f"virtual camera {FAKE_DEVICE}"
    assert FAKE_DEVICE in caplog.text


def test_no_format_accepted_is_one_line_with_each_reason_once(device: FakeDevice) -> None:
    device.accepts = frozenset()
    device.refusal = "'v4l2loopback' backend: No v4l2 loopback device found at /dev/video[0-99].\nsecond line"
    with pytest.raises(SinkError) as error:
        VirtualCameraSink().open(8, 4, 30.0)
    message = str(error.value)
    assert "\n" not in message and message.count("No v4l2 loopback device found") == 1
    assert LOAD_LOOPBACK in message
    assert device.tried == ["I420", "NV12", "YUYV", "UYVY", "BGR", "RGB"]


def test_a_video_file_run_reaches_the_virtual_camera_in_i420(
    device: FakeDevice, capsys: pytest.CaptureFixture[str], stamped_clip: Path
) -> None:
    code, stderr = run_cli(
        capsys,
        "run",
        "--source",
        stamped_clip,
        "--output",
        "vcam",
        "--max-frames",
        "5",
        "--runtime",
        "onnxruntime",
        "--background",
        "color:#00ff00",
        "--no-progress",
    )
    assert code == 0, stderr
    assert device.opened[0][3] == "I420" and device.opened[0][:2] == CLIP_SIZE
    frames = sent(device)
    assert len(frames) == 5 and all(f.shape == (CLIP_SIZE[1] * 3 // 2, CLIP_SIZE[0]) for f in frames)
    assert [call for call, _ in device.calls] == ["send", "sleep"] * 5
