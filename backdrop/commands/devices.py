"""``backdrop devices``: the cameras (with their modes) and the virtual cameras this machine has.

No camera is an answer, not an error: the command says so and exits 0.
"""

from __future__ import annotations

import argparse
import dataclasses
import json

from backdrop.stream.devices.discovery import DeviceListing, VideoDevice, list_devices


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "devices",
        help="list cameras, their modes, and virtual cameras",
        description="Cameras for --source (with the modes for source.width/height/fps/pixel_format) and "
        "virtual cameras for --output vcam.",
    )
    parser.add_argument("--json", action="store_true", help="print the listing as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    listing = list_devices()
    print(json.dumps(dataclasses.asdict(listing), indent=2) if args.json else render(listing))
    return 0


def render(listing: DeviceListing) -> str:
    """The listing as text for a person."""
    from backdrop.stream.sinks.vcam import LOAD_LOOPBACK

    lines = [f"cameras ({listing.method}):" if listing.cameras else f"no cameras found ({listing.method})"]
    for camera in listing.cameras:
        lines.append(f"  {camera.node}  {camera.name}")
        lines += [f"    {line}" for line in _modes(camera, listing.modes_note)]
    if listing.skipped:
        lines.append(f"skipped (metadata and other secondary nodes): {', '.join(listing.skipped)}")
    if listing.virtual_cameras:
        lines.append("virtual cameras (--output vcam:DEVICE):")
        for device in listing.virtual_cameras:
            lines.append(f"  {device.node}  {device.name} (v4l2loopback)")
            if device.formats == []:
                lines.append("    no capture formats yet: nothing writes to it")
            elif device.formats:  # what a writer sends now
                lines += [f"    {fmt.describe()}" for fmt in device.formats]
    elif listing.platform.startswith("linux"):
        lines.append(f"no virtual cameras: {LOAD_LOOPBACK}")
    return "\n".join(lines)


def _modes(device: VideoDevice, note: str | None) -> list[str]:
    if device.formats is None:
        return [f"modes: {note}"] if note else []
    return [fmt.describe() for fmt in device.formats] or ["modes: none listed"]
