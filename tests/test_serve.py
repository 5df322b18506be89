"""``backdrop serve`` on live streams from the real RTSP relay: one model shared by every stream, batches that
mix streams, isolation of a failing stream, the control API and its metrics, and a clean SIGTERM."""

# The relay fixture is imported and then named as a test parameter, which is what pytest wants.

from __future__ import annotations

import contextlib
import json
import math
import signal
import socket
import subprocess
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
from backdrop.stream.serve import engine as engine_module
from backdrop.stream.serve.api_server import ApiServer
from backdrop.stream.serve.batching import BatcherClosed, BatchingSegmenter
from backdrop.stream.serve.engine import LocalEngine

REPO = Path(__file__).resolve().parents[1]
FIGURES = {"name", "state", "pid", "node", "fps_in", "fps_out", "frames_in", "frames_out", "frames_inferred",
           "dropped", "drops", "reconnects", "restarts", "latency_p50_ms", "latency_p95_ms", "error"}  # fmt: skip
EVENT_TIMEOUT_S = 30.0  # how long a test waits for an event before failing: a failure bound, not a measurement


@pytest.fixture
def relay() -> Iterator[Relay]:
    if not relay_available():
        pytest.fail("GStreamer RTSP server missing: run `make system-deps` (`make test` does)")
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


class StandInModel(Segmenter):
    """Stands in for ``like`` (its files, name, threads) behind the shared batcher; ``segment`` is the subclass's."""

    def __init__(self, like: Segmenter) -> None:
        super().__init__(like.files, threads=like.threads)
        self.name = like.name

    @staticmethod
    def require() -> None:
        """Nothing to check: ``like`` was loaded already."""

    def close(self) -> None:
        """Nothing to free: the session's model stays loaded for the other tests."""


class InstantModel(StandInModel):
    """Answers at once, so what a test times is the batcher's own waiting, not inference."""

    def segment(self, batch: np.ndarray) -> np.ndarray:
        return np.zeros(batch.shape[:3], np.float32)


class GatedModel(StandInModel):
    """The real model behind a gate: its first call waits until the test opens ``gate``, so the test knows what
    queues up for the model meanwhile instead of hoping that the machine's pace makes frames meet."""

    def __init__(self, inner: Segmenter) -> None:
        super().__init__(inner)
        self.inner = inner
        self.held = 0  # frames in the first call, which waits for the gate
        self.holding = threading.Event()  # set once the first call is inside, waiting for the gate
        self.gate = threading.Event()

    def segment(self, batch: np.ndarray) -> np.ndarray:
        if not self.holding.is_set():
            self.held = len(batch)
            self.holding.set()
            self.gate.wait(2 * EVENT_TIMEOUT_S)
        return self.inner.segment(batch)


@pytest.mark.parametrize("workers", [1, 2])
def test_the_shared_model_batches_frames_from_several_callers(segmenter: Segmenter, workers: int) -> None:
    h, w = segmenter.contract.input_size
    rng = np.random.default_rng(0)
    inputs = [rng.random((1, h, w, 3), dtype=np.float32) for _ in range(12)]
    expected = [segmenter.segment(batch) for batch in inputs]
    # A batch leaves when it is full or when its first frame has waited wait_s. With a wait longer than the test,
    # only full batches leave, and four callers with one frame in flight each fill every batch with a frame of
    # each: three batches, all mixed, on any machine (a batch that left early would show as a smaller one).
    batcher = BatchingSegmenter(segmenter, batch_size=4, wait_s=EVENT_TIMEOUT_S, workers=workers)
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
        thread.join(2 * EVENT_TIMEOUT_S)
    batcher.close()
    assert sorted(results) == list(range(12))
    for i, masks in results.items():  # each caller got its own frames' masks back, whatever batch they rode in
        np.testing.assert_allclose(masks, expected[i], atol=1e-4)
    assert batcher.stats() == {"batches": 3, "mixed_batches": 3, "frames_inferred": 12, "mean_batch_size": 4.0}
    with pytest.raises(BatcherClosed):
        batcher.segment(inputs[0])


@pytest.mark.timeout(60)  # a batcher waiting for a full batch would never answer: fail instead of stalling
def test_a_lone_caller_waits_at_most_the_batch_wait_not_for_a_full_batch(segmenter: Segmenter) -> None:
    h, w = segmenter.contract.input_size
    batcher = BatchingSegmenter(InstantModel(segmenter), batch_size=8, wait_s=0.01)
    try:
        started = time.monotonic()
        for _ in range(5):
            batcher.segment(np.zeros((1, h, w, 3), np.float32))
        waited_s = time.monotonic() - started
    finally:
        batcher.close()
    # five frames, five lone batches: each left at its batch wait, none waited for the other seven frames
    assert batcher.stats() == {"batches": 5, "mixed_batches": 0, "frames_inferred": 5, "mean_batch_size": 1.0}
    # and the product's bound on that wait (the model answers at once: this is five 10 ms waits, not inference)
    assert waited_s < 2.0, waited_s


def test_frames_of_several_streams_waiting_for_the_model_share_one_call(
    segmenter: Segmenter, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = GatedModel(segmenter)
    monkeypatch.setattr(engine_module, "load_segmenter", lambda *args, **kwargs: model)
    streams = [{"name": name, "source": "testsrc:64x48@30,live", "outputs": ["null"]} for name in "abc"]
    data = {"model": {"runtime": "onnxruntime", "batch_size": 4}, "streams": streams}
    engine = LocalEngine(parse_serve_config(data), max_frames=5)
    engine.start()
    try:
        assert model.holding.wait(EVENT_TIMEOUT_S), "no stream's frame reached the model"
        batcher = engine._batcher
        # Every stream sends one frame per request and waits for its answer, so three frames waiting for the
        # model, in the held call or queued behind it, are one of each stream: either the held call already
        # mixes streams, or the two queued frames (of two other streams) fill the next call together.
        wait_until(lambda: model.held + len(batcher._pending) >= 3, EVENT_TIMEOUT_S, "a frame of every stream to wait")
        model.gate.set()
        assert engine.wait(2 * EVENT_TIMEOUT_S), "the streams did not reach --max-frames"
    finally:
        model.gate.set()
        engine.stop()
    totals = engine.totals()
    assert totals["frames_out"] == 15 and totals["mixed_batches"] >= 1, totals


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
    # one model served the three streams: its batcher inferred every frame written (that frames of several
    # streams ride in one call is shown above under a controlled schedule; here it would depend on the pace)
    assert totals["frames_inferred"] >= totals["frames_out"] and totals["batches"] >= 1, totals
    assert "served 3 streams" in serve.stderr.text()


@pytest.mark.rtsp
def test_an_interval_halves_the_frames_the_shared_model_infers(
    relay: Relay, cameras: dict[str, Publisher], tmp_path: Path
) -> None:
    stats_path = tmp_path / "stats.json"
    config = serve_config(relay, tmp_path, ("a", "b"), model={"runtime": "onnxruntime", "interval": 1})
    serve = Serve(config, tmp_path, "--max-frames", "30", "--stats-json", str(stats_path))
    assert serve.wait(90) == 0, serve.stderr.text()
    stats = json.loads(stats_path.read_text())
    totals = stats["totals"]
    assert totals["frames_out"] == 60 and all(len(decode(tmp_path / f"{name}.mp4")) == 30 for name in "ab")
    # One frame in two of those a stream preprocesses is inferred (its frames 0, 2, 4 …). How many a live stream
    # preprocesses depends on the machine's pace (it drops the rest), so count per stream: at least every frame
    # that reached the output's queue (written, or dropped there), at most every frame past the entrance queue.
    reached_output = passed_entrance = 0
    for figures in stats["streams"].values():
        drops = figures["drops"]
        at_output = figures["frames_out"] + sum(n for place, n in drops.items() if place.startswith("queue:write:"))
        reached_output += math.ceil(at_output / 2)
        passed_entrance += math.ceil((figures["frames_in"] - drops["queue:preprocess"]) / 2)
    assert reached_output <= totals["frames_inferred"] <= passed_entrance, (totals, stats["streams"])


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
        with contextlib.suppress(subprocess.TimeoutExpired):
            serve.process.wait(30)  # the moment it exits (serve.wait also drains its stderr)
        took = time.monotonic() - sent
        code = serve.wait(30)
    finally:
        serve.stop()
    assert code == 0, serve.stderr.text()
    assert took < 5.0, f"SIGTERM took {took:.1f} s with {limit} streams"
    states = {figures["state"] for figures in json.loads(stats_path.read_text())["streams"].values()}
    assert states == {"stopped"}
