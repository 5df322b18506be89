"""``--output vcam[:/dev/videoN]``: a virtual webcam for Zoom, Meet, OBS … through pyvirtualcam (extra ``vcam``).

On Linux this needs a v4l2loopback device; without one the run stops with a single line that says how to
load the module, rather than pyvirtualcam's traceback.
"""

from __future__ import annotations

from backdrop.errors import SinkError
from backdrop.pixels import to_bgr
from backdrop.stream.frame import Frame
from backdrop.stream.sinks.base import Sink

LOAD_LOOPBACK = "sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label=Backdrop"


class VirtualCameraSink(Sink):
    """Sends every frame to a virtual camera; ``device`` picks one loopback device (default: the first)."""

    def __init__(self, device: str | None = None) -> None:
        self.device = device
        self._camera = None

    def describe(self) -> str:
        return f"virtual camera {self.device or ''}".rstrip()

    def open(self, width: int, height: int, fps: float) -> None:
        try:
            import pyvirtualcam
        except ImportError:
            raise SinkError("the virtual camera needs pyvirtualcam: pip install 'backdrop[vcam]'") from None
        try:
            self._camera = pyvirtualcam.Camera(
                width, height, fps, fmt=pyvirtualcam.PixelFormat.BGR, device=self.device, print_fps=False
            )
        except RuntimeError as e:
            # from None: a chained error would keep pyvirtualcam's half-built camera (and its noisy __del__) alive
            raise SinkError(f"cannot open the {self.describe()}: {e} To create one: {LOAD_LOOPBACK}") from None

    def write(self, frame: Frame) -> None:
        self._camera.send(to_bgr(frame.image, frame.layout))  # cameras carry no alpha

    def close(self) -> None:
        if self._camera is not None:
            self._camera.close()
            self._camera = None
