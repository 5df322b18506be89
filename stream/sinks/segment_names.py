"""Names of recording segments: an output path whose name holds strftime fields, as FFmpeg's ``-strftime 1``.

``recordings/lobby/%Y%m%d-%H%M%S.mp4`` names each segment by its start (local time); fields may sit in
folders too (``recordings/%Y-%m-%d/%H%M%S.mp4`` makes a folder a day), and missing folders are created.
Only the fields below are accepted, so a typo is an error rather than a literal ``%Q`` in every name. ``%%``
is a literal ``%`` in every output name: a name whose only ``%`` are ``%%`` holds no field, so it is a plain
output, written under :func:`literal_name`. Each field also has a regular expression for what it can expand
to, with which the write-target check (stream.targets) finds a pattern that could name the run's input.
"""

from __future__ import annotations

import glob
import re
from datetime import datetime
from pathlib import Path

from backdrop.errors import SinkError
from backdrop.stream.sinks.video_file import is_video_file

_DIGITS2 = r"\d{2}"
_ANY = r".*"  # a locale's date and time: may hold a slash
_DAYS = [datetime(2024, 1, day) for day in range(1, 8)]  # Monday to Sunday
_MONTHS = [datetime(2024, month, 1) for month in range(1, 13)]
_HALVES = [datetime(2024, 1, 1, hour) for hour in (0, 12)]


def _spelled(field: str, dates: list[datetime]) -> str:
    """Every way ``%field`` spells these dates (day and month names, AM/PM) in this process's locale."""
    return "|".join(sorted({re.escape(date.strftime(f"%{field}")) for date in dates}))


FIELDS = {  # strftime field → what it can expand to
    "Y": r"-?\d+",
    "G": r"-?\d+",
    "C": _DIGITS2,
    "y": _DIGITS2,
    "g": _DIGITS2,
    "m": _DIGITS2,
    "d": _DIGITS2,
    "e": r"[ \d]\d",
    "j": r"\d{3}",
    "H": _DIGITS2,
    "I": _DIGITS2,
    "k": r"[ \d]\d",
    "l": r"[ \d]\d",
    "M": _DIGITS2,
    "S": _DIGITS2,
    "f": r"\d{6}",
    "s": r"\d+",
    "u": r"\d",
    "w": r"\d",
    "U": _DIGITS2,
    "W": _DIGITS2,
    "V": _DIGITS2,
    "z": r"([+-]\d{4})?",
    "F": r"-?\d+-\d{2}-\d{2}",
    "T": r"\d{2}:\d{2}:\d{2}",
    "R": r"\d{2}:\d{2}",
    "D": r"\d{2}/\d{2}/\d{2}",
    "a": _spelled("a", _DAYS),
    "A": _spelled("A", _DAYS),
    "b": _spelled("b", _MONTHS),
    "B": _spelled("B", _MONTHS),
    "h": _spelled("h", _MONTHS),
    "p": _spelled("p", _HALVES),
    "P": _spelled("P", _HALVES),
    "Z": r"[^/]*",
    "c": _ANY,
    "x": _ANY,
    "X": _ANY,
    "r": _ANY,
}
_FIELD = re.compile(r"%(.?)", re.DOTALL)


def is_segmented(spec: str) -> bool:
    """True when an output spec asks for segments: a video file name holding a ``%`` that is not ``%%``.

    That ``%`` starts a field, known or not (:func:`check_pattern` refuses an unknown one, such as a lone ``%``).
    """
    return is_video_file(spec) and any(name != "%" for name in _FIELD.findall(spec))


def literal_name(spec: str) -> str:
    """The name a plain (not segmented) output writes: each ``%%`` in ``spec`` as one ``%``."""
    return spec.replace("%%", "%")


def check_pattern(pattern: str) -> None:
    """Raise SinkError unless every ``%`` starts a known field and at least one field changes with time."""
    fields = _FIELD.findall(pattern)
    for name in fields:
        if name != "%" and name not in FIELDS:
            raise SinkError(
                f"output {pattern}: %{name} is not a strftime field this recorder knows "
                "(e.g. %Y%m%d-%H%M%S; write %% for a literal %)"
            )
    if all(name == "%" for name in fields):
        raise SinkError(f"output {pattern}: no strftime field names the segments (e.g. %Y%m%d-%H%M%S)")


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """A regular expression matching every path ``pattern`` can expand to (compared whole)."""
    parts, last = [], 0
    for match in _FIELD.finditer(pattern):
        parts.append(re.escape(pattern[last : match.start()]))
        name = match.group(1)
        parts.append("%" if name == "%" else f"(?:{FIELDS.get(name, _ANY)})")
        last = match.end()
    parts.append(re.escape(pattern[last:]))
    return re.compile("".join(parts), re.DOTALL)


def fixed_folder(pattern: str) -> Path:
    """The deepest folder of ``pattern`` that holds no field: it exists for every segment."""
    folder = Path(pattern).parent
    while "%" in str(folder):
        folder = folder.parent
    return folder


def segment_path(pattern: str, start: float) -> Path:
    """The name of the segment starting at ``start`` (seconds since the epoch), in local time."""
    return Path(datetime.fromtimestamp(start).strftime(pattern))


def unused(path: Path) -> Path:
    """``path``, or ``NAME_1.mp4``, ``NAME_2.mp4`` … when a file, folder or a partial of it already has the name.

    Two segments that start within one step of the pattern's finest field (a restart in the same second,
    segments shorter than the pattern can tell apart) must not overwrite each other; ``_`` sorts after the
    ``.`` of the extension, so the names still list in time order.
    """
    candidate, n = path, 0
    while candidate.exists() or glob.glob(glob.escape(str(candidate.with_name(f".{candidate.name}."))) + "*partial"):
        n += 1
        candidate = path.with_name(f"{path.stem}_{n}{path.suffix}")
    return candidate
