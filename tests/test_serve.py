"""``backdrop serve`` on live streams from the real RTSP relay: one model shared by every stream, batches that
mix streams, isolation of a failing stream, the control API and its metrics, and a clean SIGTERM."""

# The relay fixture is imported and then named as a test parameter, which is what pytest wants.

from __future__ import annotations

import json
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from clips import decode
from prometheus_client.parser import text_string_to_metric_families
from rtsp_fixtures import BackdropProcess, Publisher, Relay, free_port, relay_available, wait_until

from backdrop.errors import ConfigError
from backdrop.model.segmenter import Segmenter
from backdrop.stream.config.serve import parse_serve_config
from backdrop.stream.serve.api_server import ApiServer
from backdrop.stream.serve.batching import BatcherClosed, BatchingSegmenter
from backdrop.stream.serve.engine import LocalEngine

REPO = Path(__file__).resolve().parents[1]
FIGURES = {"name", "state", "pid", "node", "fps_in", "fps_out", "frames_in", "frames_out", "dropped", "drops",
           "reconnects", "restarts", "latency_p50_ms", "latency_p95_ms", "error"}  # fmt: skip


@pytest.fixture
def relay() -> Iterator[Relay]:
    if not relay_available():
        pytest.skip("GStreamer RTSP server missing: apt-get install python3-gi gir1.2-gst-rtsp-server-1.0")
    server = Relay(("a", "b", "c")).start()
    yield server
    server.stop()


@pytest.fixture
def cameras(relay: Relay) -> Iterator[dict[str, Publisher]]:
    """A live 320×240@30 publisher on each of the relay's streams."""
    publishers = {name: Publisher(relay.publish_url(name)).start() for name in relay.streams}
    for name in relay.streams:
        relay.wait_receiving(name)
    yield publishers
    for publisher in publishers.values():
        publisher.stop()


def serve_config(relay: Relay, tmp_path: Path, names: tuple[str, ...], **top: Any) -> dict[str, Any]:
    streams = [
        {"name": name, "source": relay.play_url(name), "outputs": [str(tmp_path / f"{name}.mp4")]} for name in names
    ]
    return {"background": "color:#00ff00", "model": {"runtime": "onnxruntime", "batch_size": 4}, **top,
            "serve": {"batch_wait_ms": 20}, "streams": streams}  # fmt: skip


class Serve(BackdropProcess):
    """``backdrop serve …`` as a child process; ``url`` is its control API once it listens."""

    def __init__(self, config: dict[str, Any], tmp_path: Path, *args: str) -> None:
        path = tmp_path / "streams.yaml"
        path.write_text(yaml.safe_dump(config))
        super().__init__("serve", "--config", str(path), "--control", "127.0.0.1:0", *args)
        self.url = self.stderr.wait_for("control API on", timeout=30).split()[-1]


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def request(method: str, url: str, body: str | None = None) -> tuple[int, Any]:
    data = None if body is None else body.encode()
    headers = {} if body is None else {"Content-Type": "application/json"}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data, headers, method=method), timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def by_name(figures: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in figures}


def figures_of(engine: LocalEngine) -> dict[str, dict[str, Any]]:
    """The engine's figures by stream name, as the API shows them."""
    return by_name([figures.to_json() for figures in engine.streams()])


@pytest.mark.parametrize("workers", [1, 2])
def test_the_shared_model_batches_frames_from_several_callers(segmenter: Segmenter, workers: int) -> None:
    h, w = segmenter.contract.input_size
    rng = np.random.default_rng(0)
    inputs = [rng.random((1, h, w, 3), dtype=np.float32) for _ in range(12)]
    expected = [segmenter.segment(batch) for batch in inputs]
    batcher = BatchingSegmenter(segmenter, batch_size=4, wait_s=0.05, workers=workers)
    results: dict[int, np.ndarray] = {}
    start = threading.Barrier(4)

    def stream(first: int) -> None:
        start.wait()
        for i in range(first, len(inputs), 4):
            results[i] = batcher.segment(inputs[i])

    threads = [threading.Thread(target=stream, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    batcher.close()
    assert sorted(results) == list(range(12))
    for i, masks in results.items():  # each caller got its own frames' masks back, whatever batch they rode in
        np.testing.assert_allclose(masks, expected[i], atol=1e-4)
    stats = batcher.stats()
    assert stats["frames_inferred"] == 12 and stats["mean_batch_size"] > 1 and stats["mixed_batches"] >= 1
    with pytest.raises(BatcherClosed):
        batcher.segment(inputs[0])


def test_a_lone_caller_waits_at_most_the_batch_wait_not_for_a_full_batch(segmenter: Segmenter) -> None:
    h, w = segmenter.contract.input_size
    batcher = BatchingSegmenter(segmenter, batch_size=8, wait_s=0.01)
    try:
        started = time.monotonic()
        for _ in range(5):
            batcher.segment(np.zeros((1, h, w, 3), np.float32))
        assert time.monotonic() - started < 2.0  # five frames, five lone batches: no wait for the other seven
        assert batcher.stats()["batches"] == 5
    finally:
        batcher.close()


@pytest.mark.rtsp
def test_three_live_streams_share_one_model_and_stop_at_max_frames(
    relay: Relay, cameras: dict[str, Publisher], tmp_path: Path
) -> None:
    stats_path = tmp_path / "stats.json"
    serve = Serve(serve_config(relay, tmp_path, ("a", "b", "c")), tmp_path, "--max-frames", "30",
                  "--stats-json", str(stats_path))  # fmt: skip
    assert serve.wait(90) == 0, serve.stderr.text()
    stats = json.loads(stats_path.read_text())
    assert set(stats["streams"]) == {"a", "b", "c"}
    for name, figures in stats["streams"].items():
        assert set(figures) == FIGURES
        assert figures["state"] == "finished" and figures["frames_out"] == 30 and figures["error"] is None
        assert figures["pid"] == serve.process.pid and figures["node"] == socket.gethostname()
        assert figures["latency_p50_ms"] > 0
        frames = decode(tmp_path / f"{name}.mp4")
        assert len(frames) == 30 and frames[0].shape == (240, 320, 3)
    totals = stats["totals"]
    assert totals["frames_out"] == 90 and totals["streams"] == 3
    assert totals["mixed_batches"] > 0 and totals["mean_batch_size"] > 1, totals  # streams shared model calls
    assert "served 3 streams" in serve.stderr.text()


@pytest.mark.rtsp
def test_an_interval_halves_the_frames_the_shared_model_infers(
    relay: Relay, cameras: dict[str, Publisher], tmp_path: Path
) -> None:
    stats_path = tmp_path / "stats.json"
    config = serve_config(relay, tmp_path, ("a", "b"), model={"runtime": "onnxruntime", "interval": 1})
    serve = Serve(config, tmp_path, "--max-frames", "30", "--stats-json", str(stats_path))
    assert serve.wait(90) == 0, serve.stderr.text()
    totals = json.loads(stats_path.read_text())["totals"]
    assert totals["frames_out"] == 60 and all(len(decode(tmp_path / f"{name}.mp4")) == 30 for name in "ab")
    # every other frame: at least half of those written, at most half of them plus the few still in flight
    assert 30 <= totals["frames_inferred"] <= 44, totals


@pytest.mark.rtsp
def test_a_closed_port_fails_alone_while_the_api_adds_removes_and_reports(
    relay: Relay, cameras: dict[str, Publisher], tmp_path: Path, stamped_clip: Path
) -> None:
    data = serve_config(relay, tmp_path, ("a",))
    data["streams"].append(
        {"name": "dead", "source": {"uri": f"rtsp://127.0.0.1:{free_port()}/x", "open_retries": 0},
         "outputs": [str(tmp_path / "dead.mp4")]}
    )  # fmt: skip
    data["serve"]["restart_initial_s"] = 0.2
    data["serve"]["output_root"] = str(tmp_path)  # where streams added through the API may write
    engine = LocalEngine(parse_serve_config(data))
    control = ApiServer(engine, engine.config, "127.0.0.1", 0)
    control.start()
    engine.start()
    try:
        wait_until(lambda: figures_of(engine)["dead"]["restarts"] >= 2, 30, "the dead stream to be retried")
        progress = figures_of(engine)["a"]["frames_out"]
        wait_until(lambda: figures_of(engine)["a"]["frames_out"] >= progress + 30, 30, "stream a to go on")
        streams = by_name(get_json(control.url + "streams"))
        assert streams["a"]["state"] == "running" and streams["a"]["error"] is None
        assert streams["dead"]["state"] == "retrying" and "cannot open" in streams["dead"]["error"]

        status, body = request(
            "POST", control.url + "streams", '{"name": "x", "source": {"uri": ""}, "outputs": ["x.mp4"]}'
        )
        assert status == 400 and body["error"].startswith("streams[0].source.uri: required")
        added = {"name": "clip", "source": str(stamped_clip), "outputs": [str(tmp_path / "a.mp4")]}
        status, body = request("POST", control.url + "streams", json.dumps(added))
        assert status == 400 and "is also an output of stream 'a'" in body["error"]
        added["outputs"] = [str(tmp_path / "clip.mp4")]
        assert request("POST", control.url + "streams", json.dumps(added)) == (201, {"name": "clip"})
        wait_until(lambda: figures_of(engine)["clip"]["state"] == "finished", 60, "the added file stream")
        assert by_name(get_json(control.url + "streams"))["clip"]["frames_out"] == len(decode(stamped_clip))
        assert len(decode(tmp_path / "clip.mp4")) == len(decode(stamped_clip))

        metrics = {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(
                urllib.request.urlopen(control.url + "metrics").read().decode()
            )
            for sample in family.samples
        }
        assert metrics[("backdrop_stream_frames_out_total", (("stream", "a"),))] > progress
        assert metrics[("backdrop_stream_state", (("state", "retrying"), ("stream", "dead")))] == 1
        assert metrics[("backdrop_stream_state", (("state", "running"), ("stream", "dead")))] == 0
        assert metrics[("backdrop_stream_restarts_total", (("stream", "dead"),))] >= 2
        assert metrics[("backdrop_inference_batches_total", ())] > 0
        assert ("backdrop_inference_mixed_batches_total", ()) in metrics

        page = urllib.request.urlopen(control.url).read().decode()
        assert all(f"<td>{name}</td>" in page for name in ("a", "dead", "clip"))

        assert request("DELETE", control.url + "streams/clip") == (200, {"removed": "clip"})
        assert request("DELETE", control.url + "streams/clip")[0] == 404
        assert set(by_name(get_json(control.url + "streams"))) == {"a", "dead"}
    finally:
        engine.stop()
        control.close()
    assert figures_of(engine)["a"]["state"] == "stopped"
    assert len(decode(tmp_path / "a.mp4")) >= progress + 30  # stopped gracefully: the recording is playable


@pytest.mark.rtsp
def test_a_stream_that_fails_is_restarted_and_resumes_while_the_others_run(
    relay: Relay, cameras: dict[str, Publisher], tmp_path: Path
) -> None:
    data = serve_config(relay, tmp_path, ("a", "b"))
    data["streams"][0]["source"] = {"uri": relay.play_url("a"), "give_up_after_s": 1.0, "read_timeout_s": 0.5}
    data["serve"]["restart_initial_s"] = 0.2
    engine = LocalEngine(parse_serve_config(data))
    engine.start()
    try:
        wait_until(lambda: figures_of(engine)["a"]["frames_out"] >= 15, 30, "stream a to play")
        cameras["a"].kill()  # the camera loses power: after give_up_after_s the stream fails
        wait_until(lambda: figures_of(engine)["a"]["restarts"] >= 1, 30, "stream a to fail and restart")
        assert "gave up" in figures_of(engine)["a"]["error"]
        during = figures_of(engine)["b"]["frames_out"]
        wait_until(lambda: figures_of(engine)["b"]["frames_out"] >= during + 15, 30, "b to go on during a's outage")
        before = figures_of(engine)["a"]["frames_out"]
        cameras["a"] = Publisher(relay.publish_url("a")).start()  # back: the restarted stream picks it up
        wait_until(lambda: figures_of(engine)["a"]["frames_out"] >= before + 15, 45, "stream a to resume")
        assert figures_of(engine)["a"]["state"] == "running"
    finally:
        engine.stop()
    assert len(decode(tmp_path / "b.mp4")) >= during + 15


@pytest.mark.rtsp
def test_sigterm_stops_every_stream_cleanly_with_exit_0(
    relay: Relay, cameras: dict[str, Publisher], tmp_path: Path
) -> None:
    stats_path = tmp_path / "stats.json"
    serve = Serve(serve_config(relay, tmp_path, ("a", "b")), tmp_path, "--stats-json", str(stats_path))
    wait_until(
        lambda: [f["frames_out"] >= 20 for f in get_json(serve.url + "streams")] == [True, True],
        60,
        "both streams to write frames",
    )
    serve.process.send_signal(signal.SIGTERM)
    assert serve.wait(20) == 0, serve.stderr.text()
    stats = json.loads(stats_path.read_text())
    for name in ("a", "b"):
        figures = stats["streams"][name]
        assert figures["state"] == "stopped" and figures["frames_out"] >= 20
        assert len(decode(tmp_path / f"{name}.mp4")) == figures["frames_out"]  # finished and playable


def test_parallel_inference_workers_are_refused_for_a_runtime_that_cannot_run_calls_in_parallel() -> None:
    config = parse_serve_config(
        {"model": {"runtime": "tflite"}, "serve": {"inference_workers": 2},
         "streams": [{"name": "a", "source": "testsrc", "outputs": ["null"]}]}
    )  # fmt: skip
    engine = LocalEngine(config)
    with pytest.raises(ConfigError, match=r"^serve.inference_workers: more than 1 needs .*onnxruntime.*not tflite"):
        engine.start()
    assert engine.streams() == []


def test_process_wide_tuning_is_the_serve_command_s_and_is_restored(tmp_path: Path, monkeypatch) -> None:
    """The engine, usable as a library, changes no process-wide setting; `backdrop serve` tunes its own process
    for its run (one OpenCV thread, a short switch interval) and puts the settings back when it ends."""
    from backdrop.cli import main
    from backdrop.stream.serve import tuning

    before = tuning.ProcessTuning.current()
    assert before != tuning.FOR_STREAMS  # else this test could not tell
    data = {
        "model": {"runtime": "onnxruntime"},
        "streams": [{"name": "a", "source": "testsrc:64x48", "outputs": ["null"]}],
    }
    engine = LocalEngine(parse_serve_config(data), max_frames=2)
    engine.start()
    try:
        assert engine.wait(60)
    finally:
        engine.stop()
    assert tuning.ProcessTuning.current() == before

    during: list[tuning.ProcessTuning] = []
    original_start = LocalEngine.start
    monkeypatch.setattr(
        LocalEngine, "start", lambda self: (during.append(tuning.ProcessTuning.current()), original_start(self))[1]
    )
    (tmp_path / "streams.yaml").write_text(yaml.safe_dump(data))
    assert (
        main(["serve", "--config", str(tmp_path / "streams.yaml"), "--control", "127.0.0.1:0", "--max-frames", "2"])
        == 0
    )
    assert during == [tuning.FOR_STREAMS]
    assert tuning.ProcessTuning.current() == before


@pytest.mark.slow
def test_sigterm_ends_serve_within_5_s_at_the_stream_limit(tmp_path: Path) -> None:
    """Every stream of a full serve stops in parallel within the stop's deadlines, and the summary says so."""
    limit = 32  # serve.max_streams' default
    config = {
        "model": {"runtime": "onnxruntime"},
        "streams": [{"name": f"s{i}", "source": "testsrc:64x48@5,live", "outputs": ["null"]} for i in range(limit)],
    }
    stats_path = tmp_path / "stats.json"
    serve = Serve(config, tmp_path, "--stats-json", str(stats_path))
    try:
        wait_until(
            lambda: all(s["frames_out"] > 0 for s in get_json(serve.url + "streams")), 120, "every stream to play"
        )
        extra = json.dumps({"name": "one-more", "source": "testsrc", "outputs": ["null"]})
        status, body = request("POST", serve.url + "streams", extra)
        assert status == 429 and body["error"].startswith("serve.max_streams:"), body
        sent = time.monotonic()
        serve.process.send_signal(signal.SIGTERM)
        code = serve.wait(30)
        took = time.monotonic() - sent
    finally:
        serve.stop()
    assert code == 0, serve.stderr.text()
    assert took < 5.0, f"SIGTERM took {took:.1f} s with {limit} streams"
    states = {figures["state"] for figures in json.loads(stats_path.read_text())["streams"].values()}
    assert states == {"stopped"}
