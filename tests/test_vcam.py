"""The virtual camera: how it fails here (no v4l2loopback), and its format negotiation against a fake device.

The first tests use the real pyvirtualcam against this machine's real /dev, and a really missing package. The
others run the real ``pyvirtualcam.Camera`` over a fake backend registered with ``pyvirtualcam.register_backend``,
so the camera's own checks (uint8 only, the shape or size each pixel format needs) and its frame pacing run
on every frame the sink sends; only the device behind it is fake.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
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
    import pyvirtualcam  # noqa: F401  (the vcam extra, in dev: missing is a failure)

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
    with pytest.raises(SinkError, match=r"pip install 'backdrop-video\[vcam\]'"):
        VirtualCameraSink().open(320, 240, 30.0)


# -- format negotiation, conversion and pacing, against a fake device ----------------------------------
# The real pyvirtualcam.Camera runs; the only backend it knows here is a fake one whose one device accepts only
# the formats a test gives it and records what it is sent (a 1-D uint8 array, as the Camera hands it on after its
# checks). What only a real v4l2loopback device or OBS can show (apps seeing the frames, the backend's own
# conversions) is not shown here.

FAKE_BACKEND = "backdrop-test"
FAKE_DEVICE = "/dev/video10"
ALL_FORMATS = frozenset({"RGB", "BGR", "RGBA", "GRAY", "I420", "NV12", "YUYV", "UYVY"})  # pyvirtualcam.PixelFormat


@dataclass
class FakeDevice:
    """The one virtual camera the fake backend has: the formats it takes and what it was given."""

    accepts: frozenset[str] = ALL_FORMATS
    refusal: str = "Virtual camera device /dev/video10 could not be configured: Invalid argument"
    tried: list[str] = field(default_factory=list)
    opened: list[tuple[int, int, float, str, str | None]] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)
    sent_at: list[float] = field(default_factory=list)
    closed: int = 0


def fake_backend(fake: FakeDevice) -> type:
    """A class with pyvirtualcam's backend interface (pyvirtualcam.Backend) over ``fake``."""
    from pyvirtualcam import PixelFormat
    from pyvirtualcam.util import decode_fourcc, encode_fourcc

    class FakeBackend:
        def __init__(self, *, width: int, height: int, fps: float, fourcc: int, device: str | None, **kw) -> None:
            fmt = PixelFormat(decode_fourcc(fourcc)).name
            fake.tried.append(fmt)
            if fmt not in fake.accepts:
                raise RuntimeError(fake.refusal)
            fake.opened.append((width, height, fps, fmt, device))
            self._device = device or FAKE_DEVICE
            # like v4l2loopback: RGB and BGR are turned into I420 before the device sees them
            self._native = encode_fourcc(PixelFormat.I420.value) if fmt in ("RGB", "BGR") else fourcc

        def send(self, frame: np.ndarray) -> None:
            fake.sent_at.append(time.perf_counter())
            fake.frames.append(frame.copy())

        def device(self) -> str:
            return self._device

        def native_fourcc(self) -> int:
            return self._native

        def close(self) -> None:
            fake.closed += 1

    return FakeBackend


@pytest.fixture
def device(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDevice]:
    """The real pyvirtualcam whose only backend is the fake one (this machine's v4l2loopback is never tried)."""
    import pyvirtualcam
    from pyvirtualcam import camera

    monkeypatch.setattr(camera, "BACKENDS", {})  # register_backend below writes into this fresh registry
    fake = FakeDevice()
    pyvirtualcam.register_backend(FAKE_BACKEND, fake_backend(fake))
    assert list(camera.BACKENDS) == [FAKE_BACKEND]
    yield fake


def solid(bgr: tuple[int, int, int], size: tuple[int, int] = (8, 4)) -> np.ndarray:
    return np.full((size[1], size[0], 3), bgr, np.uint8)


def test_an_i420_run_goes_out_as_i420_untouched(device: FakeDevice) -> None:
    assert I420 in VirtualCameraSink.layouts  # so a video-file run stays in I420 up to the camera
    image = bgr_to_i420(solid((10, 200, 30)))
    with VirtualCameraSink() as sink:
        sink.open(8, 4, 25.0)
        sink.write(Frame(image, index=0, layout=I420))
    assert device.tried == ["I420"] and sink.fmt == "I420"
    assert device.opened == [(8, 4, 25.0, "I420", None)]
    (frame,) = device.frames
    assert np.array_equal(frame, image.reshape(-1))
    assert device.closed == 1


def test_a_device_fixed_to_yuyv_gets_yuyv_bytes(device: FakeDevice, caplog: pytest.LogCaptureFixture) -> None:
    device.accepts = frozenset({"YUYV", "BGR"})
    with caplog.at_level(logging.INFO), VirtualCameraSink(FAKE_DEVICE) as sink:
        sink.open(8, 4, 30.0)
        sink.write(Frame(solid((0, 0, 255)), index=0))  # pure red, BGR
    assert device.tried == ["I420", "NV12", "YUYV"] and sink.fmt == "YUYV"
    assert device.opened == [(8, 4, 30.0, "YUYV", FAKE_DEVICE)]
    (frame,) = device.frames
    assert frame.size == 8 * 4 * 2  # two bytes a pixel
    # BT.601 limited-range red: Y 82, U 90, V 240, packed Y0 U Y1 V for every pixel pair
    assert np.abs(frame.reshape(-1, 4).astype(int) - [82, 90, 82, 240]).max() <= 1
    assert f"virtual camera {FAKE_DEVICE}: 8x4 YUYV at 30 fps (backend {FAKE_BACKEND})" in caplog.text
    assert "formats refused before YUYV" in caplog.text


@pytest.mark.parametrize(
    ("accepts", "fmt", "decode"),
    [
        ("NV12", "NV12", lambda f: cv2.cvtColor(f.reshape(6, 8), cv2.COLOR_YUV2BGR_NV12)),
        ("UYVY", "UYVY", lambda f: cv2.cvtColor(f.reshape(4, 8, 2), cv2.COLOR_YUV2BGR_UYVY)),
        ("BGR", "BGR", lambda f: f.reshape(4, 8, 3)),
        ("RGB", "RGB", lambda f: f.reshape(4, 8, 3)[..., ::-1]),
    ],
)
def test_every_fallback_format_carries_the_picture(device: FakeDevice, accepts: str, fmt: str, decode) -> None:
    device.accepts = frozenset({accepts})
    colour = (40, 120, 220)
    with VirtualCameraSink() as sink:
        sink.open(8, 4, 30.0)
        sink.write(Frame(solid(colour), index=0))
    assert sink.fmt == fmt
    (frame,) = device.frames  # the real Camera took it: uint8, and the size or shape this format needs
    assert np.abs(decode(frame).astype(int) - colour).max() <= 3  # YUV 4:2:0 round trip of a flat colour


def test_frames_are_paced_by_the_camera_clock(device: FakeDevice) -> None:
    fps = 12.5
    with VirtualCameraSink() as sink:
        sink.open(8, 4, fps)
        for i in range(3):
            sink.write(Frame(solid((i, i, i)), index=i))  # written at once: only the camera's clock spaces them
    assert device.opened[0][2] == fps  # the source's rate
    assert len(device.frames) == 3
    gaps = np.diff(device.sent_at)
    assert gaps.min() >= 0.9 / fps, gaps  # sleeping can only make them longer, so this holds on a busy machine


def test_the_device_name_is_the_one_opened(device: FakeDevice, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO), VirtualCameraSink() as sink:
        sink.open(8, 4, 30.0)
    assert sink.opened_device == FAKE_DEVICE and sink.describe() == f"virtual camera {FAKE_DEVICE}"
    assert FAKE_DEVICE in caplog.text


def test_no_format_accepted_is_one_line_with_each_reason_once(device: FakeDevice) -> None:
    device.accepts = frozenset()
    device.refusal = "No v4l2 loopback device found at /dev/video[0-99].\nsecond line"
    with pytest.raises(SinkError) as error:
        VirtualCameraSink().open(8, 4, 30.0)
    message = str(error.value)
    assert "\n" not in message and message.count("No v4l2 loopback device found") == 1
    assert f"'{FAKE_BACKEND}' backend" in message  # the real Camera's own wording of a backend's refusal
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
    width, height = CLIP_SIZE
    assert len(device.frames) == 5 and all(f.size == width * height * 3 // 2 for f in device.frames)
    assert device.closed == 1
