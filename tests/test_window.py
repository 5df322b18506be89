"""The desktop window under a real X server (Xvfb) with the real toolkit (pygame-ce): what a viewer sees and does.

``backdrop run`` runs as a subprocess where its exit code matters. The source is a live-paced testsrc (no
person in it, so the model leaves every pixel to the background): a colour background fills the window.
"""

from __future__ import annotations

import importlib.metadata
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from clips import decode, error_lines, run_cli
from rtsp_fixtures import wait_until
from xvfb import Xvfb, median_bgr, missing_tools

from backdrop.benchmarks.window_latency import measure_window_latency, summary
from backdrop.errors import SinkError
from backdrop.stream.core.frame import Frame
from backdrop.stream.core.live_controls import LiveControls
from backdrop.stream.sinks import window as window_sink
from backdrop.stream.sinks.window import WindowSink


@pytest.fixture(autouse=True)
def x_tools() -> None:
    """Xvfb and xdotool, which `make test` installs (make system-deps): a failure without them, never a skip."""
    if missing_tools():
        pytest.fail(f"{', '.join(missing_tools())} missing: run `make system-deps` (`make test` does)")


BACKDROP = str(Path(sys.executable).with_name("backdrop"))
SOURCE = "testsrc:320x240@30,live"
GREEN, BLUE = (0, 255, 0), (255, 0, 0)  # BGR
RUN_EXIT_S = 10.0


@pytest.fixture
def x() -> Iterator[Xvfb]:
    with Xvfb() as server:
        yield server


def start_run(x: Xvfb, tmp_path: Path, *outputs: str, config: str = "") -> subprocess.Popen[str]:
    path = tmp_path / "run.yaml"
    path.write_text(config or "{}\n")
    args = ["run", "--config", str(path), "--source", SOURCE, "--background", "color:#00ff00", "--no-progress"]
    for output in ("window", *outputs):
        args += ["--output", output]
    return subprocess.Popen(
        [BACKDROP, *args], env=x.env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def close_enough(image: np.ndarray, bgr: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= 12 for a, b in zip(median_bgr(image), bgr, strict=True))


def wait_for_picture(x: Xvfb, window: str, bgr: tuple[int, int, int], what: str) -> None:
    wait_until(lambda: close_enough(x.screenshot(window), bgr), 15, what)


def press(x: Xvfb, window: str, run: subprocess.Popen[str], *keys: str) -> None:
    """Send ``keys`` to the run's window; if that fails, say whether the run is still alive and what it printed."""
    try:
        if keys == ("q",):  # the run closes its window on the key press: a release would find no window
            x.key_down(window, "q")
        else:
            x.key(window, *keys)
    except subprocess.CalledProcessError as e:
        state = "was still running" if run.poll() is None else f"had ended with {run.returncode}"
        run.kill()
        stderr = run.communicate(timeout=RUN_EXIT_S)[1]
        pytest.fail(f"xdotool key {' '.join(keys)} failed ({e.stderr.strip()}); the run {state}:\n{stderr}")


def finish(run: subprocess.Popen[str]) -> tuple[int, str]:
    try:
        _, stderr = run.communicate(timeout=RUN_EXIT_S)
    except subprocess.TimeoutExpired:
        run.kill()
        _, stderr = run.communicate()
        pytest.fail(f"the run did not end within {RUN_EXIT_S} s:\n{stderr}")
    return run.returncode, stderr


def test_exactly_one_opencv_distribution_provides_cv2() -> None:
    """Two OpenCV wheels in one environment overwrite each other's cv2 folder; the GUI toolkit brings none."""
    assert importlib.metadata.packages_distributions().get("cv2") == ["opencv-python-headless"]


def test_window_shows_the_composite_and_hotkeys_change_it(x: Xvfb, tmp_path: Path) -> None:
    config = 'controls: {backgrounds: ["color:#0000ff"], snapshot_dir: snaps}\n'
    run = start_run(x, tmp_path, "out.mp4", config=config)
    try:
        window = x.find_window()
        wait_for_picture(x, window, GREEN, "the green background in the window")
        press(x, window, run, "space")  # pass-through: the source's own picture, which is far from flat green
        wait_until(lambda: not close_enough(x.screenshot(window), GREEN), 10, "pass-through to show the source")
        press(x, window, run, "space", "n")  # replacement back on, next background
        wait_for_picture(x, window, BLUE, "the next background (blue)")
        press(x, window, run, "s")
        wait_until(lambda: len(list((tmp_path / "snaps").glob("snapshot-*.png"))) == 1, 10, "a snapshot PNG")
        press(x, window, run, "m")  # mask view: no person, so all black
        wait_for_picture(x, window, (0, 0, 0), "the mask view (black: no person)")
        press(x, window, run, "q")
        code, stderr = finish(run)
    finally:
        run.kill()
    assert code == 0, stderr
    assert "the viewer pressed q" in stderr and "backdrop: window closed," in stderr
    (snapshot,) = (tmp_path / "snaps").glob("snapshot-*.png")
    assert close_enough(cv2.imread(str(snapshot)), BLUE)  # the output, without the on-screen hint
    frames = decode(tmp_path / "out.mp4")  # the file output beside the window was finished, and saw the keys
    assert len(frames) > 10 and close_enough(frames[0], GREEN)
    assert any(close_enough(frame, BLUE) for frame in frames)


@pytest.mark.parametrize("runtime", ["onnxruntime", "keras"])  # keras: TensorFlow in the same process as SDL
def test_closing_the_window_ends_the_run_with_exit_0(x: Xvfb, tmp_path: Path, runtime: str) -> None:
    run = start_run(x, tmp_path, config=f"model: {{runtime: {runtime}}}\n")
    try:
        window = x.find_window()
        wait_for_picture(x, window, GREEN, "the first frames in the window")
        x.close_window(window)
        code, stderr = finish(run)
    finally:
        run.kill()
    assert code == 0, stderr
    assert "the viewer closed the window" in stderr


def stop_with(run: subprocess.Popen, signals: tuple[int, ...]) -> tuple[int, str, float]:
    """Send ``signals`` and wait for the run to end: (its exit code, its stderr, seconds from the first signal)."""
    sent = time.monotonic()
    for signum in signals:
        run.send_signal(signum)
    returncode, stderr = finish(run)
    return returncode, stderr, time.monotonic() - sent


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_ends_a_live_window_run_promptly(x: Xvfb, tmp_path: Path, signum: int, code: int) -> None:
    run = start_run(x, tmp_path)
    try:
        window = x.find_window()
        assert x.window_name(window) == "Backdrop — testsrc:320x240@30"  # the source's describe()
        wait_for_picture(x, window, GREEN, "the first frames in the window")
        returncode, stderr, took = stop_with(run, (signum,))
    finally:
        run.kill()
    assert returncode == code, stderr
    assert took < 5.0, f"took {took:.1f} s"


@pytest.mark.parametrize(
    ("signals", "code", "budget_s"),
    [((signal.SIGTERM,), 143, 5.0), ((signal.SIGINT, signal.SIGTERM), 130, 3.0)],  # a second signal: no grace
    ids=["SIGTERM", "SIGINT+SIGTERM"],
)
def test_a_frozen_display_cannot_keep_a_stopped_window_run_alive(
    x: Xvfb, tmp_path: Path, signals: tuple[int, ...], code: int, budget_s: float
) -> None:
    """A display server that stops answering (here: SIGSTOPped) blocks the window's next call forever; a signal still
    ends the run within the stop deadline, the window named unfinished, the file beside it playable."""
    run = start_run(x, tmp_path, "out.mp4")
    try:
        window = x.find_window()
        wait_for_picture(x, window, GREEN, "the first frames in the window")
        with x.frozen():
            returncode, stderr, took = stop_with(run, signals)
    finally:
        run.kill()
    assert returncode == code, stderr
    assert took < budget_s, f"took {took:.1f} s"
    assert stderr.splitlines()[-1].endswith(" → window (not finished), out.mp4 (finished)")
    assert len(decode(tmp_path / "out.mp4")) >= 1


def test_the_title_names_the_source_unless_one_was_given() -> None:
    sink = WindowSink()
    assert sink.title == "Backdrop"
    sink.use_source_description("rtsp://***@camera/stream")  # a source masks its credentials in describe()
    assert sink.title == "Backdrop — rtsp://***@camera/stream"
    fixed = WindowSink("backdrop latency")
    fixed.use_source_description("testsrc:320x240@30")
    assert fixed.title == "backdrop latency"


@pytest.mark.parametrize("own_thread", [True, False], ids=["own-thread", "main-thread"])  # main: as on macOS
def test_the_window_shows_only_the_newest_frame_and_counts_the_others(
    x: Xvfb, monkeypatch: pytest.MonkeyPatch, own_thread: bool
) -> None:
    monkeypatch.setenv("DISPLAY", x.display)
    monkeypatch.setattr(window_sink, "OWN_THREAD", own_thread)
    sink = WindowSink()
    sink.use_controls(LiveControls(["color:#00ff00"]))
    for bgr in ((0, 0, 255), (0, 255, 0), (255, 0, 0)):  # before the window can show any: never blocks
        sink.write(Frame(np.full((120, 160, 3), bgr, np.uint8)))
    sink.open(160, 120, 30.0)
    try:
        wait_until(lambda: sink.pump(0.05) and sink.presented > 0, 5, "the newest frame on screen")
        window = x.find_window()
        assert close_enough(x.screenshot(window), BLUE)
        assert sink.counters() == {"dropped": 2} and sink.presented == 1 and len(sink.shown) == 1
        x.key(window, "n")
        wait_until(lambda: sink.pump(0.05) and sink.controls.hint() is not None, 5, "the hotkey to reach controls")
        x.key_down(window, "Escape")  # its release would find no window
        wait_until(lambda: not sink.pump(0.05), 5, "Esc to end the window")
        assert sink.closed_by_viewer
    finally:
        sink.close()


def test_a_missing_toolkit_is_one_line(x: Xvfb, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPLAY", x.display)
    monkeypatch.setitem(sys.modules, "pygame", None)  # as if backdrop-video[gui] were not installed
    with pytest.raises(SinkError, match=r"^window output needs pygame: pip install 'backdrop-video\[gui\]'$"):
        WindowSink().open(64, 48, 30.0)


def test_bench_measures_capture_to_window_latency(x: Xvfb, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPLAY", x.display)
    result = measure_window_latency(320, 240, 30.0, seconds=1.0)
    assert result["frames_timed"] >= 10 and result["frames_shown"] >= result["frames_timed"]
    latency = result["latency_ms"]
    assert 0 < latency["p50"] <= latency["p95"] < 5000  # a frame on screen came after its capture, not ages later
    assert summary(result).startswith("window latency at 320x240@30: p50 ")


def test_bench_window_without_a_display_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    code, stderr = run_cli(capsys, "bench", "--window")
    assert code == 2
    assert error_lines(stderr) == [
        "backdrop: error: window output needs a display (DISPLAY is not set); use a file, http:// or null output"
    ]
