"""``backdrop devices`` on device data written in the layouts of Linux sysfs and v4l2-ctl (tests/data/devices;
this machine has no camera). Only a real camera can show that its driver reports what the files imitate."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from backdrop.cli import main
from backdrop.commands import devices as devices_command
from backdrop.stream.devices.discovery import DeviceListing, list_devices, run_v4l2_ctl
from backdrop.stream.devices.v4l2_modes import FrameSize, parse_list_formats_ext

DATA = Path(__file__).parent / "data" / "devices"
SYSFS = DATA / "sysfs"


def recorded(name: str) -> str:
    return (DATA / "v4l2-ctl" / f"{name}.txt").read_text()


class RecordedV4l2Ctl:
    """Answers ``--list-formats-ext -d /dev/videoN`` with the recorded output for that node."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, args: list[str]) -> str | None:
        self.calls.append(args)
        return recorded(Path(args[-1]).name)


def recorded_listing() -> DeviceListing:
    return list_devices(platform="linux", sysfs=SYSFS, runner=RecordedV4l2Ctl())


# -- the v4l2-ctl parser -------------------------------------------------------------------------------


def test_a_uvc_camera_lists_yuyv_and_mjpg_modes() -> None:
    formats = parse_list_formats_ext(recorded("video0"))
    assert [(f.fourcc, f.description) for f in formats] == [
        ("YUYV", "YUYV 4:2:2"),
        ("MJPG", "Motion-JPEG, compressed"),
    ]
    yuyv, mjpg = formats
    assert [(s.width, s.height) for s in mjpg.sizes] == [(640, 480), (1280, 720), (1920, 1080)]
    assert mjpg.sizes[2].fps == [30.0, 24.0, 20.0, 15.0, 10.0, 7.5, 5.0]
    assert yuyv.sizes[2] == FrameSize(1920, 1080, fps=[5.0])  # 1080p uncompressed: USB 2 gives 5 fps
    assert mjpg.describe().startswith("MJPG (Motion-JPEG, compressed): 640x480 @ 30/24/20/15/10/7.5/5 fps, ")


def test_the_older_v4l2_ctl_layout_reads_the_same() -> None:
    formats = parse_list_formats_ext(recorded("older-layout"))
    assert [(f.fourcc, f.description) for f in formats] == [
        ("MJPG", "Motion-JPEG, compressed"),
        ("YUYV", "YUYV 4:2:2"),
    ]
    assert formats[1].sizes == [FrameSize(640, 480, fps=[30.0, 15.0])]


def test_ranges_of_sizes_and_rates() -> None:
    still, video = parse_list_formats_ext(recorded("ranges"))
    assert still.sizes == [FrameSize(32, 32, max_width=2592, max_height=1944)]
    assert video.sizes == [FrameSize(1920, 1080, min_fps=1.0, max_fps=60.0)]
    assert still.describe() == "YU12 (Planar YUV 4:2:0): 32x32-2592x1944"
    assert video.describe() == "YUYV (YUYV 4:2:2): 1920x1080 @ 1-60 fps"


@pytest.mark.parametrize("text", [recorded("video1"), "", "Failed to open /dev/video0: Permission denied\n"])
def test_nodes_without_formats_give_none(text: str) -> None:
    assert parse_list_formats_ext(text) == []


def test_an_interval_without_its_rate_is_computed() -> None:
    (fmt,) = parse_list_formats_ext(
        "[0]: 'GREY' (8-bit Greyscale)\n Size: Discrete 752x480\n  Interval: Discrete 0.016s\n"
    )
    assert fmt.sizes[0].fps == [62.5]


# -- the listing ---------------------------------------------------------------------------------------


def test_sysfs_gives_cameras_virtual_cameras_and_skips_metadata_nodes() -> None:
    runner = RecordedV4l2Ctl()
    listing = list_devices(platform="linux", sysfs=SYSFS, runner=runner)
    assert [(c.node, c.name) for c in listing.cameras] == [
        ("/dev/video0", "HD Pro Webcam C920"),
        ("/dev/video2", "Integrated Camera: Integrated C"),
    ]
    assert listing.skipped == ["/dev/video1", "/dev/video3"]
    assert [(v.node, v.name) for v in listing.virtual_cameras] == [
        ("/dev/video10", "Backdrop"),
        ("/dev/video11", "Dummy video device (0x0001)"),
    ]
    assert listing.cameras[0].formats == parse_list_formats_ext(recorded("video0"))
    assert listing.virtual_cameras[1].formats == []  # exclusive_caps=1 and no writer
    assert ["--list-formats-ext", "-d", "/dev/video0"] in runner.calls
    assert ["--list-formats-ext", "-d", "/dev/video1"] not in runner.calls
    assert listing.modes_note is None


def test_without_v4l2_ctl_the_listing_says_what_to_install() -> None:
    listing = list_devices(platform="linux", sysfs=SYSFS, runner=lambda args: None)
    assert len(listing.cameras) == 2 and all(c.formats is None for c in listing.cameras)
    assert listing.modes_note == "install v4l-utils (v4l2-ctl) to list them"
    assert "modes: install v4l-utils (v4l2-ctl) to list them" in devices_command.render(listing)


def test_other_platforms_probe_indexes_through_opencv() -> None:
    listing = list_devices(platform="darwin", probe=lambda index: index in (0, 2))
    assert [c.node for c in listing.cameras] == ["0", "2"] and listing.virtual_cameras == []
    assert "OpenCV" in listing.method and "not listed on this platform" in listing.modes_note


def test_the_real_v4l2_ctl_runner_reads_a_programs_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    program = tmp_path / "v4l2-ctl"
    program.write_text(f'#!/bin/sh\n[ "$3" = /dev/video0 ] || exit 1\ncat {DATA / "v4l2-ctl" / "video0.txt"}\n')
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert run_v4l2_ctl(["--list-formats-ext", "-d", "/dev/video0"]) == recorded("video0")
    assert run_v4l2_ctl(["--list-formats-ext", "-d", "/dev/video9"]) is None  # it failed: modes unknown
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert run_v4l2_ctl(["--list-formats-ext", "-d", "/dev/video0"]) is None  # not installed


# -- the command ---------------------------------------------------------------------------------------


def test_the_command_shows_cameras_modes_and_virtual_cameras(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(devices_command, "list_devices", recorded_listing)
    assert main(["devices"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"cameras (V4L2 nodes in {SYSFS / 'class' / 'video4linux'}):"
    assert out[1] == "  /dev/video0  HD Pro Webcam C920"
    assert out[3].startswith("    MJPG (Motion-JPEG, compressed): 640x480 @ 30/24/20/15/10/7.5/5 fps")
    assert "skipped (metadata and other secondary nodes): /dev/video1, /dev/video3" in out
    assert out[out.index("virtual cameras (--output vcam:DEVICE):") + 1 :] == [
        "  /dev/video10  Backdrop (v4l2loopback)",
        "    YU12 (Planar YUV 4:2:0): 1280x720 @ 30 fps",
        "  /dev/video11  Dummy video device (0x0001) (v4l2loopback)",
        "    no capture formats yet: nothing writes to it",
    ]


def test_json_output(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(devices_command, "list_devices", recorded_listing)
    assert main(["devices", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    camera = listing["cameras"][0]
    assert camera["node"] == "/dev/video0" and camera["loopback"] is False
    assert camera["formats"][1]["fourcc"] == "MJPG"
    assert camera["formats"][1]["sizes"][2] == {
        "width": 1920,
        "height": 1080,
        "max_width": None,
        "max_height": None,
        "fps": [30.0, 24.0, 20.0, 15.0, 10.0, 7.5, 5.0],
        "min_fps": None,
        "max_fps": None,
    }
    assert [v["node"] for v in listing["virtual_cameras"]] == ["/dev/video10", "/dev/video11"]


@pytest.mark.skipif(Path("/sys/class/video4linux").exists(), reason="this machine has video devices")
def test_no_camera_is_a_message_and_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devices"]) == 0  # the real listing of this machine
    out = capsys.readouterr().out
    assert out.startswith("no cameras found (V4L2 nodes in /sys/class/video4linux)\n")
    assert "no virtual cameras: sudo modprobe v4l2loopback" in out
