"""``backdrop serve`` configuration: defaults merged into streams, and one-line errors that name the stream."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from clips import error_lines, run_cli

from backdrop.errors import ConfigError
from backdrop.stream.config.serve import load_serve_config, parse_serve_config, parse_stream_text
from backdrop.stream.serve.api_server import parse_control

EXAMPLE = Path(__file__).resolve().parent.parent / "configs" / "streams.yaml"


def two_streams(**second: Any) -> dict[str, Any]:
    return {
        "background": "blur:21",
        "streams": [
            {"name": "lobby", "source": {"uri": "rtsp://127.0.0.1:8554/lobby"}, "outputs": ["lobby.mp4"]},
            {"name": "door", "source": {"uri": "rtsp://127.0.0.1:8554/door"}, "outputs": ["door.mp4"], **second},
        ],
    }


def test_the_example_config_loads_and_streams_inherit_and_override_the_defaults() -> None:
    config = load_serve_config(EXAMPLE)
    assert [s.name for s in config.streams] == ["lobby", "door"]
    lobby, door = config.run_config("lobby"), config.run_config("door")
    assert lobby.background == "blur:21" and door.background == "color:#00b140"
    assert lobby.source.uri == "rtsp://127.0.0.1:8554/lobby" and door.source.uri == "rtsp://127.0.0.1:8554/door"
    assert lobby.source.read_timeout_s == door.source.read_timeout_s == 2.0  # the top-level source defaults
    assert door.mask.smoothing == 0.2 and lobby.mask.smoothing == config.defaults.mask.smoothing
    assert door.mask.mode == config.defaults.mask.mode  # a partial section keeps the other defaults
    assert lobby.pipeline.queue_size == 2 and lobby.model.batch_size == 4
    assert config.serve.batch_wait_ms == 5


def test_a_stream_source_overrides_only_the_keys_it_gives() -> None:
    data = two_streams(source={"uri": "rtsp://127.0.0.1:8554/door", "transport": "udp"})
    data["source"] = {"read_timeout_s": 7.0}
    config = parse_serve_config(data)
    assert config.run_config("door").source.transport == "udp"
    assert config.run_config("door").source.read_timeout_s == 7.0
    assert config.run_config("lobby").source.transport == "tcp"


@pytest.mark.parametrize(
    ("second", "message"),
    [
        ({"source": {"uri": ""}}, "streams[1].source.uri: required"),
        ({"source": {"uri": True}}, "streams[1].source.uri: expected str, got True"),
        ({"source": {"url": "rtsp://x"}}, "unknown key 'streams[1].source.url'"),
        ({"source": {"uri": "rtsp://x", "transport": "quic"}}, "streams[1].source.transport: must be tcp or udp"),
        ({"name": "lobby"}, "streams[1].name: another stream is already named 'lobby'"),
        ({"name": "a b"}, "streams[1].name: 'a b' must be"),
        ({"outputs": ["lobby.mp4"]}, "streams[1].outputs: lobby.mp4 is also an output of stream 'lobby'"),
        ({"outputs": []}, "streams[1].outputs: needs at least one output"),
        ({"outputs": ["a.mp4", "a.mp4"]}, "streams[1]: output a.mp4 is given twice"),
        ({"mask": {"smoothing": 2}}, "streams[1].mask.smoothing: must be in [0, 1)"),
        ({"model": {"name": "landscape"}}, "unknown key 'streams[1].model'"),
        ({"colour": "red"}, "unknown key 'streams[1].colour'"),
    ],
)
def test_bad_streams_are_one_line_errors_naming_the_stream(second: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_serve_config(two_streams(**second))
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def test_previews_and_republished_urls_clash_across_streams() -> None:
    data = two_streams()
    data["streams"][0]["outputs"] = ["http://127.0.0.1:8081", "rtsp://127.0.0.1:8554/out"]
    data["streams"][1]["outputs"] = ["http://127.0.0.1:8081/"]
    with pytest.raises(ConfigError, match=r"^streams\[1\]\.outputs: http://127.0.0.1:8081/ is also"):
        parse_serve_config(data)
    data["streams"][1]["outputs"] = ["rtsp://127.0.0.1:8554/out"]
    with pytest.raises(ConfigError, match=r"^streams\[1\]\.outputs: rtsp://127.0.0.1:8554/out is also"):
        parse_serve_config(data)
    data["streams"][1]["outputs"] = ["null", "http://127.0.0.1:8082"]
    data["streams"][0]["outputs"].append("null")
    assert len(parse_serve_config(data).streams) == 2  # null outputs never clash


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "serve config: expected a mapping"),
        ({"background": "blur:21"}, "streams: expected a list"),
        ({"outputs": ["a.mp4"], "streams": []}, "outputs: give each stream its own outputs"),
        ({"serve": {"batch_wait_ms": -1}, "streams": []}, "serve.batch_wait_ms: must be in [0, 1000]"),
        ({"model": {"batch_size": 0}, "streams": []}, "model.batch_size: must be in [1, 64]"),
        ({"streams": ["rtsp://x"]}, "streams[0]: expected a mapping"),
        ({"streams": [{"name": "a", "outputs": ["a.mp4"]}]}, "streams[0].source: required"),
    ],
)
def test_bad_serve_configs_are_one_line_errors(data: Any, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_serve_config(data)
    assert str(error.value).startswith(message)


def test_a_stream_from_a_request_body_in_json_or_yaml() -> None:
    as_json = parse_stream_text('{"name": "cam", "source": "rtsp://h/cam", "outputs": ["cam.mp4"]}')
    as_yaml = parse_stream_text("name: cam\nsource: {uri: rtsp://h/cam}\noutputs: [cam.mp4]\n")
    assert as_json == as_yaml and as_json.source.uri == "rtsp://h/cam"
    with pytest.raises(ConfigError, match="not valid JSON or YAML"):
        parse_stream_text('{"name": ')


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("127.0.0.1:8090", ("127.0.0.1", 8090)), (":9000", ("127.0.0.1", 9000)), ("9000", ("127.0.0.1", 9000)),
     ("0.0.0.0:80", ("0.0.0.0", 80)), ("[::1]:8090", ("::1", 8090)), ("host:http", None), ("h:70000", None)],
)  # fmt: skip
def test_control_address(spec: str, expected: tuple[str, int] | None) -> None:
    if expected is None:
        with pytest.raises(ConfigError, match="--control: expected HOST:PORT"):
            parse_control(spec)
    else:
        assert parse_control(spec) == expected


def test_serve_with_a_bad_config_exits_2_with_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "streams.yaml"
    data = two_streams(source={"uri": ["rtsp://a", "rtsp://b"]})
    path.write_text(yaml.safe_dump(data))
    code, stderr = run_cli(capsys, "serve", "--config", path, "--control", "127.0.0.1:0")
    assert code == 2
    assert error_lines(stderr) == ["backdrop: error: streams[1].source.uri: expected str, got ['rtsp://a', 'rtsp://b']"]
    code, stderr = run_cli(capsys, "serve", "--config", tmp_path / "missing.yaml")
    assert code == 2 and error_lines(stderr)[0].startswith("backdrop: error: cannot read config")


def test_a_ray_address_needs_the_ray_engine(capsys: pytest.CaptureFixture[str]) -> None:
    code, stderr = run_cli(capsys, "serve", "--config", EXAMPLE, "--ray-address", "10.0.0.1:6379")
    assert code == 2 and error_lines(stderr) == ["backdrop: error: --ray-address needs --engine ray"]
