"""Write-target safety: before a run touches anything, no file it writes may be one it reads, or written twice.

The write targets are the outputs that are paths (a video file or a PNG folder) and ``pipeline.stats_json``;
the read paths are the source (a file or a folder), the background (a file) and the config file. Paths are
compared resolved (``os.path.realpath``) and, where they exist, by device and inode, so a symlink or a hard
link to the source counts as the source. File outputs are written under a hidden ``.NAME.PID.partial``
first (see stream.sinks.video_file); the check is on the final names, which the rename replaces.

An output named with strftime fields (segments, see stream.sinks.segment_names) has no one name: it clashes
with every path its pattern could expand to (``rec/%Y%m%d.mp4`` with a source ``rec/20260101.mp4``). Its
segments never overwrite an existing file either (a taken name gets a suffix), whatever expands later.

``backdrop serve`` applies the same check to every stream (stream.config.serve: ``ServeConfig.check``), and
between streams: no stream writes another's source or background (:func:`crossed`) or output, and its
``--stats-json`` is none of them nor the config file (:func:`check_serve_stats`). What these checks cannot see —
another process writing the same file — the file sinks' write lock refuses (stream.sinks.write_lock).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from backdrop.errors import ConfigError, SinkError
from backdrop.stream.config.run import RunConfig
from backdrop.stream.sinks.png_folder import earlier_frames
from backdrop.stream.sinks.segment_names import is_segmented, literal_name, pattern_regex

if TYPE_CHECKING:
    from backdrop.stream.config.serve import ServeConfig

STATS_ROLE = "--stats-json"


@dataclass(frozen=True)
class Place:
    """A path the run reads or writes, with the role it plays there (e.g. "the source", "output")."""

    role: str
    name: str  # as the user spelled it
    real: str
    inode: tuple[int, int] | None  # (st_dev, st_ino) when the path exists
    pattern: re.Pattern[str] | None = None  # every real path a segmented output can write

    @classmethod
    def of(cls, role: str, name: str | Path) -> Place:
        segmented = role == "output" and is_segmented(str(name))
        path = literal_name(str(name)) if role == "output" and not segmented else name  # what a plain output writes
        try:
            real = os.path.realpath(path)
        except ValueError as e:  # a NUL byte
            raise ConfigError(f"{role} {str(name)!r} is not a usable path: {e}") from e
        if segmented:
            return cls(role, str(name), real, None, pattern_regex(real))  # expands to names under real folders
        try:
            info = os.stat(path)
        except OSError:  # not there yet, or a dangling link: only its resolved name can clash
            return cls(role, str(name), real, None)
        return cls(role, str(name), real, (info.st_dev, info.st_ino))

    @property
    def the(self) -> str:
        """The role with an article, for "… is the output x.mp4"."""
        return self.role if self.role.startswith("the ") else f"the {self.role}"

    def same(self, other: Place) -> bool:
        """True when both are one path, or one is a pattern that can expand to the other (two patterns: equal)."""
        if self.pattern is not None and other.pattern is None:
            return other.expands(self.pattern)
        if other.pattern is not None and self.pattern is None:
            return self.expands(other.pattern)
        return self.real == other.real or (self.inode is not None and self.inode == other.inode)

    def expands(self, pattern: re.Pattern[str]) -> bool:
        """True when ``pattern`` (another place's) can expand to this path."""
        return any(pattern.fullmatch(name) for name in (self.real, os.path.abspath(self.name)))


def is_path_output(spec: str) -> bool:
    """True for outputs that name a file or a PNG folder; null, window, vcam[:DEV] and URLs are not paths."""
    return spec not in ("null", "window", "vcam") and not spec.startswith("vcam:") and "://" not in spec


def read_places(config: RunConfig, config_path: Path | None) -> list[Place]:
    """What the run reads from disk: the source file or folder, the background file, the config file."""
    source, background = config.source.uri, config.background
    candidates: list[tuple[str, str | Path, bool]] = [
        ("the source", source, os.path.isfile(source) or os.path.isdir(source)),
        ("the background", background, os.path.isfile(background)),
    ]
    if config_path is not None:
        candidates.append(("the config file", config_path, os.path.isfile(config_path)))
    return [Place.of(role, name) for role, name, on_disk in candidates if on_disk]


def write_places(config: RunConfig) -> list[Place]:
    """What the run writes: each path output, then the stats file."""
    places = [Place.of("output", spec) for spec in config.outputs if is_path_output(spec)]
    if config.pipeline.stats_json:
        places.append(Place.of(STATS_ROLE, config.pipeline.stats_json))
    return places


def check_targets(config: RunConfig, *, config_path: Path | None) -> None:
    """Raise a one-line error when a write target is a read path or another target, or the stats file is unwritable.

    Called before anything is opened, so a clash never costs the input.
    """
    reads = read_places(config, config_path)
    writes = write_places(config)
    for i, target in enumerate(writes):
        noun = "stats file" if target.role == STATS_ROLE else "output"
        for place in reads:
            if target.same(place):
                verb = "could name" if target.pattern else "is"
                raise ConfigError(
                    f"{target.role} {target.name} {verb} {place.role} {place.name}: choose another {noun}"
                )
        for earlier in writes[:i]:
            if target.same(earlier):
                if (target.role, target.name) == (earlier.role, earlier.name):
                    raise ConfigError(f"{target.role} {target.name} is given twice")
                verb = "could also name" if target.pattern or earlier.pattern else "is also"
                raise ConfigError(f"{target.role} {target.name} {verb} the {earlier.role} {earlier.name}")
    if config.pipeline.stats_json:
        check_stats_path(config.pipeline.stats_json)


def replaced_targets(config: RunConfig) -> list[str]:
    """What the run would replace, each as "ROLE NAME already …": an existing output file or stats file, a PNG folder
    holding frames. Segmented outputs replace nothing (a taken name gets a suffix)."""
    found = []
    for place in write_places(config):
        if place.pattern is not None:
            continue
        path = Path(literal_name(place.name)) if place.role == "output" else Path(place.name)
        frames = len(earlier_frames(path))
        if frames:
            found.append(f"{place.role} {place.name} already holds {frames} PNG frames")
        elif path.is_file() or path.is_symlink():
            found.append(f"{place.role} {place.name} already exists")
    return found


def crossed(config: RunConfig, other: RunConfig) -> tuple[Place, Place] | None:
    """The first output of ``config`` that is a path ``other`` reads (its source or background), with that path."""
    for target in write_places(config):
        if target.role == "output":
            for place in read_places(other, None):
                if target.same(place):
                    return target, place
    return None


def check_serve_stats(path: str, config: ServeConfig) -> None:
    """Raise a one-line error when serve's ``--stats-json`` is its config file or any stream's source, background or
    output, or cannot be written."""
    stats = Place.of(STATS_ROLE, path)
    if config.path is not None and os.path.isfile(config.path):
        place = Place.of("the config file", config.path)
        if stats.same(place):
            raise ConfigError(f"{STATS_ROLE} {path} is the config file {place.name}: choose another stats file")
    for stream in config.streams:
        for place in stream_places(stream.apply(config.defaults)):
            if stats.same(place):
                verb = "could be" if place.pattern else "is"
                raise ConfigError(
                    f"{STATS_ROLE} {path} {verb} {place.the} {place.name} of stream {stream.name!r}: "
                    "choose another stats file"
                )
    check_stats_path(path)


def stream_places(config: RunConfig) -> list[Place]:
    """The paths a serve stream reads and writes: its source, background and path outputs (serve writes no
    per-stream stats file, and the config file is the server's)."""
    return [*read_places(config, None), *(place for place in write_places(config) if place.role == "output")]


def check_stats_path(path: str) -> None:
    """Raise SinkError unless the stats file can be created or overwritten: found now, not after the run."""
    target = Path(path)
    folder = target.parent
    if target.is_dir():
        raise SinkError(f"cannot write stats to {path}: it is a folder")
    if not folder.is_dir():
        raise SinkError(f"cannot write stats to {path}: folder {folder} does not exist")
    writable = os.access(target, os.W_OK) if target.exists() else os.access(folder, os.W_OK | os.X_OK)
    if not writable:
        raise SinkError(f"cannot write stats to {path}: permission denied")
