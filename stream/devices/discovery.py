"""The cameras and virtual cameras this machine has, with their modes, for ``backdrop devices``.

Linux: every V4L2 node in sysfs (``/sys/class/video4linux``). Drivers add secondary nodes to a camera, for
example the metadata node of a UVC camera, which has ``index`` 1. Only index-0 nodes are listed. A node with
v4l2loopback's own sysfs attributes (``max_openers``) is a virtual camera, which ``--output vcam`` writes
to. Modes come from ``v4l2-ctl --list-formats-ext`` (v4l-utils) when it is installed.

Other platforms have no such listing: camera indexes are probed through OpenCV, without names or modes.
The sysfs root, the v4l2-ctl runner and the OpenCV probe can be injected, so that recorded data can stand in
for devices.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from backdrop.stream.devices.v4l2_modes import PixelFormatModes, parse_list_formats_ext

V4L2_CTL_TIMEOUT_S = 5.0
PROBED_INDEXES = 10  # OpenCV probing: indexes 0…9
LOOPBACK_ATTRIBUTE = "max_openers"  # created by v4l2loopback only
INSTALL_V4L_UTILS = "install v4l-utils (v4l2-ctl) to list them"

# v4l2-ctl arguments → its stdout, or None when it is not installed or failed
Runner = Callable[[list[str]], str | None]
# camera index → whether OpenCV opens it
Probe = Callable[[int], bool]


@dataclass
class VideoDevice:
    """A camera or virtual camera: its node (or index), the name its driver gives, and its modes.

    ``formats`` is None when the modes are unknown (no v4l2-ctl, or a platform without a listing).
    """

    node: str
    name: str
    formats: list[PixelFormatModes] | None = None
    loopback: bool = False


@dataclass
class DeviceListing:
    """What ``backdrop devices`` shows: the cameras and the virtual cameras, and how they were found."""

    platform: str
    method: str
    cameras: list[VideoDevice] = field(default_factory=list)
    virtual_cameras: list[VideoDevice] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # secondary nodes (metadata), not cameras
    modes_note: str | None = None  # why modes are missing, if they are


def run_v4l2_ctl(args: list[str]) -> str | None:
    """``v4l2-ctl ARGS``'s stdout; None when v4l2-ctl is missing, fails or hangs (a wedged driver)."""
    program = shutil.which("v4l2-ctl")
    if program is None:
        return None
    try:
        done = subprocess.run([program, *args], capture_output=True, text=True, timeout=V4L2_CTL_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def probe_opencv(index: int) -> bool:
    import cv2

    capture = cv2.VideoCapture(index)
    try:
        return capture.isOpened()
    finally:
        capture.release()


def list_devices(
    *,
    platform: str = sys.platform,
    sysfs: Path = Path("/sys"),
    runner: Runner = run_v4l2_ctl,
    probe: Probe = probe_opencv,
) -> DeviceListing:
    """Every camera and virtual camera found, by the means this platform has."""
    if platform.startswith("linux"):
        return list_v4l2(sysfs, runner)
    return list_opencv(platform, probe)


def list_v4l2(sysfs: Path, runner: Runner) -> DeviceListing:
    """The V4L2 nodes under ``sysfs``/class/video4linux, with modes from ``runner`` (v4l2-ctl) when it answers."""
    root = sysfs / "class" / "video4linux"
    listing = DeviceListing("linux", f"V4L2 nodes in {root}")
    nodes = sorted(root.glob("video*"), key=lambda p: _number(p.name))
    modes_unknown = False
    for entry in nodes:
        node = f"/dev/{_attribute(entry, 'uevent', 'DEVNAME') or entry.name}"
        if _attribute(entry, "index") not in (None, "0"):
            listing.skipped.append(node)
            continue
        output = runner(["--list-formats-ext", "-d", node])
        modes_unknown |= output is None
        device = VideoDevice(
            node=node,
            name=_attribute(entry, "name") or entry.name,
            formats=None if output is None else parse_list_formats_ext(output),
            loopback=(entry / LOOPBACK_ATTRIBUTE).exists(),
        )
        (listing.virtual_cameras if device.loopback else listing.cameras).append(device)
    if modes_unknown:
        listing.modes_note = INSTALL_V4L_UTILS
    return listing


def list_opencv(platform: str, probe: Probe) -> DeviceListing:
    """Indexes 0…9 that OpenCV opens: no names, no modes (other platforms have no listing that Backdrop reads)."""
    listing = DeviceListing(platform, f"OpenCV, camera indexes 0-{PROBED_INDEXES - 1}")
    listing.cameras = [VideoDevice(str(i), f"camera {i}") for i in range(PROBED_INDEXES) if probe(i)]
    listing.modes_note = "not listed on this platform: set source.width/height/fps/pixel_format and read the log"
    return listing


def _attribute(entry: Path, name: str, key: str | None = None) -> str | None:
    """A sysfs attribute's value (or one KEY=value line of it); None when absent or unreadable."""
    try:
        text = (entry / name).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    if key is None:
        return text.strip()
    for line in text.splitlines():
        found, _, value = line.partition("=")
        if found == key:
            return value.strip()
    return None


def _number(name: str) -> int:
    digits = name.removeprefix("video")
    return int(digits) if digits.isdigit() else sys.maxsize
