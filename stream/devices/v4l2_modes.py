"""The modes of a V4L2 camera, parsed from ``v4l2-ctl --list-formats-ext`` (v4l-utils).

Both layouts v4l-utils has printed are read: ``[0]: 'MJPG' (Motion-JPEG, compressed)`` (1.14 on) and the
older ``Pixel Format: 'MJPG' (compressed)`` followed by ``Name: Motion-JPEG``. Sizes are discrete or a
stepwise/continuous range; v4l2-ctl lists frame intervals only under discrete sizes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_FORMAT = re.compile(r"^\s*(?:\[\d+\]:|Pixel Format\s*:)\s*'(?P<fourcc>.{4})'\s*(?:\((?P<description>.*)\))?\s*$")
_NAME = re.compile(r"^\s*Name\s*:\s*(?P<name>.*?)\s*$")
_SIZE = re.compile(r"^\s*Size\s*:\s*Discrete\s+(?P<w>\d+)x(?P<h>\d+)")
_SIZE_RANGE = re.compile(r"^\s*Size\s*:\s*(?:Stepwise|Continuous)\s+(?P<w>\d+)x(?P<h>\d+)\s*-\s*(?P<W>\d+)x(?P<H>\d+)")
_INTERVAL = re.compile(r"^\s*Interval\s*:\s*Discrete\s+(?P<s>[\d.]+)s(?:\s*\((?P<fps>[\d.]+)\s*fps\))?")
_INTERVAL_RANGE = re.compile(
    r"^\s*Interval\s*:\s*(?:Stepwise|Continuous)\s+(?P<min>[\d.]+)s\s*-\s*(?P<max>[\d.]+)s"
    r"(?:.*\((?P<low>[\d.]+)-(?P<high>[\d.]+)\s*fps\))?"
)


@dataclass
class FrameSize:
    """One size of a format and its frame rates, as listed (drivers list the fastest first).

    A range of sizes (stepwise or continuous) has ``max_width``/``max_height``; a range of rates sets
    ``min_fps``/``max_fps`` instead of ``fps``.
    """

    width: int
    height: int
    max_width: int | None = None
    max_height: int | None = None
    fps: list[float] = field(default_factory=list)
    min_fps: float | None = None
    max_fps: float | None = None

    def describe(self) -> str:
        size = f"{self.width}x{self.height}"
        if self.max_width is not None:
            size += f"-{self.max_width}x{self.max_height}"
        if self.fps:
            return f"{size} @ {'/'.join(_rate(f) for f in self.fps)} fps"
        if self.max_fps is not None:
            return f"{size} @ {_rate(self.min_fps or 0)}-{_rate(self.max_fps)} fps"
        return size


@dataclass
class PixelFormatModes:
    """A pixel format (FourCC as the driver names it, e.g. MJPG, YUYV) and the sizes it comes in."""

    fourcc: str
    description: str
    sizes: list[FrameSize] = field(default_factory=list)

    def describe(self) -> str:
        head = f"{self.fourcc.rstrip()} ({self.description})" if self.description else self.fourcc.rstrip()
        return f"{head}: {', '.join(s.describe() for s in self.sizes) or 'no sizes listed'}"


def parse_list_formats_ext(text: str) -> list[PixelFormatModes]:
    """The formats, sizes and rates in ``v4l2-ctl --list-formats-ext`` output; lines it does not know are skipped."""
    formats: list[PixelFormatModes] = []
    for line in text.splitlines():
        if match := _FORMAT.match(line):
            description = (match["description"] or "").strip()
            formats.append(PixelFormatModes(match["fourcc"], description))
        elif not formats:
            continue
        elif (match := _NAME.match(line)) and not formats[-1].sizes:
            formats[-1].description = _older_description(match["name"], formats[-1].description)
        elif match := _SIZE.match(line):
            formats[-1].sizes.append(FrameSize(int(match["w"]), int(match["h"])))
        elif match := _SIZE_RANGE.match(line):
            formats[-1].sizes.append(
                FrameSize(int(match["w"]), int(match["h"]), max_width=int(match["W"]), max_height=int(match["H"]))
            )
        elif formats[-1].sizes and (match := _INTERVAL.match(line)):
            seconds = float(match["s"])
            fps = float(match["fps"]) if match["fps"] else (1.0 / seconds if seconds > 0 else 0.0)
            formats[-1].sizes[-1].fps.append(fps)
        elif formats[-1].sizes and (match := _INTERVAL_RANGE.match(line)):
            size = formats[-1].sizes[-1]
            if match["high"]:  # the rates v4l2-ctl computed from the exact fractions
                size.min_fps, size.max_fps = float(match["low"]), float(match["high"])
            else:
                shortest, longest = float(match["min"]), float(match["max"])
                size.min_fps = 1.0 / longest if longest > 0 else None
                size.max_fps = 1.0 / shortest if shortest > 0 else None
    return formats


def _older_description(name: str, flags: str) -> str:
    """Older v4l-utils print the name on its own line and only flags such as ``compressed`` in parentheses."""
    return f"{name}, {flags}" if flags else name


def _rate(fps: float) -> str:
    return f"{round(fps, 2):g}"
