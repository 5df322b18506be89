"""YAML configs parse into typed dataclasses; unknown keys and bad values are one-line errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from clips import error_lines, run_cli

from backdrop.errors import ConfigError
from backdrop.stream.config import RunConfig, load_config, parse_config, with_overrides

CONFIGS = sorted((Path(__file__).resolve().parent.parent / "configs").glob("*.yaml"))


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


def test_flags_override_yaml(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"model": {"runtime": "tflite", "batch_size": 2}, "outputs": ["a.mp4"]}))
    config = with_overrides(
        load_config(path), {"model.runtime": "onnxruntime", "outputs": ["b.mp4"], "background": None}
    )
    assert (config.model.runtime, config.model.batch_size, config.outputs) == ("onnxruntime", 2, ("b.mp4",))


def test_invalid_yaml_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("source: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)


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
    assert code == 2 and "cannot read config" in err and "Traceback" not in err
