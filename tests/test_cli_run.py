"""``backdrop run`` as users call it: bad input is one line and exit 2; a signal stops it with the signal's code
(130, 143) and playable files."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from clips import decode, error_lines, run_cli
from conftest import Unprivileged

from backdrop.benchmarks.rtsp_servers import LineWatcher, stop_process
from backdrop.cli import main
from backdrop.stream.sources.demo_clip import read_stamp

REPO = Path(__file__).resolve().parent.parent


def start(*command: object) -> tuple[subprocess.Popen[str], LineWatcher]:
    """``command`` as a child process, its stderr collected line by line."""
    process = subprocess.Popen(
        [*map(str, command)], cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    return process, LineWatcher(process.stderr)


def wait_for_frames(stderr: LineWatcher) -> None:
    """Block until the progress line shows frames written (not only a started run)."""
    for seen in itertools.count(1):
        if not stderr.wait_for(" frames ", timeout=60, occurrences=seen).startswith("0 frames"):
            return


def finish(process: subprocess.Popen[str], stderr: LineWatcher, timeout: float) -> list[str]:
    """Wait for the child to exit; its stderr lines. Fails (and kills it) after ``timeout`` seconds."""
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        stop_process(process)
        pytest.fail(f"still running {timeout} s later; stderr:\n{stderr.text()}")
    stderr.join(5)
    return stderr.lines


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_the_run_with_its_code_and_finished_outputs(tmp_path: Path, signum: int) -> None:
    video, frames = tmp_path / "live.mp4", tmp_path / "frames"
    process, stderr = start(
        sys.executable, "-m", "backdrop", "run", "--source", "testsrc:320x240@30,live", "--background", "blur:15",
        "--output", video, "--output", f"{frames}/", "--runtime", "onnxruntime", "--stats-json", tmp_path / "s.json",
    )  # fmt: skip
    try:
        wait_for_frames(stderr)
        process.send_signal(signum)
        lines = finish(process, stderr, timeout=30)
    finally:
        stop_process(process)
    name = signal.Signals(signum).name
    assert process.returncode == 128 + signum, lines  # 130, 143: a script's `&&` does not go on
    (line,) = error_lines("\n".join(lines))  # no success line, no traceback
    stopped = re.fullmatch(rf"backdrop: stopped by {name} after (\d+) frames → (.*)", line)
    assert stopped, line
    written = int(stopped.group(1))
    assert written >= 1 and stopped.group(2) == f"{video} (finished), {frames}/ (finished)"
    assert len(decode(video)) == written  # the file is playable, with every frame the line counts
    pngs = sorted(frames.iterdir())
    assert [p.name for p in pngs] == [f"frame_{i:06d}.png" for i in range(written)]  # no temporary files left
    assert all(cv2.imread(str(p)) is not None for p in pngs)
    assert not list(tmp_path.glob(".*partial"))
    stats = json.loads((tmp_path / "s.json").read_text())
    run, main = stats["run"], stats["streams"]["main"]
    assert run["interrupted"] is True and run["stopped_by"] == name and main["frames_out"] == written


def test_max_frames_ends_with_success(tmp_path: Path) -> None:
    process, stderr = start(
        sys.executable, "-m", "backdrop", "run", "--source", "testsrc:320x240@30,live", "--output",
        tmp_path / "out.mp4", "--max-frames", 5, "--runtime", "onnxruntime", "--no-progress",
    )  # fmt: skip
    lines = finish(process, stderr, timeout=60)
    assert process.returncode == 0, lines
    (line,) = error_lines("\n".join(lines))
    assert line.startswith("backdrop: 5 frames in ")
    assert len(decode(tmp_path / "out.mp4")) == 5


def test_png_folder_with_frames_of_an_earlier_run_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], stamped_clip: Path
) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    earlier = {name: name.encode() for name in ("frame_000000.png", "frame_000001.png", "notes.txt")}
    for name, data in earlier.items():
        (folder / name).write_bytes(data)
    code, err = run_cli(capsys, "run", "--source", stamped_clip, "--output", f"{folder}/", "--runtime", "onnxruntime")
    assert code == 2
    assert err.count("\n") == 1, err
    assert err.startswith(f"backdrop: error: output {folder}/ already holds 2 PNG frames: pass -y/--overwrite")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == earlier  # nothing overwritten, added or removed


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


def test_an_unwritable_stats_path_is_one_line_and_exit_2_before_the_run(
    unprivileged: Unprivileged, stamped_clip: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """As a user the modes bind: nobody where the tests run as root (as in CI), since root writes anywhere."""
    folder = unprivileged.folder
    shutil.copy(stamped_clip, folder / "clip.mp4")
    (folder / "locked").mkdir()
    unprivileged.own(folder / "clip.mp4", folder / "locked")
    (folder / "locked").chmod(0o555)
    args = ["run", "--source", "clip.mp4", "--output", "out.mp4", "--runtime", "onnxruntime", "--no-progress",
            "--stats-json"]  # fmt: skip
    # first the same refusal here, for a missing folder: it imports all the refusal needs, as nobody may not read
    # this interpreter's own library (a pyenv under /root)
    monkeypatch.chdir(folder)
    assert run_cli(capsys, *args, "nope/stats.json") == (
        2, "backdrop: error: cannot write stats to nope/stats.json: folder nope does not exist\n"
    )  # fmt: skip
    code, err = unprivileged.call(lambda: main([*args, "locked/stats.json"]))
    assert (code, err) == (2, "backdrop: error: cannot write stats to locked/stats.json: permission denied\n")
    assert sorted(path.name for path in folder.rglob("*")) == ["clip.mp4", "locked"]  # refused before writing


def tiny_video(path: Path, width: int, height: int) -> Path:
    """Three frames of ``width``×``height``: FFV1 4:4:4 (any size) in .mkv, H.264 4:2:0 (even sizes) in .mp4."""
    codec, pix_fmt = ("ffv1", "yuv444p") if path.suffix == ".mkv" else ("libx264", "yuv420p")
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        for value in (0, 100, 200):
            picture = np.full((height, width, 3), value, np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="bgr24")))
        container.mux(stream.encode())
    return path


def image_folder(folder: Path, images: dict[str, tuple[int, int] | None]) -> Path:
    """A folder of PNGs named as given, each (width, height) of noise, or unreadable bytes for None."""
    folder.mkdir()
    for name, size in images.items():
        if size is None:
            (folder / name).write_bytes(b"not a png")
        else:
            width, height = size
            cv2.imwrite(str(folder / name), np.random.default_rng(0).integers(0, 256, (height, width, 3), np.uint8))
    return folder


SMALL_SOURCES = {  # name → (how to make the source in a folder, its error line ({source}: its path) or frames written)
    "1x1 image": (
        lambda d: image_folder(d / "in", {"a.png": (1, 1)}),
        "no usable images in folder {source}: skipped images under 2x2 pixels: a.png (1x1)",
    ),
    "1-pixel-wide image": (
        lambda d: image_folder(d / "in", {"a.png": (1, 6)}),
        "no usable images in folder {source}: skipped images under 2x2 pixels: a.png (1x6)",
    ),
    "tiny and unreadable images": (
        lambda d: image_folder(d / "in", {"a.png": (1, 1), "b.png": None}),
        "no usable images in folder {source}: skipped unreadable images: b.png; skipped images under 2x2 pixels: "
        "a.png (1x1)",
    ),
    "a tiny image after a good one": (
        lambda d: image_folder(d / "in", {"a.png": (8, 8), "b.png": (1, 1)}),
        "{source}: skipped images under 2x2 pixels: b.png (1x1); wrote the 1 good frames",
    ),
    "1x1 video": (
        lambda d: tiny_video(d / "in.mkv", 1, 1),
        "{source} is 1x1 pixels: too small to segment (frames need at least 2x2)",
    ),
    "1x1 testsrc": (
        lambda d: "testsrc:1x1",
        "testsrc: 1x1@30 is out of range (sides 16…7680 pixels, fps up to 1000)",
    ),
    "2x2 image": (lambda d: image_folder(d / "in", {"a.png": (2, 2), "b.png": (5, 3)}), 2),
    "3x3 image": (lambda d: image_folder(d / "in", {"a.png": (3, 3)}), 1),  # the .mp4 drops the odd row, column
    "2x2 video": (lambda d: tiny_video(d / "in.mp4", 2, 2), 3),  # decoded and composited in I420
    "3x5 video": (lambda d: tiny_video(d / "in.mkv", 3, 5), 3),
}


@pytest.mark.parametrize("case", SMALL_SOURCES)
def test_sources_too_small_to_segment_are_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    make, expected = SMALL_SOURCES[case]
    source = make(tmp_path)
    output = tmp_path / "out.mp4"
    code, err = run_cli(capsys, "run", "--source", source, "--output", output, "--runtime", "onnxruntime")
    if isinstance(expected, int):
        assert code == 0 and len(decode(output)) == expected, err
    else:
        assert code == 2 and error_lines(err) == [f"backdrop: error: {expected.format(source=source)}"], err


def test_a_tiny_image_is_one_line_in_a_real_process(tmp_path: Path) -> None:
    source = image_folder(tmp_path / "in", {"a.png": (1, 1)})
    result = subprocess.run(
        [sys.executable, "-m", "backdrop", "run", "--source", source, "--output", tmp_path / "out", "--runtime",
         "onnxruntime", "--no-progress"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert (
        result.stderr
        == f"backdrop: error: no usable images in folder {source}: skipped images under 2x2 pixels: a.png (1x1)\n"
    )


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
    peak = json.loads(stats.read_text())["totals"]["peak_rss_mb"]
    assert 50 < peak < 500  # the model, the codecs and a few small frames; the spawner's 600 MiB not counted
