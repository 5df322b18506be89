"""``--stats-json`` of ``backdrop run`` and ``backdrop serve``: one documented, versioned schema that real runs meet."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from backdrop.cli import main
from backdrop.stream.config.serve import parse_serve_config
from backdrop.stream.core.figures import StreamState, stats_schema
from backdrop.stream.serve.engine import LocalEngine

# What a user of the file relies on (the issue that introduced the schema lists them): none may silently vanish.
STREAM_KEYS = {
    "name", "state", "error", "frames_in", "frames_out", "frames_inferred", "dropped", "drops", "reconnects",
    "restarts", "latency_p50_ms", "latency_p95_ms", "fps_in", "fps_out", "pid", "node",
}  # fmt: skip
TOTALS_KEYS = {"streams", "running", "retrying", "failed", "frames_in", "frames_out", "dropped", "reconnects",
               "restarts", "fps_out", "peak_rss_mb"}  # fmt: skip
RUN_KEYS = {"frame_count", "frames_composited", "fps", "elapsed_s", "first_output_s", "stages", "queues",
            "unfinished", "interrupted", "stopped_by", "damage"}  # fmt: skip


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return stats_schema()


def validate(document: Any, schema: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(schema).validate(document)


def test_the_schema_documents_every_key_users_rely_on(schema: dict[str, Any]) -> None:
    definitions = schema["$defs"]
    assert set(definitions["stream"]["required"]) == STREAM_KEYS
    assert set(definitions["totals"]["required"]) == TOTALS_KEYS
    assert set(definitions["run"]["required"]) == RUN_KEYS
    for part in ("stream", "totals", "run"):
        undocumented = [key for key in definitions[part]["required"] if not definitions[part]["properties"][key].get(
            "description")]  # fmt: skip
        assert not undocumented, (part, undocumented)
    assert definitions["stream"]["properties"]["state"]["enum"] == [state.value for state in StreamState]
    assert schema["properties"]["schema"]["const"] == 1


def test_backdrop_run_writes_a_document_of_the_schema(tmp_path: Path, stamped_clip: Path, schema) -> None:
    stats = tmp_path / "stats.json"
    code = main(["run", "--source", str(stamped_clip), "--output", "null", "--runtime", "onnxruntime",
                 "--max-frames", "8", "--no-progress", "--stats-json", str(stats)])  # fmt: skip
    assert code == 0
    document = json.loads(stats.read_text())
    validate(document, schema)
    assert document["schema"] == 1 and document["command"] == "run"
    main_stream = document["streams"]["main"]
    assert main_stream["state"] == "finished" and main_stream["frames_out"] == 8 and main_stream["error"] is None
    assert document["totals"]["frames_out"] == 8 and document["run"]["stopped_by"] is None
    for key in ("frames_in", "dropped"):  # a key that vanishes fails the validation
        broken = json.loads(stats.read_text())
        del broken["streams"]["main"][key]
        with pytest.raises(jsonschema.ValidationError, match=key):
            validate(broken, schema)


def serve_config(tmp_path: Path) -> dict[str, Any]:
    return {
        "model": {"runtime": "onnxruntime"},
        "streams": [
            {"name": "a", "source": "testsrc:160x120", "outputs": [str(tmp_path / "a.mp4")]},
            {"name": "b", "source": "testsrc:160x120", "outputs": ["null"]},
        ],
    }


def test_backdrop_serve_writes_a_document_of_the_same_schema(tmp_path: Path, schema) -> None:
    config, stats = tmp_path / "streams.yaml", tmp_path / "stats.json"
    config.write_text(yaml.safe_dump(serve_config(tmp_path)))
    code = main(["serve", "--config", str(config), "--control", "127.0.0.1:0", "--max-frames", "6",
                 "--stats-json", str(stats)])  # fmt: skip
    assert code == 0
    document = json.loads(stats.read_text())
    validate(document, schema)
    assert document["command"] == "serve" and "run" not in document
    assert {name: (s["state"], s["frames_out"]) for name, s in document["streams"].items()} == {
        "a": ("finished", 6),
        "b": ("finished", 6),
    }
    assert document["totals"]["frames_out"] == 12 and document["totals"]["frames_in"] >= 12


def test_the_api_lists_streams_in_the_schema_s_stream_shape(tmp_path: Path, schema) -> None:
    engine = LocalEngine(parse_serve_config(serve_config(tmp_path)), max_frames=3)
    engine.start()
    try:
        assert engine.wait(60)
    finally:
        engine.stop()
    stream_schema = {"$defs": schema["$defs"], **schema["$defs"]["stream"]}
    for figures in engine.streams():
        validate(figures.to_json(), stream_schema)
