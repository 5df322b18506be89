"""``backdrop serve`` configuration: the run config's keys as defaults, and a list of streams that override them.

A stream is ``{name, source, background, outputs}`` plus, optionally, its own ``mask``, ``encoder`` and
``pipeline`` sections. Every key is parsed by the loader the run config uses (``typed_yaml``), so the same key
means the same thing in ``backdrop run`` and ``backdrop serve``; errors name the stream (``streams[1].source.uri: …``).
The model is not a per-stream key: every stream shares the one model.
"""

from __future__ import annotations

import dataclasses
import re
import reprlib
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from backdrop.errors import BackdropError, CapacityError, ConfigError
from backdrop.stream.config.run import RunConfig, SourceConfig, parse_config
from backdrop.stream.config.typed_yaml import assign, build, convert, read_yaml, replace_key, require, within
from backdrop.stream.sinks.targets import STATS_ROLE, Place, check_targets, crossed, is_path_output, stream_places

STREAM_SECTIONS = ("mask", "encoder", "pipeline")  # run-config sections a stream may override in part
STREAM_KEYS = ("name", "source", "background", "outputs", *STREAM_SECTIONS)
RUNCONFIG_KEYS = frozenset(f.name for f in dataclasses.fields(RunConfig))
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # safe in URLs, metric labels and file names


@dataclass(frozen=True)
class ServeOptions:
    """How the shared inference batches frames across streams, how failed streams are retried, and what streams
    added through the API may do (config-file streams are the operator's own and unrestricted)."""

    batch_wait_ms: float = 5.0  # how long the first frame of a batch waits for other streams' frames
    inference_workers: int = 1  # model calls in parallel (onnxruntime only): one collects while another runs
    restart_initial_s: float = 1.0  # first retry of a failed stream; doubles up to restart_max_s
    restart_max_s: float = 30.0
    actor_cpus: float = 1.0  # --engine ray: CPUs each actor reserves (scheduling units, see ray_engine)
    actor_gpus: float | None = None  # --engine ray: GPUs each actor reserves; None: a share where a node has any
    streams_per_actor: int = 1  # --engine ray: streams that share one actor, its node and its batched model
    actor_restarts: int = -1  # --engine ray: how often Ray restarts a dead actor; -1: always
    max_streams: int = 32  # streams at once, the config's and the API's together
    output_root: str | None = None  # API streams write files and folders only beneath it; None: no files at all
    publish_hosts: tuple[str, ...] = ()  # RTSP servers API streams may publish to (none by default)
    preview_hosts: tuple[str, ...] = ()  # addresses beyond loopback an API stream's preview may listen on

    def validate(self) -> None:
        within("serve.batch_wait_ms", self.batch_wait_ms, 0, 1000)
        within("serve.inference_workers", self.inference_workers, 1, 16)
        within("serve.restart_initial_s", self.restart_initial_s, 0, 3600, above=True)
        within("serve.restart_max_s", self.restart_max_s, self.restart_initial_s, 86400)
        within("serve.actor_cpus", self.actor_cpus, 0, 1024)
        require(self.actor_gpus is None or 0 <= self.actor_gpus <= 64, "serve.actor_gpus", "must be in [0, 64]")
        within("serve.streams_per_actor", self.streams_per_actor, 1, 1024)
        within("serve.actor_restarts", self.actor_restarts, -1, 10**6)
        within("serve.max_streams", self.max_streams, 1, 1024)
        require(self.output_root is None or bool(self.output_root), "serve.output_root", "must not be empty")


@dataclass(frozen=True)
class StreamConfig:
    """One stream: its name, its source, and the keys it sets itself (applied over the serve defaults)."""

    name: str
    source: SourceConfig
    background: str | None = None  # None: the default background
    outputs: tuple[str, ...] = ()
    overrides: tuple[tuple[str, Any], ...] = ()  # (dotted key, value) of every key the stream sets, sources' too

    @property
    def previews(self) -> list[str]:
        """The stream's browser-preview outputs, which the overview page links to."""
        return [output for output in self.outputs if output.startswith("http://")]

    def apply(self, defaults: RunConfig) -> RunConfig:
        """The stream's effective run config: ``defaults`` with this stream's keys on top."""
        config = defaults
        for dotted, value in self.overrides:
            config = replace_key(config, dotted, value)
        return config


@dataclass(frozen=True)
class ServeConfig:
    """The defaults every stream starts from, the streams, and the serve options."""

    defaults: RunConfig = field(default_factory=RunConfig)
    streams: tuple[StreamConfig, ...] = ()
    serve: ServeOptions = field(default_factory=ServeOptions)
    path: Path | None = None  # the file it came from (a stream must not write over it)
    stats_json: str | None = None  # serve's --stats-json: no stream may read or write it

    def stream(self, name: str) -> StreamConfig:
        for stream in self.streams:
            if stream.name == name:
                return stream
        raise ConfigError(f"no stream named {name!r}")

    def run_config(self, stream_name: str) -> RunConfig:
        """The effective RunConfig of one stream."""
        return self.stream(stream_name).apply(self.defaults)

    def with_stream(self, stream: StreamConfig) -> ServeConfig:
        """This config plus ``stream``; ConfigError when its name is taken or its outputs clash with another's,
        CapacityError when ``serve.max_streams`` already run."""
        if len(self.streams) >= self.serve.max_streams:
            raise CapacityError(
                f"serve.max_streams: already {len(self.streams)} streams, the most this server runs (remove one first)"
            )
        config = dataclasses.replace(self, streams=(*self.streams, stream))
        config.check(len(self.streams))
        return config

    def without(self, name: str) -> ServeConfig:
        self.stream(name)
        return dataclasses.replace(self, streams=tuple(s for s in self.streams if s.name != name))

    def check(self, start: int = 0) -> None:
        """Check streams from index ``start`` on: each one's effective config and write targets (run's check), then
        against every earlier stream: its name, and its outputs and read paths against the other's, both ways; and
        that it neither reads nor writes ``stats_json``."""
        for i in range(start, len(self.streams)):
            stream, where = self.streams[i], f"streams[{i}]"
            for earlier in self.streams[:i]:
                if earlier.name == stream.name:
                    raise ConfigError(f"{where}.name: another stream is already named {stream.name!r}")
            try:
                config = stream.apply(self.defaults)
                config.validate()
                check_targets(config, config_path=self.path)
            except BackdropError as e:
                raise ConfigError(_placed(where, str(e))) from e
            for earlier in self.streams[:i]:
                _check_pair(where, config, earlier.name, earlier.apply(self.defaults))
            if self.stats_json is not None:
                _check_stats(where, config, self.stats_json)


def _check_pair(where: str, config: RunConfig, name: str, other: RunConfig) -> None:
    """Neither the stream at ``where`` (``config``) nor stream ``name`` (``other``) writes what the other reads or
    writes, whichever came first."""
    clash = _shared_output(config, other)
    if clash is not None:
        raise ConfigError(f"{where}.outputs: {clash} is also an output of stream {name!r}")
    crossing = crossed(config, other)
    if crossing is not None:
        target, place = crossing
        verb = "could name" if target.pattern else "is"
        raise ConfigError(
            f"{where}.outputs: output {target.name} {verb} {place.role} {place.name} of stream {name!r}: "
            "choose another output"
        )
    crossing = crossed(other, config)
    if crossing is not None:
        target, place = crossing
        verb = "could be named by" if target.pattern else "is"
        raise ConfigError(f"{where}: {place.role} {place.name} {verb} the output {target.name} of stream {name!r}")


def _check_stats(where: str, config: RunConfig, stats_json: str) -> None:
    """The stream at ``where`` neither reads nor writes the server's ``--stats-json``."""
    stats = Place.of(STATS_ROLE, stats_json)
    for place in stream_places(config):
        if stats.same(place):
            verb = "could name" if place.pattern else "is"
            raise ConfigError(f"{where}: {place.the} {place.name} {verb} this server's {STATS_ROLE} {stats_json}")


def _placed(where: str, message: str) -> str:
    """``message`` about a run-config key, placed in the stream: ``source.fps: …`` → ``streams[1].source.fps: …``."""
    key = message.split(":", 1)[0]
    if key.split(".")[0] in RUNCONFIG_KEYS and " " not in key:
        return f"{where}.{message}"
    return f"{where}: {message}"


def _shared_output(config: RunConfig, other: RunConfig) -> str | None:
    """An output of ``config`` that ``other`` writes too (the same file, folder, URL or device), else None."""
    for spec in config.outputs:
        if spec == "null":
            continue
        for theirs in other.outputs:
            if is_path_output(spec) and is_path_output(theirs):
                if Place.of("output", spec).same(Place.of("output", theirs)):
                    return spec
            elif spec == theirs or _same_http_port(spec, theirs):
                return spec
    return None


def _same_http_port(spec: str, other: str) -> bool:
    """Two preview servers on one port cannot both listen."""
    first, second = (re.fullmatch(r"https?://[^/]*?:(\d+)/?.*", s) for s in (spec, other))
    return first is not None and second is not None and first.group(1) == second.group(1)


def parse_stream(data: Any, index: int) -> StreamConfig:
    """One stream from its parsed YAML/JSON: a mapping with a name, a source (a mapping or a plain URI string),
    outputs, and optionally a background and mask/encoder/pipeline keys. Errors name ``streams[index]``."""
    where = f"streams[{index}]"
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping with name, source and outputs, got {reprlib.repr(data)}")
    for key in data:
        if key not in STREAM_KEYS:
            raise ConfigError(f"unknown key '{where}.{key}' (known: {', '.join(sorted(STREAM_KEYS))})")
    for key in ("name", "source", "outputs"):
        if data.get(key) is None:
            raise ConfigError(f"{where}.{key}: required")
    name = convert(data["name"], str, f"{where}.name")
    if not NAME.fullmatch(name):
        raise ConfigError(f"{where}.name: {name!r} must be 1-64 letters, digits, '_', '.' or '-'")
    source_data = data["source"]
    if isinstance(source_data, str):
        source_data = {"uri": source_data}
    source = build(SourceConfig, source_data, f"{where}.source")
    if not source_data.get("uri"):
        raise ConfigError(f"{where}.source.uri: required (a file, folder, device or rtsp:// URL)")
    overrides: list[tuple[str, Any]] = [(f"source.{key}", getattr(source, key)) for key in source_data]
    outputs = convert(data["outputs"], tuple[str, ...], f"{where}.outputs")
    if not outputs:
        raise ConfigError(f"{where}.outputs: needs at least one output")
    overrides.append(("outputs", outputs))
    background = data.get("background")
    if background is not None:
        background = convert(background, str, f"{where}.background")
        overrides.append(("background", background))
    hints = typing.get_type_hints(RunConfig)
    for section in STREAM_SECTIONS:
        if section in data:
            built = build(hints[section], data[section], f"{where}.{section}")
            overrides += [(f"{section}.{key}", getattr(built, key)) for key in data[section] or {}]
    return StreamConfig(name, source, background, outputs, tuple(overrides))


def parse_serve_config(data: Any, *, path: Path | None = None) -> ServeConfig:
    """A validated ServeConfig from parsed YAML: run-config keys as defaults, ``serve`` options, ``streams``."""
    if not isinstance(data, dict):
        raise ConfigError(f"serve config: expected a mapping with a 'streams' list, got {reprlib.repr(data)}")
    defaults = dict(data)
    if "outputs" in defaults:
        raise ConfigError("outputs: give each stream its own outputs (streams[i].outputs)")
    streams = defaults.pop("streams", None)
    if not isinstance(streams, list):
        raise ConfigError(f"streams: expected a list of streams, got {reprlib.repr(streams)}")
    options = build(ServeOptions, defaults.pop("serve", None), "serve")
    options.validate()
    if len(streams) > options.max_streams:
        raise ConfigError(f"streams: {len(streams)} streams, more than serve.max_streams ({options.max_streams})")
    run_defaults = dataclasses.replace(parse_config(defaults), outputs=())
    config = ServeConfig(
        run_defaults, tuple(parse_stream(item, i) for i, item in enumerate(streams)), options, path=path
    )
    config.check()
    return config


def load_serve_config(path: str | Path, assignments: Sequence[tuple[str, Any]] = ()) -> ServeConfig:
    """Read and validate a serve config file (typed_yaml's reader: size cap, one-line YAML errors); ``assignments``
    (``--set``'s dotted keys and values: stream defaults, ``serve.*``) are set in it first."""
    return parse_serve_config(assign(read_yaml(Path(path)), assignments), path=Path(path))


def parse_stream_text(text: str) -> StreamConfig:
    """One stream from a JSON or YAML body (JSON is YAML), as ``POST /streams`` receives it; index 0 in errors."""
    try:
        data = yaml.safe_load(text)
    except (yaml.YAMLError, ValueError, RecursionError) as e:
        raise ConfigError(f"stream is not valid JSON or YAML: {str(e).splitlines()[0]}") from e
    return parse_stream(data, 0)
