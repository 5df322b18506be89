"""``backdrop serve`` writes nothing it or another stream reads or writes, and one output has one live writer.

Serve streams and ``--stats-json`` go through run's write-target check (stream.sinks.targets), between streams too,
in both directions; a file another live process writes is refused by its write lock (stream.sinks.write_lock).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import av
import pytest
import yaml
from clips import error_lines, run_cli
from rtsp_fixtures import wait_until

from backdrop.benchmarks.rtsp_servers import stop_process
from backdrop.errors import ConfigError
from backdrop.stream.config.serve import parse_serve_config, parse_stream
from backdrop.stream.sources.demo_clip import write_clip

LIVE = "testsrc:160x120@30,live"
RUN = ("--runtime", "onnxruntime", "--no-progress")


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", width=160, height=96, frames=3)


@pytest.fixture
def workdir(tmp_path: Path, small_clip: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder holding a source clip cam.mp4 and streams.yaml (stream 'a': cam.mp4 → a.mp4)."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(small_clip, tmp_path / "cam.mp4")
    streams = [{"name": "a", "source": "cam.mp4", "outputs": ["a.mp4"]}]
    config = {"model": {"runtime": "onnxruntime"}, "streams": streams}  # runnable: a serve that misses a clash ends
    (tmp_path / "streams.yaml").write_text(yaml.safe_dump(config))
    return tmp_path


def contents(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.is_file()}


@pytest.mark.parametrize(
    ("stats", "message"),
    [
        ("streams.yaml", "--stats-json streams.yaml is the config file streams.yaml: choose another stats file"),
        ("a.mp4", "--stats-json a.mp4 is the output a.mp4 of stream 'a': choose another stats file"),
        ("cam.mp4", "--stats-json cam.mp4 is the source cam.mp4 of stream 'a': choose another stats file"),
    ],
    ids=["config-file", "output", "source"],
)
def test_serve_stats_json_is_no_path_a_stream_reads_or_writes(
    workdir: Path, capsys: pytest.CaptureFixture[str], stats: str, message: str
) -> None:
    before = contents(workdir)
    code, err = run_cli(
        capsys,
        "serve",
        "--config",
        "streams.yaml",
        "--control",
        "127.0.0.1:0",
        "--max-frames",
        "1",
        "--stats-json",
        stats,
    )
    assert code == 2 and [line for line in err.splitlines() if line] == [f"backdrop: error: {message}"]
    assert contents(workdir) == before


def stream(name: str, source: str, output: str) -> dict[str, Any]:
    return {"name": name, "source": source, "outputs": [output]}


@pytest.mark.parametrize(
    ("added", "message"),
    [
        (
            stream("b", "testsrc:160x120", "cam.mp4"),
            "streams[1].outputs: output cam.mp4 is the source cam.mp4 of stream 'a': choose another output",
        ),
        (stream("b", "a.mp4", "null"), "streams[1]: the source a.mp4 is the output a.mp4 of stream 'a'"),
    ],
    ids=["output-is-a-source", "source-is-an-output"],
)
def test_an_added_stream_neither_writes_nor_reads_another_streams_paths(
    workdir: Path, added: dict[str, Any], message: str
) -> None:
    (workdir / "a.mp4").write_bytes(b"stream a's recording")  # a source must exist to be one
    config = parse_serve_config({"streams": [stream("a", "cam.mp4", "a.mp4")]}, path=workdir / "streams.yaml")
    with pytest.raises(ConfigError) as caught:
        config.with_stream(parse_stream(added, 0))
    assert str(caught.value) == message


def test_an_added_stream_does_not_write_the_stats_file(workdir: Path) -> None:
    config = parse_serve_config({"streams": [stream("a", "cam.mp4", "a.mp4")]})
    config = dataclasses.replace(config, stats_json="stats.json")  # as serve --stats-json stats.json sets it
    with pytest.raises(
        ConfigError, match=r"^streams\[1\]: the output stats.json is this server's --stats-json stats.json$"
    ):
        config.with_stream(parse_stream(stream("b", "testsrc:160x120", "stats.json"), 0))


def test_config_file_streams_are_checked_both_ways(workdir: Path) -> None:
    (workdir / "b.mp4").write_bytes(b"stream b's recording")
    streams = [stream("a", "cam.mp4", "b.mp4"), stream("b", "b.mp4", "null")]  # the later stream reads the earlier's
    with pytest.raises(ConfigError, match=r"^streams\[1\]: the source b.mp4 is the output b.mp4 of stream 'a'$"):
        parse_serve_config({"streams": streams})
    with pytest.raises(ConfigError, match=r"^streams\[1\].outputs: output b.mp4 is the source b.mp4 of stream 'b'"):
        parse_serve_config({"streams": streams[::-1]})


def start_recording(output: Path) -> subprocess.Popen[bytes]:
    """``backdrop run`` of a live test source into ``output``, in the background."""
    return subprocess.Popen(
        [sys.executable, "-m", "backdrop", "run", "--source", LIVE, "--output", str(output), *RUN],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def frames_in(path: Path) -> int:
    """Frames a player gets from ``path`` now; 0 while it has no header yet."""
    try:
        with av.open(str(path)) as container:
            return sum(1 for _ in container.decode(video=0))
    except av.error.FFmpegError:
        return 0


def test_a_file_a_live_process_writes_is_refused_and_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    output = tmp_path / "same.mp4"
    first = start_recording(output)
    try:
        partial = output.with_name(f".{output.name}.{first.pid}.partial")
        wait_until(lambda: frames_in(partial) >= 1, 60, "the first recording's first frame")
        code, err = run_cli(capsys, "run", "--source", LIVE, "--output", output, "--max-frames", "3", *RUN)
        assert code == 2 and error_lines(err) == [
            f"backdrop: error: {output} is being written by another backdrop process (pid {first.pid})"
        ]
        assert not [r for r in caplog.records if "interrupted" in r.getMessage()]  # a live partial is not one
        assert partial.exists() and not output.exists()
        first.send_signal(signal.SIGINT)
        assert first.wait(30) == 128 + signal.SIGINT
    finally:
        stop_process(first)
    assert frames_in(output) >= 1 and sorted(p.name for p in tmp_path.iterdir()) == ["same.mp4"]


def test_the_lock_of_a_killed_writer_does_not_block_the_next(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "rec.mp4"
    killed = start_recording(output)
    try:
        partial = output.with_name(f".{output.name}.{killed.pid}.partial")
        wait_until(partial.exists, 60, "the recording to start")
        killed.send_signal(signal.SIGKILL)
        killed.wait(10)
    finally:
        stop_process(killed)
    assert (tmp_path / ".rec.mp4.lock").read_text() == str(killed.pid)  # left behind: nothing removes it
    code, err = run_cli(capsys, "run", "--source", LIVE, "--output", output, "--max-frames", "3", *RUN)
    assert code == 0, err
    assert frames_in(output) == 3 and partial.exists()  # the killed run's partial is kept, as before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([partial.name, "rec.mp4"])  # no lock left
