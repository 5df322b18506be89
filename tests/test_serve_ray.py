"""``backdrop serve --engine ray`` on a real local Ray: streams in actor processes, a SIGKILLed actor restarted by
Ray with its stream resumed, recordings playable throughout, and one-line errors for a cluster that is not there."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

pytest.importorskip("ray", reason="the Ray engine needs ray: pip install 'backdrop[ray]'")

from backdrop.stream.config.serve import parse_serve_config, parse_stream
from backdrop.stream.serve.metrics import engine_registry
from backdrop.stream.serve.ray_engine import RayEngine

LIVE = "testsrc:320x240@15,live"
FAILOVER_TARGET_S = 5.0


def config_data(tmp_path: Path, *names: str) -> dict[str, Any]:
    """Streams from live test sources; the first records 1 s segments, the others write nowhere."""
    streams = [{"name": names[0], "source": LIVE, "outputs": [str(tmp_path / "rec" / "%H%M%S.mp4")]}]
    streams += [{"name": name, "source": LIVE, "outputs": ["null"]} for name in names[1:]]
    return {"background": "color:#00ff00", "model": {"runtime": "onnxruntime"}, "encoder": {"segment_s": 1},
            "streams": streams}  # fmt: skip


def recordings(folder: Path) -> tuple[list[Path], list[Path]]:
    """(finished segments, partials of killed processes), each in name order."""
    files = sorted(p for p in folder.iterdir() if p.is_file())
    return [p for p in files if not p.name.startswith(".")], [p for p in files if p.name.startswith(".")]


def decoded(path: Path) -> list[av.VideoFrame]:
    with av.open(str(path)) as container:
        return list(container.decode(video=0))  # raises where the file cannot be played


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # each check asks the actors (up to 1 s): no sleep needed
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")


@pytest.mark.slow  # starts a Ray of its own: 10–30 s on two cores
def test_two_streams_run_in_actor_processes_until_max_frames(tmp_path: Path) -> None:
    (tmp_path / "streams.yaml").write_text(yaml.safe_dump(config_data(tmp_path, "a", "b")))
    process = subprocess.run(
        [sys.executable, "-m", "backdrop.cli", "serve", "--config", "streams.yaml", "--engine", "ray",
         "--max-frames", "30", "--stats-json", "stats.json", "--control", "127.0.0.1:0"],
        cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert process.returncode == 0, process.stderr
    stats = json.loads((tmp_path / "stats.json").read_text())
    streams = stats["streams"]
    assert {name: (s["state"], s["frames_out"]) for name, s in streams.items()} == {
        "a": ("finished", 30),
        "b": ("finished", 30),
    }
    pids = {s["pid"] for s in streams.values()}
    assert len(pids) == 2 and all(isinstance(pid, int) and pid > 0 for pid in pids)
    assert all(s["node"] for s in streams.values())
    assert stats["totals"]["actors"] == 2 and stats["totals"]["frames_out"] == 60
    finished, partials = recordings(tmp_path / "rec")
    frames = [decoded(path) for path in finished]
    assert not partials and all(f[0].key_frame for f in frames) and sum(map(len, frames)) == 30


@pytest.mark.slow
def test_a_killed_actor_is_restarted_its_stream_resumes_and_streams_come_and_go(tmp_path: Path) -> None:
    engine = RayEngine(parse_serve_config(config_data(tmp_path, "a", "b")))

    def figures() -> dict[str, dict[str, Any]]:
        return {s.name: s.to_json() for s in engine.streams()}

    engine.start()
    try:
        wait_for(lambda: all(s["frames_out"] >= 15 for s in figures().values()), 90, "both streams to run")
        before = figures()
        assert before["a"]["pid"] != os.getpid() and before["a"]["pid"] != before["b"]["pid"]
        os.kill(before["a"]["pid"], signal.SIGKILL)
        killed = time.monotonic()
        states = set()

        def resumed() -> bool:
            now = figures()["a"]
            states.add(now["state"])
            return now["pid"] not in (None, before["a"]["pid"]) and now["state"] == "running" and now["fps_out"] > 0

        wait_for(resumed, 60, "the killed stream to resume")
        failover_s = time.monotonic() - killed
        after = figures()
        print(f"failover after SIGKILL: {failover_s:.2f} s")  # reported by -s; the target is FAILOVER_TARGET_S
        assert failover_s <= 2 * FAILOVER_TARGET_S  # a loaded 2-core machine is slower; see the README
        assert after["a"]["restarts"] == 1 and after["a"]["frames_out"] > before["a"]["frames_out"]
        assert after["b"]["pid"] == before["b"]["pid"] and after["b"]["frames_out"] > before["b"]["frames_out"]
        assert "restarting" in states or failover_s < 2  # seen while Ray restarted it, unless that was quick

        engine.add(parse_stream({"name": "c", "source": LIVE, "outputs": ["null"]}, 0))  # in an actor of its own
        engine.remove("b")
        wait_for(lambda: figures().get("c", {}).get("fps_out", 0) > 0, 60, "the added stream to run")
        pids = {name: s["pid"] for name, s in figures().items()}
        assert set(pids) == {"a", "c"} and pids["c"] not in (pids["a"], before["b"]["pid"])
        metrics = {
            (sample.name, sample.labels.get("stream")): sample.value
            for family in text_string_to_metric_families(generate_latest(engine_registry(engine)).decode())
            for sample in family.samples
        }
        assert metrics[("backdrop_stream_restarts_total", "a")] == 1
        assert metrics[("backdrop_stream_frames_out_total", "c")] > 0
        assert metrics[("backdrop_inference_frames_total", None)] > 0
    finally:
        engine.stop()
    assert {s.name: s.state.value for s in engine.streams()} == {"a": "stopped", "c": "stopped"}
    finished, partials = recordings(tmp_path / "rec")
    assert len(finished) >= 2 and all(decoded(path)[0].key_frame for path in finished)
    assert [p.name.rsplit(".", 2)[1] for p in partials] == [str(before["a"]["pid"])]  # the killed one's open segment
    decoded(partials[0])


def test_an_unreachable_cluster_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "streams.yaml").write_text(yaml.safe_dump(config_data(tmp_path, "a")))
    process = subprocess.run(
        [sys.executable, "-m", "backdrop.cli", "serve", "--config", "streams.yaml", "--engine", "ray",
         "--ray-address", "127.0.0.1:1", "--control", "127.0.0.1:0"],
        cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    errors = [line for line in process.stderr.splitlines() if "error" in line.lower()]
    message = "cannot join the Ray cluster at 127.0.0.1:1: Connection refused (is `ray start --head` running?)"
    assert process.returncode == 2 and errors == [f"backdrop: error: {message}"], process.stderr
