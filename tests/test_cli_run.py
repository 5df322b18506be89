"""``backdrop run`` as users call it: bad input is one line and exit 2, SIGINT leaves a playable file."""

from __future__ import annotations

import json
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from clips import decode, error_lines, run_cli

from backdrop.stream.demo_clip import read_stamp

REPO = Path(__file__).resolve().parent.parent


def backdrop_process(*args: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "backdrop.cli", *map(str, args)],
        cwd=REPO,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )


def wait_for_line(process: subprocess.Popen[str], predicate, timeout: float) -> list[str]:
    """Read stderr lines until one satisfies ``predicate``; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    lines: list[str] = []
    with selectors.DefaultSelector() as selector:
        selector.register(process.stderr, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
                continue
            line = process.stderr.readline()
            if not line:
                break
            lines.append(line)
            if predicate(line):
                return lines
    process.kill()
    pytest.fail(f"no matching line within {timeout}s; got {lines!r}")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_mid_run_leaves_a_playable_file(tmp_path: Path, signum: int) -> None:
    output = tmp_path / "live.mp4"
    process = backdrop_process(
        "run", "--source", "testsrc:320x240@30,live", "--background", "blur:15", "--output", output,
        "--runtime", "onnxruntime", "--stats-json", tmp_path / "stats.json",
    )  # fmt: skip
    try:
        wait_for_line(process, lambda line: "frames" in line and not line.startswith("0 frames"), timeout=60)
        process.send_signal(signum)
        _, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "Traceback" not in err
    frames = decode(output)
    assert len(frames) >= 1
    assert not list(tmp_path.glob(".*partial"))
    assert '"interrupted": true' in (tmp_path / "stats.json").read_text()


def truncated(tmp_path: Path, clip: Path) -> Path:
    data = clip.read_bytes()
    path = tmp_path / "truncated.mkv"
    path.write_bytes(data[: int(len(data) * 0.7)])
    return path


def corrupted(tmp_path: Path, clip: Path) -> Path:
    data = bytearray(clip.read_bytes())
    start = int(len(data) * 0.6)
    data[start : start + 2000] = b"\xff" * 2000
    path = tmp_path / "corrupt.mp4"
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("truncated", "truncated"),
        ("corrupt", "corrupt"),
    ],
)
def test_damaged_input_writes_its_good_frames_then_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], stamped_clip: Path, mkv_clip: Path, kind: str, message: str
) -> None:
    source = truncated(tmp_path, mkv_clip) if kind == "truncated" else corrupted(tmp_path, stamped_clip)
    output = tmp_path / "out.mp4"
    code, err = run_cli(capsys, "run", "--source", source, "--background", "color:#0000ff", "--output", output,
                        "--runtime", "onnxruntime")  # fmt: skip
    assert code == 2
    (line,) = error_lines(err)
    assert line.startswith("backdrop: error:") and message in line and "good frames" in line
    frames = decode(output)
    assert len(frames) >= 5
    stamps = [read_stamp(frame) for frame in frames]
    assert stamps[:5] == [0, 1, 2, 3, 4]  # the frames before the damage came through intact


def bad_input_cases(tmp_path: Path, clip: Path) -> dict[str, tuple[list[object], str]]:
    (tmp_path / "notes.mp4").write_text("not a video")
    (tmp_path / "empty").mkdir()
    out = tmp_path / "out.mp4"
    return {
        "missing source": (["--source", tmp_path / "nope.mp4", "--output", out], "input not found"),
        "not a video": (["--source", tmp_path / "notes.mp4", "--output", out], "cannot open"),
        "empty folder": (["--source", tmp_path / "empty", "--output", out], "no images"),
        "missing background": (["--source", clip, "--background", tmp_path / "bg.jpg", "--output", out], "not found"),
        "bad background": (["--source", clip, "--background", "stripes", "--output", out], "background"),
        "unwritable output": (["--source", clip, "--output", tmp_path / "no" / "dir" / "o.mp4"], "does not exist"),
        "unwritable system path": (["--source", clip, "--output", "/proc/o.mp4"], "cannot write"),
        "unknown output": (["--source", clip, "--output", tmp_path / "o.gif"], "unknown output"),
        "unknown runtime": (["--source", clip, "--output", out, "--runtime", "quantum"], "unknown runtime"),
        "unknown model": (["--source", clip, "--output", out, "--model", "giraffe"], "unknown model"),
        "bad max frames": (["--source", clip, "--output", out, "--max-frames", "0"], "max_frames"),
    }


CASES = [
    "missing source", "not a video", "empty folder", "missing background", "bad background",
    "unwritable output", "unwritable system path", "unknown output", "unknown runtime", "unknown model",
    "bad max frames",
]  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], stamped_clip: Path, case: str
) -> None:
    args, message = bad_input_cases(tmp_path, stamped_clip)[case]
    code, err = run_cli(capsys, "run", *args)
    assert code == 2
    assert err.count("\n") == 1, err
    assert err.startswith("backdrop: error:") and message in err and "Traceback" not in err
    leftovers = {p.name for p in tmp_path.rglob("*")} - {"notes.mp4", "empty"}
    assert leftovers == set(), f"left behind: {leftovers}"


def test_onnx_run_does_not_import_tensorflow(tmp_path: Path, stamped_clip: Path) -> None:
    code = (
        "import sys; from backdrop.cli import main; "
        f"rc = main(['run', '--source', {str(stamped_clip)!r}, '--output', 'null', '--runtime', 'onnxruntime', "
        "'--max-frames', '3', '--no-progress']); "
        "sys.exit(rc or 10 * ('tensorflow' in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_help_lists_the_run_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_cli(capsys, "run", "--help")
    assert exit_info.value.code == 0
    assert "--stats-json" in capsys.readouterr().out


def test_stats_report_the_run_s_own_peak_memory(tmp_path: Path, stamped_clip: Path) -> None:
    """A fresh run's peak RSS is its own: not inflated by the (larger) process that spawned it."""
    ballast = "x = bytearray(600 * 2**20); x[::4096] = b'x' * len(x[::4096]); "  # a 600 MiB spawner
    stats = tmp_path / "stats.json"
    run = (
        f"import subprocess, sys; {ballast}"
        f"sys.exit(subprocess.run([sys.executable, '-m', 'backdrop.cli', 'run', '--source', {str(stamped_clip)!r}, "
        f"'--output', 'null', '--runtime', 'onnxruntime', '--no-progress', '--stats-json', {str(stats)!r}]).returncode)"
    )
    result = subprocess.run([sys.executable, "-c", run], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    peak = json.loads(stats.read_text())["peak_rss_mb"]
    assert 50 < peak < 500  # the model, the codecs and a few small frames; the spawner's 600 MiB not counted
