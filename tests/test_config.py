"""YAML configs parse into typed dataclasses; unknown keys and bad values are one-line errors naming the key."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from clips import error_lines, run_cli

from backdrop.errors import BackgroundError, ConfigError, SourceError
from backdrop.stream.compositing.backgrounds import parse_background
from backdrop.stream.config.run import RunConfig, load_config, parse_config, with_overrides
from backdrop.stream.config.typed_yaml import MAX_CONFIG_BYTES, bundled_configs
from backdrop.stream.core import assemble
from backdrop.stream.sources.testsrc import TestSource

CONFIGS = sorted(
    p for p in (Path(__file__).resolve().parent.parent / "configs").glob("*.yaml") if p.name != "streams.yaml"
)  # streams.yaml is backdrop serve's: tests/test_serve_config.py


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_bundled_configs_parse(path: Path) -> None:
    config = load_config(path)
    assert isinstance(config, RunConfig)
    assert config.outputs


def test_bundled_configs_exist() -> None:
    assert {p.name for p in CONFIGS} >= {"default.yaml", "webcam.yaml", "file.yaml", "rtsp.yaml"}


def test_default_yaml_spells_out_the_defaults() -> None:
    assert load_config(CONFIGS[0].with_name("default.yaml")) == parse_config(None)


def test_rtsp_yaml_carries_network_options() -> None:
    source = load_config(CONFIGS[0].with_name("rtsp.yaml")).source
    assert (source.transport, source.open_timeout_s, source.read_timeout_s, source.max_backoff_s) == (
        "tcp",
        5.0,
        2.0,
        10.0,
    )


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"source": {"uri": "a.mp4", "fps": 25}}, lambda c: c.source.fps == 25.0 and c.source.uri == "a.mp4"),
        ({"outputs": "single.mp4"}, lambda c: c.outputs == ("single.mp4",)),
        ({"outputs": ["a.mp4", "null"]}, lambda c: c.outputs == ("a.mp4", "null")),
        ({"model": {"threads": None}}, lambda c: c.model.threads is None),
        ({"mask": {"smoothing": 0.5, "refine": "none"}}, lambda c: c.mask.smoothing == 0.5 and c.mask.refine == "none"),
        ({"pipeline": {"max_frames": 10}}, lambda c: c.pipeline.max_frames == 10),
        ({}, lambda c: c.source.open_retries == 2 and c.source.give_up_after_s is None),
        ({"source": {"open_retries": 0, "give_up_after_s": 30}}, lambda c: c.source.give_up_after_s == 30.0),
        ({"model": {"threads": 256, "batch_size": 64}}, lambda c: c.model.threads == 256),
        ({"model": {"interval": 30}}, lambda c: c.model.interval == 30),
        ({"mask": {"refine_size": 4096, "refine_radius": 64, "feather": 50}}, lambda c: c.mask.feather == 50.0),
    ],
)
def test_valid_values(data: dict, expected) -> None:
    assert expected(parse_config(data))


@pytest.mark.parametrize(
    ("data", "names"),
    [
        ({"sauce": {}}, "'sauce'"),
        ({"source": {"url": "x"}}, "'source.url'"),
        ({"mask": {"smoothing": 1.5}}, "mask.smoothing"),
        ({"mask": {"mode": "fuzzy"}}, "mask.mode"),
        ({"model": {"batch_size": 0}}, "model.batch_size"),
        ({"model": {"batch_size": "four"}}, "model.batch_size"),
        ({"model": {"threads": True}}, "model.threads"),
        ({"source": {"transport": "carrier-pigeon"}}, "source.transport"),
        ({"encoder": {"crf": 99}}, "encoder.crf"),
        ({"outputs": []}, "outputs"),
        ({"source": "rtsp://x"}, "source"),
        ([1, 2], "config"),
    ],
)
def test_bad_config_names_the_key(data: object, names: str) -> None:
    with pytest.raises(ConfigError, match=names.replace(".", r"\.")):
        parse_config(data)


HUGE = 99999999999999999999


@pytest.mark.parametrize(
    ("data", "key", "rule"),
    [
        ({"model": {"threads": 0}}, "model.threads", "must be in [1, 256]"),
        ({"model": {"threads": HUGE}}, "model.threads", "must be in [1, 256]"),
        ({"model": {"batch_size": 65}}, "model.batch_size", "must be in [1, 64]"),
        ({"model": {"interval": -1}}, "model.interval", "must be in [0, 30]"),
        ({"model": {"interval": 31}}, "model.interval", "must be in [0, 30]"),
        ({"pipeline": {"queue_size": 0}}, "pipeline.queue_size", "must be in [1, 256]"),
        ({"pipeline": {"queue_size": HUGE}}, "pipeline.queue_size", "must be in [1, 256]"),
        ({"pipeline": {"max_frames": 0}}, "pipeline.max_frames", "must be >= 1"),
        ({"source": {"fps": 0}}, "source.fps", "must be in (0, 1000]"),
        ({"source": {"fps": HUGE}}, "source.fps", "must be in (0, 1000]"),
        ({"source": {"fps": float("nan")}}, "source.fps", "must be in (0, 1000]"),
        ({"source": {"fps": 10**400}}, "source.fps", "is too large"),
        ({"source": {"open_timeout_s": 0}}, "source.open_timeout_s", "must be in (0, 3600]"),
        ({"source": {"read_timeout_s": 3601}}, "source.read_timeout_s", "must be in (0, 3600]"),
        ({"source": {"max_backoff_s": float("inf")}}, "source.max_backoff_s", "must be in (0, 3600]"),
        ({"source": {"open_retries": -1}}, "source.open_retries", "must be in [0, 20]"),
        ({"source": {"open_retries": 21}}, "source.open_retries", "must be in [0, 20]"),
        ({"source": {"open_retries": 1.5}}, "source.open_retries", "expected int"),
        ({"source": {"give_up_after_s": 0}}, "source.give_up_after_s", "must be > 0, or null"),
        ({"encoder": {"crf": -1}}, "encoder.crf", "must be in [0, 51]"),
        ({"encoder": {"threads": 65}}, "encoder.threads", "must be in [0, 64]"),
        ({"mask": {"refine_size": 15}}, "mask.refine_size", "must be in [16, 4096]"),
        ({"mask": {"refine_size": 4097}}, "mask.refine_size", "must be in [16, 4096]"),
        ({"mask": {"refine_radius": 65}}, "mask.refine_radius", "must be in [1, 64]"),
        ({"mask": {"refine_eps": 0}}, "mask.refine_eps", "must be in (0, 1]"),
        ({"mask": {"feather": 51}}, "mask.feather", "must be in [0, 50]"),
        ({"outputs": [["x"] * 1000]}, "outputs[0]", "expected str, got ['x', 'x', "),  # a short repr
    ],
)
def test_out_of_range_is_one_line_naming_the_key(data: dict, key: str, rule: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(data)
    message = str(error.value)
    assert message.startswith(f"{key}: ") and rule in message and "\n" not in message and len(message) < 200


def test_flags_override_yaml(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"model": {"runtime": "tflite", "batch_size": 2}, "outputs": ["a.mp4"]}))
    config = with_overrides(
        load_config(path), {"model.runtime": "onnxruntime", "outputs": ["b.mp4"], "background": None}
    )
    assert (config.model.runtime, config.model.batch_size, config.outputs) == ("onnxruntime", 2, ("b.mp4",))


def _file(content: bytes) -> Callable[[Path], Path]:
    def make(tmp_path: Path) -> Path:
        path = tmp_path / "run.yaml"
        path.write_bytes(content)
        return path

    return make


def _fifo(tmp_path: Path) -> Path:
    os.mkfifo(tmp_path / "pipe.yaml")
    return tmp_path / "pipe.yaml"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_file(b"source: [unclosed\n"), "config {} line 2 is not valid YAML: expected ',' or ']'"),
        (_file(b"source:\n  uri: caf\xe9.mp4\n"), "config {} is not UTF-8 text: byte 0xe9 at offset 18"),
        (_file(b"# " + b"x" * MAX_CONFIG_BYTES), "config {} is larger than 1 MiB: is it the right file?"),
        (_file(b"model:\n  threads: " + b"9" * 5000), "config {} is not valid YAML: Exceeds the limit (4300 digits)"),
        (_file(b"[" * 100_000), "config {} is not valid YAML: nested too deeply"),
        (_file(b"uri: a\x00b\n"), "config {} is not valid YAML: unacceptable character #x0000"),
        (lambda tmp_path: Path("/dev/zero"), "config /dev/zero is not a regular file"),
        (_fifo, "config {} is not a regular file"),
        (lambda tmp_path: tmp_path, "config {} is not a regular file"),
        (
            lambda tmp_path: tmp_path / "nope.yaml",
            "cannot read config {}: No such file or directory (bundled configs: default, file, rtsp, streams, webcam)",
        ),
    ],
    ids=["yaml", "utf8", "size", "digits", "nesting", "nul", "dev-zero", "fifo", "folder", "missing"],
)
@pytest.mark.timeout(60)  # "at once": opening the FIFO or reading /dev/zero to its end would never return
def test_unreadable_config_is_one_line_at_once(tmp_path: Path, make: Callable[[Path], Path], message: str) -> None:
    path = make(tmp_path)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value).startswith(message.format(path))
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("name", ["default", "file", "rtsp", "webcam"])
def test_bundled_config_by_name(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert name in bundled_configs()
    assert load_config(name) == load_config(CONFIGS[0].with_name(f"{name}.yaml"))


def test_a_local_file_wins_over_a_bundled_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("webcam").write_text("background: mask\n")
    assert load_config("webcam").background == "mask"


@pytest.mark.parametrize(
    ("make", "exception", "message"),
    [
        (lambda: parse_background("blur:99999"), BackgroundError, "blur size must be odd, 1 to 255"),
        (lambda: parse_background("blur:256"), BackgroundError, "blur size must be odd, 1 to 255"),
        (lambda: parse_background("blur:20"), BackgroundError, "blur size must be odd, 1 to 255"),
        (lambda: parse_background("blur:0"), BackgroundError, "blur size must be odd, 1 to 255"),
        (lambda: parse_background("blur:\u00b2"), BackgroundError, "blur size must be a number"),
        (lambda: parse_background("blur:" + "9" * 5000), BackgroundError, "blur size must be a number"),
        (lambda: TestSource.from_spec("testsrc:30000x30000"), SourceError, "out of range (sides 16…7680"),
        (lambda: TestSource.from_spec("testsrc:8x8"), SourceError, "out of range"),
        (lambda: TestSource.from_spec("testsrc:@1001"), SourceError, "fps up to 1000"),
        (lambda: TestSource.from_spec("testsrc:320x240", fps=0.0), SourceError, "out of range"),
        (lambda: TestSource.from_spec("testsrc:frames=\u00b2"), SourceError, "unknown option"),
        (lambda: TestSource.from_spec("testsrc:" + "9" * 5000 + "x9"), SourceError, "unknown option"),
    ],
)
def test_spec_strings_are_bounded(make: Callable[[], object], exception: type, message: str) -> None:
    with pytest.raises(exception) as error:
        make()
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("spec", ["blur:1", "blur:255", "blur"])
def test_blur_sizes_within_bounds(spec: str) -> None:
    parse_background(spec)


@pytest.mark.parametrize(
    ("yaml_text", "key"),
    [("colour: red\n", "colour"), ("mask:\n  feather: -1\n", "mask.feather")],
)
def test_cli_reports_config_errors_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], yaml_text: str, key: str
) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(yaml_text)
    code, err = run_cli(capsys, "run", "--config", path, "--output", tmp_path / "never.mp4")
    assert code == 2
    assert error_lines(err) == [line for line in err.splitlines() if line]
    assert len(error_lines(err)) == 1 and key in err and err.startswith("backdrop: error:")
    assert not (tmp_path / "never.mp4").exists()


def test_missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_cli(capsys, "run", "--config", tmp_path / "nope.yaml")
    assert code == 2 and "cannot read config" in err and "bundled configs: " in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("config", "expected"), [("/dev/zero", "is not a regular file"), ("nowhere", "bundled configs: default")]
)
@pytest.mark.timeout(60)  # reading /dev/zero to its end would never return
def test_cli_config_path_errors_are_prompt(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config: str, expected: str
) -> None:
    monkeypatch.chdir(tmp_path)
    opened: list[object] = []
    monkeypatch.setattr(assemble, "open_pipeline", lambda *args, **kwargs: opened.append(args))
    code, err = run_cli(capsys, "run", "--config", config)
    assert opened == []  # prompt: the config's error comes before the model, the source or an output is opened
    assert code == 2 and error_lines(err) == [line for line in err.splitlines() if line]
    assert len(error_lines(err)) == 1 and expected in err
