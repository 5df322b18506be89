"""The virtual camera cannot run here (no v4l2loopback): what can be checked is how it fails.

These tests use the real pyvirtualcam against this machine's real /dev, and a really missing package; nothing
pretends to be a camera.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from backdrop.errors import SinkError
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
