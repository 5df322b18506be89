"""``--output vcam[:/dev/videoN]``: a virtual webcam for Zoom, Meet, OBS … through pyvirtualcam (extra ``vcam``).

The pixel format is negotiated with the device: FORMATS are tried in order and the first one the backend
accepts is kept (pyvirtualcam raises when the backend or the device refuses one, e.g. a v4l2loopback device
whose format another writer already fixed). I420 comes first: it is what the pipeline runs in for video-file
sources, so those frames go out untouched, and it is v4l2loopback's own format (pyvirtualcam turns RGB and
BGR into I420 itself), so a webcam run's BGR frames cost the one conversion they would cost anyway.

Frames are paced at the source's rate by the camera's clock, so a file source does not flood the apps
watching. Without a device the run stops with a single line that says how to create one, rather than
pyvirtualcam's traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from backdrop.errors import SinkError
from backdrop.pixels import BGR, I420, convert, i420_to_nv12, i420_to_uyvy, i420_to_yuyv, to_bgr
from backdrop.stream.core.frame import Frame
from backdrop.stream.sinks.base import Sink

log = logging.getLogger(__name__)

LOAD_LOOPBACK = "sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label=Backdrop"


def _from_i420(pack: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray, str], np.ndarray]:
    return lambda image, layout: pack(convert(image, layout, I420))


# pyvirtualcam.PixelFormat names in the order tried, each with the conversion of a frame (image, layout) into it.
FORMATS: dict[str, Callable[[np.ndarray, str], np.ndarray]] = {
    "I420": lambda image, layout: convert(image, layout, I420),
    "NV12": _from_i420(i420_to_nv12),
    "YUYV": _from_i420(i420_to_yuyv),
    "UYVY": _from_i420(i420_to_uyvy),
    "BGR": to_bgr,
    "RGB": lambda image, layout: cv2.cvtColor(to_bgr(image, layout), cv2.COLOR_BGR2RGB),
}


def one_line(error: BaseException) -> str:
    """pyvirtualcam joins the errors of every backend it tried with newlines: keep them on one line."""
    return "; ".join(part.strip() for part in str(error).splitlines() if part.strip())


class VirtualCameraSink(Sink):
    """Sends every frame to a virtual camera; ``device`` picks one (default: the first the backend finds).

    ``fmt`` is the negotiated pyvirtualcam format name and ``opened_device`` the device in use, once open.
    """

    layouts = (BGR, I420)  # cameras carry no alpha

    def __init__(self, device: str | None = None) -> None:
        self.device = device
        self.fmt: str | None = None
        self.opened_device: str | None = None
        self._camera: Any = None
        self._convert: Callable[[np.ndarray, str], np.ndarray] | None = None

    def describe(self) -> str:
        return f"virtual camera {self.opened_device or self.device or ''}".rstrip()

    def open(self, width: int, height: int, fps: float) -> None:
        try:
            import pyvirtualcam
        except ImportError:
            raise SinkError("the virtual camera needs pyvirtualcam: pip install 'backdrop-video[vcam]'") from None
        refusals: dict[str, str] = {}
        for name, conversion in FORMATS.items():
            fmt = getattr(pyvirtualcam.PixelFormat, name, None)
            if fmt is None:  # an older pyvirtualcam without this format
                continue
            try:
                camera = pyvirtualcam.Camera(width, height, fps, fmt=fmt, device=self.device, print_fps=False)
            except RuntimeError as e:
                refusals[name] = one_line(e) or "pyvirtualcam has no backend for this platform."
                continue
            self._camera, self.fmt, self._convert = camera, name, conversion
            self.opened_device = camera.device
            break
        if self._camera is None:
            # No chained error: it would keep pyvirtualcam's half-built camera (and its noisy __del__) alive.
            raise SinkError(f"cannot open the {self.describe()}: {_summary(refusals)} To create one: {LOAD_LOOPBACK}")
        native = self._camera.native_fmt
        log.info(
            "%s: %dx%d %s at %.3g fps (backend %s%s)",
            self.describe(),
            width,
            height,
            self.fmt,
            fps,
            self._camera.backend,
            f", device format {native.name}" if native is not None and native.name != self.fmt else "",
        )
        if refusals:
            log.info("%s: formats refused before %s: %s", self.describe(), self.fmt, _summary(refusals))

    def write(self, frame: Frame) -> None:
        if self._camera is None or self._convert is None:
            raise SinkError(f"the {self.describe()} is not open")
        self._camera.send(self._convert(frame.image, frame.layout))
        self._camera.sleep_until_next_frame()  # waits only when frames come faster than the source's rate

    def close(self) -> None:
        if self._camera is not None:
            self._camera.close()
            self._camera = None


def _summary(refusals: dict[str, str]) -> str:
    """Each distinct reason once: a missing device gives the same one for every format."""
    reasons = list(dict.fromkeys(refusals.values()))
    if len(reasons) == 1:
        return reasons[0]
    return "; ".join(f"{name}: {reason}" for name, reason in refusals.items())
