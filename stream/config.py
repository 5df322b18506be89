"""Run configuration: YAML parsed into typed, frozen dataclasses that reject unknown keys and bad values.

Every CLI flag of ``backdrop run`` maps onto one field here, so a YAML file and the command line describe
the same thing; flags are applied on top of the file with :func:`with_overrides`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from backdrop.errors import ConfigError


@dataclass(frozen=True)
class SourceConfig:
    """Where frames come from, and how patient to be with network sources."""

    uri: str = "testsrc"
    fps: float = 30.0  # for image folders and testsrc; files and devices report their own
    transport: str = "tcp"  # rtsp transport: tcp or udp
    open_timeout_s: float = 5.0
    read_timeout_s: float = 2.0
    max_backoff_s: float = 10.0

    def validate(self) -> None:
        _require(self.transport in ("tcp", "udp"), "source.transport", "must be tcp or udp")
        for name in ("fps", "open_timeout_s", "read_timeout_s", "max_backoff_s"):
            _require(getattr(self, name) > 0, f"source.{name}", "must be > 0")


@dataclass(frozen=True)
class ModelConfig:
    """Which segmentation model runs on which runtime."""

    name: str = "general"  # general, landscape or a path to a model with its .json contract
    runtime: str = "auto"  # onnxruntime, tflite, keras, tensorrt or auto
    threads: int | None = 1  # runtime threads; 1 leaves the other core to the other stages, None lets it decide
    batch_size: int = 1  # frames inferred together when several are waiting (pays on GPUs; on CPU 1 is fastest)

    def validate(self) -> None:
        _require(self.batch_size >= 1, "model.batch_size", "must be >= 1")
        _require(self.threads is None or self.threads >= 1, "model.threads", "must be >= 1")


@dataclass(frozen=True)
class MaskConfig:
    """How the model's low-resolution mask becomes a full-resolution alpha matte."""

    mode: str = "soft"  # soft: keep probabilities; threshold: binary at `threshold`
    threshold: float = 0.5
    smoothing: float = 0.0  # EMA weight of the previous frame's mask, 0 (off) … <1
    refine: str = "guided"  # guided (fast guided filter against the frame) or none
    refine_size: int = 256  # long side, in pixels, at which refinement runs
    refine_radius: int = 4  # guided-filter radius at refine_size
    refine_eps: float = 0.01  # guided-filter regularisation (larger = smoother)
    feather: float = 1.5  # Gaussian sigma in full-resolution pixels softening the edge; 0 = off

    def validate(self) -> None:
        _require(self.mode in ("soft", "threshold"), "mask.mode", "must be soft or threshold")
        _require(0.0 < self.threshold < 1.0, "mask.threshold", "must be in (0, 1)")
        _require(0.0 <= self.smoothing < 1.0, "mask.smoothing", "must be in [0, 1)")
        _require(self.refine in ("guided", "none"), "mask.refine", "must be guided or none")
        _require(self.refine_size >= 16, "mask.refine_size", "must be >= 16")
        _require(self.refine_radius >= 1, "mask.refine_radius", "must be >= 1")
        _require(self.refine_eps > 0, "mask.refine_eps", "must be > 0")
        _require(self.feather >= 0, "mask.feather", "must be >= 0")


@dataclass(frozen=True)
class EncoderConfig:
    """H.264 settings of file outputs (libx264 through PyAV)."""

    preset: str = "ultrafast"
    crf: int = 23
    tune: str | None = None  # e.g. zerolatency (sliced threads: lower latency, lower throughput)
    threads: int = 0  # 0 lets x264 choose

    def validate(self) -> None:
        presets = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
        _require(self.preset in presets, "encoder.preset", "must be one of " + ", ".join(presets))
        _require(0 <= self.crf <= 51, "encoder.crf", "must be in [0, 51]")
        _require(self.threads >= 0, "encoder.threads", "must be >= 0")


@dataclass(frozen=True)
class PipelineConfig:
    """Queue sizes and run length."""

    queue_size: int = 4  # frames each inter-stage queue holds
    max_frames: int | None = None  # stop after this many frames are composited
    stats_json: str | None = None  # write the final stats here
    progress: bool = True  # show a live progress line on stderr

    def validate(self) -> None:
        _require(self.queue_size >= 1, "pipeline.queue_size", "must be >= 1")
        _require(self.max_frames is None or self.max_frames >= 1, "pipeline.max_frames", "must be >= 1")


@dataclass(frozen=True)
class RunConfig:
    """Everything ``backdrop run`` needs."""

    source: SourceConfig = field(default_factory=SourceConfig)
    background: str = "blur:21"
    outputs: tuple[str, ...] = ("out.mp4",)
    model: ModelConfig = field(default_factory=ModelConfig)
    mask: MaskConfig = field(default_factory=MaskConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)

    def validate(self) -> None:
        _require(len(self.outputs) >= 1, "outputs", "needs at least one output")
        for section in (self.source, self.model, self.mask, self.encoder, self.pipeline):
            section.validate()


def _require(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: {message}")


def _convert(value: Any, hint: Any, key: str) -> Any:
    """Check/convert one YAML value against a field's type hint."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        (inner,) = [o for o in options if o is not type(None)]
        return _convert(value, inner, key)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key)
    if origin is tuple:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return tuple(_convert(item, str, f"{key}[{i}]") for i, item in enumerate(items))
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint is str and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
        return value
    raise ConfigError(f"{key}: expected {hint.__name__}, got {value!r}")


def _build(cls: type, data: Any, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a mapping, naming the first unknown key or bad value."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if key not in names:
            raise ConfigError(f"unknown key {dotted!r} (known: {', '.join(sorted(names))})")
        kwargs[key] = _convert(value, hints[key], dotted)
    return cls(**kwargs)


def parse_config(data: Any) -> RunConfig:
    """A validated RunConfig from parsed YAML (a mapping, or None for all defaults)."""
    config = _build(RunConfig, data)
    config.validate()
    return config


def load_config(path: str | Path | None) -> RunConfig:
    """Read a YAML file (or the defaults when ``path`` is None) into a validated RunConfig."""
    if path is None:
        return parse_config(None)
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise ConfigError(f"cannot read config {path}: {e.strerror or e}") from e
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"config {path}{where} is not valid YAML: {getattr(e, 'problem', e)}") from e
    return parse_config(data)


def with_overrides(config: RunConfig, overrides: dict[str, Any]) -> RunConfig:
    """Apply dotted-key overrides such as ``{"model.runtime": "onnxruntime"}``; None values are skipped."""
    for dotted, value in overrides.items():
        if value is None:
            continue
        config = _replace_path(config, dotted.split("."), value, dotted)
    config.validate()
    return config


def _replace_path(obj: Any, path: list[str], value: Any, dotted: str) -> Any:
    head, *rest = path
    hints = typing.get_type_hints(type(obj))
    if head not in hints:
        raise ConfigError(f"unknown key {dotted!r}")
    new = _replace_path(getattr(obj, head), rest, value, dotted) if rest else _convert(value, hints[head], dotted)
    return dataclasses.replace(obj, **{head: new})
