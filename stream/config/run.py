"""Run configuration: the schema of ``backdrop run`` as frozen dataclasses, loaded by :mod:`typed_yaml`.

Every CLI flag of ``backdrop run`` maps onto one field here, so a YAML file and the command line describe
the same thing; flags are applied on top of the file with :func:`with_overrides`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from backdrop.stream.config.typed_yaml import assign, build, read_yaml, replace_key, require, within


@dataclass(frozen=True)
class SourceConfig:
    """Where frames come from, and how patient to be with network sources."""

    uri: str = "testsrc"
    fps: float = 30.0  # for image folders and testsrc, and asked of webcams; files and streams report their own
    transport: str = "tcp"  # rtsp transport: tcp or udp
    open_timeout_s: float = 5.0
    read_timeout_s: float = 2.0
    max_backoff_s: float = 10.0
    open_retries: int = 2  # quick retries of the first connection before a network source is an error
    give_up_after_s: float | None = None  # once playing, an outage this long ends the run; None retries forever
    width: int | None = None  # webcam mode asked for (with height); None keeps the camera's default
    height: int | None = None
    pixel_format: str | None = None  # webcam FourCC such as MJPG or YUYV; None keeps the camera's default
    # auto: when an output is watched live (window, http:// preview, rtsp://, vcam), not file → file; live sources
    # (webcam, RTSP, HTTP) come at their own pace and are never held back (stream/sources/pacing.py)
    pace: bool | Literal["auto"] = "auto"  # play a file or folder at its own frame rate, like a player

    def validate(self) -> None:
        require(self.transport in ("tcp", "udp"), "source.transport", "must be tcp or udp")
        within("source.fps", self.fps, 0, 1000, above=True)
        for name in ("open_timeout_s", "read_timeout_s", "max_backoff_s"):
            within(f"source.{name}", getattr(self, name), 0, 3600, above=True)
        within("source.open_retries", self.open_retries, 0, 20)
        gave_up = self.give_up_after_s
        require(gave_up is None or gave_up > 0, "source.give_up_after_s", "must be > 0, or null to retry forever")
        require((self.width is None) == (self.height is None), "source.width", "set width and height together")
        for name in ("width", "height"):
            if getattr(self, name) is not None:
                within(f"source.{name}", getattr(self, name), 16, 16384)
        fourcc = self.pixel_format
        ok = fourcc is None or (len(fourcc) == 4 and fourcc.isascii() and fourcc.isprintable())
        require(ok, "source.pixel_format", "must be a four-character code such as MJPG or YUYV")


@dataclass(frozen=True)
class ModelConfig:
    """Which segmentation model runs on which runtime."""

    name: str = "general"  # general, landscape or a path to a model with its .json contract
    runtime: str = "auto"  # onnxruntime, tflite, keras, tensorrt or auto
    threads: int | None = 1  # runtime threads; 1 leaves the other core to the other stages, None lets it decide
    batch_size: int = 1  # frames inferred together when several are waiting (pays on GPUs; on CPU 1 is fastest)
    # frames between inferred ones (DeepStream's nvinfer interval), which get the previous matte moved along the
    # motion; auto: infer when the scene changed (stream/core/schedule.py), at most max_interval frames apart
    interval: int | Literal["auto"] = 0
    max_interval: int = 8

    def validate(self) -> None:
        within("model.batch_size", self.batch_size, 1, 64)
        if self.interval != "auto":
            within("model.interval", self.interval, 0, 30)
        within("model.max_interval", self.max_interval, 1, 30)
        if self.threads is not None:
            within("model.threads", self.threads, 1, 256)


@dataclass(frozen=True)
class MaskConfig:
    """How the model's low-resolution mask becomes a full-resolution alpha matte (see stream/compositing/matte.py)."""

    mode: str = "soft"  # soft: keep probabilities; threshold: binary at `threshold`
    threshold: float = 0.5
    temporal: str = "motion"  # motion: smooth only where the frame is still; ema: everywhere; none
    smoothing: float = 0.7  # weight of the previous matte (motion: where the frame is still), 0 (off) … <1
    refine: str = "edge"  # edge (tightened guided filter against the frame) or none
    refine_size: int = 256  # long side, in pixels, at which refinement runs
    refine_radius: int = 3  # guided-filter radius at refine_size
    refine_eps: float = 0.003  # guided-filter regularisation (larger = follows the frame's edges less)
    levels_low: float = 0.0  # alpha at or below this becomes 0 …
    levels_high: float = 1.0  # … at or above this 1; stretched linearly between
    gamma: float = 1.0  # alpha ** gamma after the levels: below 1 keeps hair and soft parts opaque
    feather: float = 0.0  # Gaussian sigma softening the edge, in pixels of a 720-line output (scaled); 0 = off
    light_wrap: float = 0.0  # 0 … 1: how much blurred backdrop light bleeds onto the edge band; 0 = off
    # the edge band gets the person's estimated colours, not the old background's; auto: on every background but
    # blur, whose backdrop is the old background itself (blurred), so the band's old colours already belong there
    clean_edges: bool | Literal["auto"] = "auto"

    def validate(self) -> None:
        require(self.mode in ("soft", "threshold"), "mask.mode", "must be soft or threshold")
        require(0.0 < self.threshold < 1.0, "mask.threshold", "must be in (0, 1)")
        require(self.temporal in ("motion", "ema", "none"), "mask.temporal", "must be motion, ema or none")
        require(0.0 <= self.smoothing < 1.0, "mask.smoothing", "must be in [0, 1)")
        require(self.refine in ("edge", "none"), "mask.refine", "must be edge or none")
        within("mask.refine_size", self.refine_size, 16, 4096)
        within("mask.refine_radius", self.refine_radius, 1, 64)
        within("mask.refine_eps", self.refine_eps, 0, 1, above=True)
        within("mask.levels_low", self.levels_low, 0, 1)
        within("mask.levels_high", self.levels_high, 0, 1)
        require(self.levels_low < self.levels_high, "mask.levels_high", "must be above mask.levels_low")
        within("mask.gamma", self.gamma, 0.1, 10)
        within("mask.feather", self.feather, 0, 50)
        within("mask.light_wrap", self.light_wrap, 0, 1)


@dataclass(frozen=True)
class EncoderConfig:
    """Settings of file outputs: H.264 (libx264 through PyAV), and whether they keep the source's audio."""

    preset: str = "ultrafast"
    crf: int = 23
    tune: str | None = None  # e.g. zerolatency (sliced threads: lower latency, lower throughput)
    threads: int = 0  # 0 lets x264 choose
    audio: bool = True  # a video file source's audio goes into video file outputs
    segment_s: float = 60.0  # length of each segment of an output named with strftime fields (%Y%m%d-%H%M%S.mp4)

    def validate(self) -> None:
        presets = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
        require(self.preset in presets, "encoder.preset", "must be one of " + ", ".join(presets))
        within("encoder.crf", self.crf, 0, 51)
        within("encoder.threads", self.threads, 0, 64)
        within("encoder.segment_s", self.segment_s, 0, 86400, above=True)


@dataclass(frozen=True)
class PipelineConfig:
    """Queue sizes and run length."""

    queue_size: int = 4  # frames each inter-stage queue holds
    max_frames: int | None = None  # stop after this many frames are composited
    stats_json: str | None = None  # write the final stats here
    progress: bool = True  # show a live progress line on stderr

    def validate(self) -> None:
        within("pipeline.queue_size", self.queue_size, 1, 256)
        require(self.max_frames is None or self.max_frames >= 1, "pipeline.max_frames", "must be >= 1")


@dataclass(frozen=True)
class ControlsConfig:
    """Live controls (window hotkeys, preview buttons): what they cycle through and where snapshots go."""

    backgrounds: tuple[str, ...] = ()  # cycled with next/previous after the run's own `background`
    snapshot_dir: str = "snapshots"
    blur_step: int = 10  # blur up/down changes the kernel by this much (even, so it stays odd)

    def validate(self) -> None:
        require(self.blur_step % 2 == 0, "controls.blur_step", "must be even")
        within("controls.blur_step", self.blur_step, 2, 128)
        require(bool(self.snapshot_dir), "controls.snapshot_dir", "must not be empty")
        for i, spec in enumerate(self.backgrounds):
            require(spec != "transparent", f"controls.backgrounds[{i}]", "transparent cannot be switched to live")


@dataclass(frozen=True)
class HttpConfig:
    """Whom the HTTP surfaces (browser previews, serve's API) answer: see README "Security"."""

    token_file: str | None = None  # a file holding the bearer token (else $BACKDROP_TOKEN); needed beyond loopback
    allowed_hosts: tuple[str, ...] = ()  # Host names answered besides IP addresses and localhost (a proxy's name)

    def validate(self) -> None:
        require(self.token_file is None or bool(self.token_file), "http.token_file", "must not be empty")
        for i, name in enumerate(self.allowed_hosts):
            ok = bool(name) and all(c.isalnum() or c in "-._" for c in name)
            require(ok, f"http.allowed_hosts[{i}]", f"{name!r} is not a host name")


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
    controls: ControlsConfig = field(default_factory=ControlsConfig)
    http: HttpConfig = field(default_factory=HttpConfig)

    def validate(self) -> None:
        require(len(self.outputs) >= 1, "outputs", "needs at least one output")
        for section in (self.source, self.model, self.mask, self.encoder, self.pipeline, self.controls, self.http):
            section.validate()


def parse_config(data: Any) -> RunConfig:
    """A validated RunConfig from parsed YAML (a mapping, or None for all defaults)."""
    config = build(RunConfig, data)
    config.validate()
    return config


def load_config(path: str | Path | None, assignments: Sequence[tuple[str, Any]] = ()) -> RunConfig:
    """Read a YAML file, a bundled config by name, or the defaults when ``path`` is None, into a RunConfig.

    ``assignments`` (``--set``'s dotted keys and values) are set in the YAML before it is checked.
    """
    data = None if path is None else read_yaml(Path(path))
    return parse_config(assign(data, assignments))


def with_overrides(config: RunConfig, overrides: dict[str, Any]) -> RunConfig:
    """Apply dotted-key overrides such as ``{"model.runtime": "onnxruntime"}``; None values are skipped."""
    for dotted, value in overrides.items():
        if value is not None:
            config = replace_key(config, dotted, value)
    config.validate()
    return config
