"""File → file runs on real codecs: the source's audio kept in sync, phone rotation undone, the source's
timestamps kept (variable frame rate too), and recordings that survive SIGKILL."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest
from clips import run_cli

from backdrop.benchmarks.rtsp_servers import LineWatcher, stop_process
from backdrop.pixels import to_bgr
from backdrop.stream.core.frame import Frame
from backdrop.stream.sinks.video_file import FRAGMENT_S, VideoFileSink
from backdrop.stream.sources.demo_clip import read_stamp, write_clip
from backdrop.stream.sources.video_file import VideoFileSource

SIZE = (320, 180)  # stamps stay readable through the model and compositing at this size
FPS = 30
FRAME_S = 1 / FPS
RUN = ("--runtime", "onnxruntime", "--no-progress")


def ffmpeg(*args: object) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *map(str, args)], check=True, timeout=60)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("file_io")


@pytest.fixture(scope="module")
def plain_clip(clips: Path) -> Path:
    """2 s of the stamped person clip, video only."""
    return write_clip(clips / "plain.mp4", width=SIZE[0], height=SIZE[1], frames=2 * FPS, with_stamp=True)


def with_tone(video: Path, path: Path, codec: str) -> Path:
    """``video`` with a 2 s 440 Hz tone encoded by ``codec``, written to ``path``."""
    ffmpeg("-i", video, "-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-c:v", "copy", "-c:a", codec, path)
    return path


@pytest.fixture(scope="module")
def aac_clip(clips: Path, plain_clip: Path) -> Path:
    """The clip with its sound as AAC: a camera recording."""
    return with_tone(plain_clip, clips / "tone.mp4", "aac")


@pytest.fixture(scope="module")
def mulaw_clip(clips: Path, plain_clip: Path) -> Path:
    """The clip with its sound as G.711 µ-law in a .mov: a codec MP4 does not take."""
    return with_tone(plain_clip, clips / "mulaw.mov", "pcm_mulaw")


Streams = tuple[list[float], list[tuple[float, float]], str | None]


def streams(path: Path) -> Streams:
    """Decoded video frame times, (start, end) of each decoded audio frame, and the audio codec (None: no audio)."""
    with av.open(str(path)) as container:
        video = [frame.time for frame in container.decode(video=0)]
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return video, [], None
        codec = container.streams.audio[0].codec_context.name
        audio = [(f.time, f.time + f.samples / f.sample_rate) for f in container.decode(audio=0)]
    return video, audio, codec


def convert(capsys: pytest.CaptureFixture[str], source: Path, output: Path, *flags: str) -> Streams:
    """Run ``backdrop run`` from ``source`` into ``output``; what the output holds."""
    code, err = run_cli(capsys, "run", "--source", source, "--output", output, *flags, *RUN)
    assert code == 0, err
    return streams(output)


def packet_bytes(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(packet) for packet in container.demux(audio=0) if packet.size]


def assert_in_sync(video: list[float], audio: list[tuple[float, float]]) -> None:
    """Audio starts with the first frame and ends with the last one, within a frame."""
    assert audio, "no audio"
    assert abs(audio[0][0] - video[0]) <= FRAME_S, (audio[0], video[0])
    assert abs(audio[-1][1] - (video[-1] + FRAME_S)) <= FRAME_S, (audio[-1], video[-1])


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".mov"])
def test_the_source_audio_is_copied_in_sync(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, aac_clip: Path, suffix: str
) -> None:
    output = tmp_path / f"out{suffix}"
    video, audio, codec = convert(capsys, aac_clip, output)
    assert len(video) == 2 * FPS and codec == "aac"
    assert_in_sync(video, audio)
    assert set(packet_bytes(output)) <= set(packet_bytes(aac_clip))  # stream-copied, not re-encoded


def test_max_frames_cuts_the_audio_with_the_video(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, aac_clip: Path
) -> None:
    video, audio, _ = convert(capsys, aac_clip, tmp_path / "cut.mp4", "--max-frames", "20")
    assert len(video) == 20
    assert_in_sync(video, audio)


def test_audio_the_container_refuses_is_encoded_to_aac(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, mulaw_clip: Path
) -> None:
    video, audio, codec = convert(capsys, mulaw_clip, tmp_path / "out.mp4")
    assert codec == "aac"
    assert_in_sync(video, audio)


def test_no_audio_drops_it_without_a_warning(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, tmp_path: Path, aac_clip: Path
) -> None:
    assert convert(capsys, aac_clip, tmp_path / "silent.mp4", "--no-audio")[2] is None
    assert "audio" not in caplog.text


@pytest.mark.parametrize(
    ("outputs", "warned"),
    [
        (["{tmp}/frames/"], True),
        (["{tmp}/frames/", "null"], True),
        (["{tmp}/frames/", "{tmp}/kept.mp4"], True),
        (["{tmp}/kept.mp4"], False),
    ],
    ids=["png", "png+null", "png+mp4", "mp4"],
)
def test_outputs_that_cannot_carry_audio_say_so_once(
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    aac_clip: Path,
    outputs: list[str],
    warned: bool,
) -> None:
    caplog.set_level(logging.WARNING)
    args = [arg for spec in outputs for arg in ("--output", spec.format(tmp=tmp_path))]
    code, err = run_cli(capsys, "run", "--source", aac_clip, *args, "--max-frames", "5", *RUN)
    assert code == 0, err
    lines = [record.getMessage() for record in caplog.records if "audio" in record.getMessage()]
    assert len(lines) == warned, lines
    if warned:
        assert f"{tmp_path}/frames/" in lines[0] and "kept.mp4" not in lines[0] and "dropped" in lines[0]
    if (tmp_path / "kept.mp4").exists():
        assert streams(tmp_path / "kept.mp4")[2] == "aac"


def test_a_source_without_audio_warns_nothing(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, tmp_path: Path, plain_clip: Path
) -> None:
    frames = f"{tmp_path}/frames/"
    code, err = run_cli(capsys, "run", "--source", plain_clip, "--output", frames, "--max-frames", "3", *RUN)
    assert code == 0, err
    assert "audio" not in caplog.text


# degrees of display rotation → the ffmpeg filter that stores the upright clip turned so that it undoes them
ROTATIONS = {90: "transpose=clock", 180: "hflip,vflip", 270: "transpose=cclock"}


@pytest.fixture(scope="module", params=sorted(ROTATIONS))
def rotated_clip(request: pytest.FixtureRequest, clips: Path, plain_clip: Path) -> Path:
    """The clip stored turned, with a display matrix that turns it back, as phones record."""
    degrees = request.param
    turned, path = clips / f"turned{degrees}.mp4", clips / f"rotated{degrees}.mp4"
    ffmpeg("-i", plain_clip, "-vf", ROTATIONS[degrees], "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", turned)
    ffmpeg("-i", turned, "-c", "copy", "-metadata:s:v", f"rotate={degrees}", path)
    with av.open(str(path)) as container:
        assert next(container.decode(video=0)).rotation % 360 != 0, "ffmpeg did not store the rotation"
    return path


def test_a_rotated_file_is_read_upright(rotated_clip: Path) -> None:
    with VideoFileSource(rotated_clip) as source:
        frames = list(iter(source.read, None))
    assert all(frame.size == SIZE for frame in frames)
    assert [read_stamp(to_bgr(frame.image, frame.layout)) for frame in frames] == list(range(2 * FPS))


def test_a_rotated_phone_video_comes_out_upright(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, rotated_clip: Path
) -> None:
    output = tmp_path / "upright.mp4"
    code, err = run_cli(capsys, "run", "--source", rotated_clip, "--output", output, *RUN)
    assert code == 0, err
    with av.open(str(output)) as container:
        frames = list(container.decode(video=0))
    assert all((f.width, f.height, f.rotation) == (*SIZE, 0) for f in frames)  # upright, no matrix needed
    assert [read_stamp(f.to_ndarray(format="bgr24")) for f in frames] == list(range(2 * FPS))


@pytest.fixture(scope="module")
def vfr_clip(clips: Path, plain_clip: Path) -> Path:
    """A variable-frame-rate clip: 1 s at 30 fps, then 1 s at 10 fps, then 15 fps."""
    path = clips / "vfr.mp4"
    times = "if(lt(N,30),N/30,if(lt(N,40),1+(N-30)/10,2+(N-40)/15))"
    ffmpeg("-i", plain_clip, "-vf", f"setpts='{times}/TB'", "-fps_mode", "passthrough", "-c:v", "libx264", path)
    return path


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_variable_frame_rate_timestamps_are_kept(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, vfr_clip: Path, suffix: str
) -> None:
    source, written = streams(vfr_clip)[0], convert(capsys, vfr_clip, tmp_path / f"vfr{suffix}")[0]
    assert len(set(np.diff(source).round(3))) >= 3  # it really is variable
    assert len(written) == len(source)
    assert np.abs(np.array(written) - source).max() <= 0.001  # Matroska keeps milliseconds


def test_frames_without_timestamps_are_written_at_the_constant_rate(tmp_path: Path) -> None:
    output = tmp_path / "live.mp4"
    with VideoFileSink(output) as sink:
        sink.open(64, 48, 25)
        for index in range(10):
            sink.write(Frame(np.full((48, 64, 3), index * 20, np.uint8), index=index))
    assert streams(output)[0] == pytest.approx([index / 25 for index in range(10)], abs=1e-4)


def test_frames_dropped_from_a_live_source_leave_their_time_in_the_recording(tmp_path: Path) -> None:
    """A live camera at 25 fps whose frames 3–9 were dropped on the way: the recording still lasts as long as the
    camera was recorded (numbered at the fixed rate it would play 0.2 s for 0.44 s of camera time)."""
    output = tmp_path / "live.mp4"
    captured = [100.00, 100.04, 100.08, 100.40, 100.44]
    with VideoFileSink(output) as sink:
        sink.open(64, 48, 25)
        for index, at in enumerate(captured):
            sink.write(Frame(np.full((48, 64, 3), index * 40, np.uint8), index=index, captured_at=at))
    assert streams(output)[0] == pytest.approx([at - captured[0] for at in captured], abs=1e-4)


@pytest.mark.parametrize("crash_safe", [True, False])
def test_crash_safety_is_what_fragments_the_file(tmp_path: Path, crash_safe: bool) -> None:
    """benchmarks/crash_safety_cost.py compares the two: they must differ exactly in fragmentation."""
    output = tmp_path / "clip.mp4"
    with VideoFileSink(output, crash_safe=crash_safe) as sink:
        sink.open(64, 48, 25)
        for index in range(50):
            sink.write(Frame(np.full((48, 64, 3), index * 5, np.uint8), index=index))
    assert (b"moof" in output.read_bytes()) is crash_safe
    assert playable(output) == 50


def playable(path: Path) -> int:
    """Frames a player gets from ``path`` as it is now; 0 while it has no header yet."""
    try:
        with av.open(str(path)) as container:
            return sum(1 for _ in container.decode(video=0))
    except av.error.FFmpegError:
        return 0


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)  # polling a file's growth: there is nothing to wait on


PROGRESS_LINE = " frames  "  # "N frames  Ts  …": a live run's progress line into a pipe, every 2 s of the run


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_a_killed_recording_is_playable_up_to_a_second_before_the_kill(tmp_path: Path, suffix: str) -> None:
    output = tmp_path / f"rec{suffix}"
    process = subprocess.Popen(
        [sys.executable, "-m", "backdrop", "run", "--source", "testsrc:320x240@30,live", "--output", str(output),
         "--runtime", "onnxruntime"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    stderr = LineWatcher(process.stderr)
    try:
        partial = output.with_name(f".{output.name}.{process.pid}.partial")
        wait_for(partial.exists, 60, "the recording to start")
        wait_for(lambda: playable(partial) >= 2 * FPS, 60, "two seconds of playable recording")
        # The next progress line says how many frames the file had been handed by then (live frames are numbered
        # at the constant rate, so that many frames are that many 30ths of a second of the recording).
        shown = sum(PROGRESS_LINE in line for line in list(stderr.lines))
        written = int(stderr.wait_for(PROGRESS_LINE, timeout=30, occurrences=shown + 1).split()[0])
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        stop_process(process)
    assert not output.exists() and partial.exists()
    with av.open(str(partial)) as container:
        frames = list(container.decode(video=0))  # raises where it cannot be played
    # At least every frame written before that line but the last fragment (at most FRAGMENT_S of them) and the
    # few the encoder still held: counted in frames, so a slow machine that records fewer frames changes nothing.
    assert written >= 2 * FPS and len(frames) >= written - FRAGMENT_S * FPS - FPS // 2, (len(frames), written)


def test_a_leftover_partial_is_kept_and_named(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, tmp_path: Path, plain_clip: Path
) -> None:
    caplog.set_level(logging.WARNING)
    output = tmp_path / "out.mp4"
    leftover = tmp_path / ".out.mp4.4242.partial"
    leftover.write_bytes(b"a recording cut short")
    for _ in range(2):  # the next run (replacing the output) names it again: it is never taken over
        code, err = run_cli(capsys, "run", "--source", plain_clip, "--output", output, "--max-frames", "3", "-y", *RUN)
        assert code == 0, err
    lines = [record.getMessage() for record in caplog.records if "partial" in record.getMessage()]
    assert lines == [f"found {leftover} from an interrupted run (kept; playable up to the kill)"] * 2
    assert leftover.read_bytes() == b"a recording cut short"
    assert len(streams(output)[0]) == 3 and sorted(p.name for p in tmp_path.iterdir()) == [leftover.name, "out.mp4"]
