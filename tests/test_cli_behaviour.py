"""Commands that behave as people expect: --set, no silent overwrite, paced playback, helpful distill errors,
progress only on terminals with a human summary (or --json), and library log lines under their own names."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from clips import decode, error_lines, run_cli

from backdrop import run as api_run
from backdrop.cli import build_parser, main
from backdrop.commands.run import config_from_args
from backdrop.stream.config.run import RunConfig, load_config, with_overrides
from backdrop.stream.config.serve import load_serve_config
from backdrop.stream.sources.demo_clip import write_clip
from backdrop.stream.sources.pacing import paced, paces
from backdrop.stream.sources.testsrc import TestSource

BACKDROP = Path(sys.executable).with_name("backdrop")
FAST = ("--runtime", "onnxruntime", "--background", "color:#00ff00", "--no-progress")
PACED_FPS, PACED_FRAMES = 10.0, 8


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight frames of a person at 10 fps: 0.8 s when played."""
    path = tmp_path_factory.mktemp("behaviour") / "clip.mp4"
    return write_clip(path, width=320, height=180, frames=PACED_FRAMES, fps=PACED_FPS)


def parsed(*argv: str) -> RunConfig:
    """The config ``backdrop run ARGV`` would run."""
    return config_from_args(build_parser().parse_args(["run", *argv]))


# --- --set KEY=VALUE --------------------------------------------------------------------------------------


def test_set_takes_yaml_values_for_any_key() -> None:
    config = parsed(
        *("--set", "mask.gamma=0.8", "--set", "model.interval=auto", "--set", "encoder.crf=20"),
        *("--set", "controls.backgrounds=[blur:5, 'color:#000000']", "--set", "source.give_up_after_s="),
    )
    assert (config.mask.gamma, config.model.interval, config.encoder.crf) == (0.8, "auto", 20)
    assert config.controls.backgrounds == ("blur:5", "color:#000000")
    assert config.source.give_up_after_s is None


def test_precedence_is_yaml_then_set_then_flags(tmp_path: Path) -> None:
    yaml = tmp_path / "run.yaml"
    yaml.write_text("source: {uri: from-yaml.mp4, fps: 12}\nmask: {gamma: 2.0}\n")
    config = parsed("--config", str(yaml), "--set", "source.uri=from-set.mp4", "--set", "mask.gamma=0.5")
    assert (config.source.uri, config.source.fps, config.mask.gamma) == ("from-set.mp4", 12.0, 0.5)
    config = parsed("--config", str(yaml), "--set", "source.uri=from-set.mp4", "--source", "from-flag.mp4")
    assert config.source.uri == "from-flag.mp4"


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("mask.gama=0.8", "unknown key 'mask.gama' (known: "),
        ("mask.gamma=20", "mask.gamma: must be in [0.1, 10]"),
        ("model.interval=sometimes", "model.interval: expected int or 'auto', got 'sometimes'"),
        ("encoder.crf=[1, 2]", "encoder.crf: expected int, got [1, 2]"),
        ("background.blur=5", "background: expected str, got {'blur': 5}"),
        ("mask.gamma", "--set 'mask.gamma': expected KEY=VALUE"),
        ("mask.gamma=[", "--set mask.gamma: '[' is not a YAML value"),
    ],
)
def test_a_bad_set_is_one_line_naming_the_key(
    capsys: pytest.CaptureFixture[str], assignment: str, message: str
) -> None:
    code, err = run_cli(capsys, "run", "--set", assignment, "--output", "null")
    lines = error_lines(err)
    assert code == 2 and len(lines) == 1 and lines[0].startswith(f"backdrop: error: {message}"), err


def test_set_drives_a_real_run(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    code, err = run_cli(
        capsys, "run", "--set", "source.uri=testsrc:160x120,frames=9", "--set", "pipeline.max_frames=4",
        "--output", out, *FAST,
    )  # fmt: skip
    assert code == 0, err
    assert len(decode(out)) == 4


def test_serve_set_changes_the_defaults_and_serve_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "streams.yaml"
    path.write_text("streams:\n  - {name: a, source: testsrc, outputs: ['null']}\n")
    config = load_serve_config(path, [("mask.gamma", 0.8), ("serve.batch_wait_ms", 2)])
    assert config.run_config("a").mask.gamma == 0.8 and config.serve.batch_wait_ms == 2.0
    code, err = run_cli(capsys, "serve", "--config", path, "--set", "serve.batch_wait_ms=-1")
    assert code == 2 and error_lines(err) == ["backdrop: error: serve.batch_wait_ms: must be in [0, 1000]"]


# --- never replace an existing file silently --------------------------------------------------------------


def test_an_existing_output_is_refused_before_the_model_loads(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "out.mp4"
    out.write_bytes(b"last week's recording")
    # a model that does not exist: had the run got as far as loading it, that would be the error
    code, err = run_cli(capsys, "run", "--source", "testsrc", "--output", out, "--model", str(tmp_path / "nope"))
    assert code == 2
    assert error_lines(err) == [f"backdrop: error: output {out} already exists: pass -y/--overwrite to replace, "
                                "or choose another name"]  # fmt: skip
    assert out.read_bytes() == b"last week's recording"


def test_the_default_output_is_protected_too(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("out.mp4").write_bytes(b"mine")
    code, err = run_cli(capsys, "run", "--source", "testsrc:160x120,frames=3", *FAST)
    assert code == 2 and "output out.mp4 already exists" in err
    code, err = run_cli(capsys, "run", "--source", "testsrc:160x120,frames=3", "-y", *FAST)
    assert code == 0, err
    assert len(decode(tmp_path / "out.mp4")) == 3


def test_overwrite_replaces_the_output_and_the_stats(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out, stats = tmp_path / "out.mp4", tmp_path / "stats.json"
    args = ("run", "--source", "testsrc:160x120,frames=3", "--output", out, "--stats-json", stats, *FAST)
    stats.write_text("{}")
    code, err = run_cli(capsys, *args)
    assert code == 2 and error_lines(err) == [
        f"backdrop: error: --stats-json {stats} already exists: pass -y/--overwrite to replace, or choose another name"
    ]
    assert not out.exists()
    code, err = run_cli(capsys, *args, "--overwrite")
    assert code == 0, err
    assert json.loads(stats.read_text())["totals"]["frames_out"] == 3


def test_overwrite_replaces_the_frames_of_a_png_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    for name in ("frame_000000.png", "frame_000001.png", "frame_000002.png", "notes.txt"):
        (folder / name).write_bytes(b"earlier")
    code, err = run_cli(capsys, "run", "--source", "testsrc:160x120,frames=2", "--output", f"{folder}/", "-y", *FAST)
    assert code == 0, err
    assert sorted(p.name for p in folder.iterdir()) == ["frame_000000.png", "frame_000001.png", "notes.txt"]
    assert cv2.imread(str(folder / "frame_000001.png")).shape == (120, 160, 3)


def test_eval_and_train_refuse_to_replace_their_outputs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, clip: Path
) -> None:
    scores = tmp_path / "scores.json"
    scores.write_text("{}")
    code, err = run_cli(capsys, "eval", "--video", clip, "--json", scores)
    assert code == 2 and error_lines(err) == [
        f"backdrop: error: --json {scores} already exists: pass -y/--overwrite to replace, or choose another name"
    ]
    model = tmp_path / "mine.onnx"
    model.write_bytes(b"a model I trained last month")
    code, err = run_cli(capsys, "train", "--data", tmp_path, "--out", tmp_path / "mine.keras")
    assert code == 2 and error_lines(err) == [
        f"backdrop: error: model file {model} already exists: pass -y/--overwrite to replace, or choose another name"
    ]


# --- pacing -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outputs", "pace", "expected"),
    [
        (["out.mp4"], "auto", False),
        (["null"], "auto", False),
        (["frames/", "null"], "auto", False),
        (["window"], "auto", True),
        (["out.mp4", "http://127.0.0.1:8080"], "auto", True),
        (["rtsp://127.0.0.1:8554/live"], "auto", True),
        (["vcam"], "auto", True),
        (["window"], False, False),
        (["null"], True, True),
    ],
)
def test_files_are_paced_only_into_live_outputs(outputs: list[str], pace: object, expected: bool) -> None:
    assert paces(with_overrides(RunConfig(), {"outputs": outputs, "source.pace": pace})) is expected


def test_no_pace_flag_and_live_sources_are_never_paced() -> None:
    assert parsed("--output", "window", "--no-pace").source.pace is False
    live = TestSource.from_spec("testsrc:160x120,live", fps=30)
    assert paced(live, with_overrides(RunConfig(), {"outputs": ["window"]})) is live


def test_a_paced_file_arrives_at_its_own_frame_rate(clip: Path) -> None:
    config = with_overrides(
        load_config(None),
        {"source.uri": str(clip), "source.pace": True, "outputs": ["null"], "model.runtime": "onnxruntime"},
    )
    arrivals: list[float] = []
    stats = api_run(config, on_frame=lambda frame: arrivals.append(frame.captured_at))
    assert stats["frames_out"] == PACED_FRAMES  # none dropped
    gaps = np.diff(arrivals)
    assert gaps.min() >= 1 / PACED_FPS - 0.02, gaps  # each frame released at its presentation time


def test_a_file_into_a_browser_preview_plays_in_real_time(tmp_path: Path, clip: Path) -> None:
    command = [BACKDROP, "run", "--source", clip, "--output", "http://127.0.0.1:0", *FAST]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    took = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert f"{PACED_FRAMES} frames" in done.stderr
    assert took >= (PACED_FRAMES - 1) / PACED_FPS  # the clip lasts 0.8 s: it cannot have been shown faster


# --- distill's confidence bar -----------------------------------------------------------------------------


def test_a_bar_that_keeps_nothing_shows_the_spread_and_a_value_that_works(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, clip: Path
) -> None:
    out = tmp_path / "data"
    code, err = run_cli(capsys, "distill", clip, "--out", out, "--min-confidence", "0.999", "--threads", "1")
    (line,) = error_lines(err)
    assert code == 2 and line.startswith("backdrop: error: --min-confidence 0.999 keeps 0 of 8 frames (confidence min ")
    assert "median" in line and "90th percentile" in line
    assert not list(out.rglob("*.jpg"))  # no half-made dataset is left behind
    suggested = line.rsplit("try --min-confidence ", 1)[1].split(",")[0]
    assert main(["distill", str(clip), "--out", str(out), "--min-confidence", suggested, "--json"]) == 0
    (summary,) = json.loads(capsys.readouterr().out)["clips"]
    assert summary["kept"] >= PACED_FRAMES // 2 and summary["kept"] + summary["dropped"] == PACED_FRAMES


# --- progress and summaries -------------------------------------------------------------------------------


def test_eval_prints_a_summary_or_json(capsys: pytest.CaptureFixture[str], clip: Path) -> None:
    capsys.readouterr()
    assert main(["eval", "--video", str(clip)]) == 0
    printed = capsys.readouterr()
    assert f"{PACED_FRAMES} frames 320x180" in printed.out and "edge flicker" in printed.out
    assert "eval [" not in printed.err  # not a terminal: no progress
    assert main(["eval", "--video", str(clip), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["frames"] == PACED_FRAMES and "per_frame" in report


def test_progress_is_shown_on_a_terminal(tmp_path: Path, clip: Path) -> None:
    """stderr a terminal (a pty): the bar is drawn there, and the summary still goes to stdout."""
    primary, secondary = pty.openpty()
    command = [BACKDROP, "eval", "--video", clip, "--threads", "1"]
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=secondary, text=True, timeout=120, cwd=tmp_path)
    os.close(secondary)
    terminal = b""
    while chunk := _read(primary):
        terminal += chunk
    os.close(primary)
    assert done.returncode == 0
    assert f"eval [{'#' * 24}] {PACED_FRAMES}/{PACED_FRAMES} 100%".encode() in terminal
    assert "edge flicker" in done.stdout


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:  # EIO: the other end is closed and everything has been read
        return b""


def test_library_log_lines_carry_their_own_names() -> None:
    code = (
        "import logging; from backdrop.cli import configure_logging; configure_logging(); "
        "logging.getLogger('tensorflow').warning('tf says'); logging.getLogger('absl').info('absl chatter'); "
        "logging.getLogger('backdrop.stream.x').info('ours')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stderr.splitlines() == ["tensorflow: tf says", "backdrop: ours"]
