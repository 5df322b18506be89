"""Recordings cut into segments by an output name with strftime fields: each segment plays on its own, starts
with a keyframe, is named by its start, never overwrites another file, and survives SIGKILL."""

from __future__ import annotations

import itertools
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import av
import pytest
from clips import error_lines, run_cli

from backdrop.benchmarks.rtsp_servers import stop_process
from backdrop.errors import ConfigError
from backdrop.stream.config.run import parse_config
from backdrop.stream.sinks.targets import check_targets
from backdrop.stream.sources.demo_clip import read_stamp, write_clip

SIZE = (320, 180)  # stamps stay readable through the model and compositing at this size
FPS = 30
RUN = ("--runtime", "onnxruntime", "--no-progress")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5 s of the stamped person clip at 30 fps."""
    folder = tmp_path_factory.mktemp("segments")
    return write_clip(folder / "clip.mp4", width=SIZE[0], height=SIZE[1], frames=5 * FPS, with_stamp=True)


@pytest.fixture(scope="module")
def tone_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 s of the clip with a 440 Hz AAC tone."""
    folder = tmp_path_factory.mktemp("tone")
    video = write_clip(folder / "video.mp4", width=SIZE[0], height=SIZE[1], frames=2 * FPS)
    path = folder / "tone.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", video, "-f", "lavfi", "-i", "sine=frequency=440:duration=2",
         "-c:v", "copy", "-c:a", "aac", path],
        check=True, timeout=60,
    )  # fmt: skip
    return path


def segment_config(tmp_path: Path, segment_s: float) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(f"encoder: {{segment_s: {segment_s}}}\n")
    return path


def record(capsys: pytest.CaptureFixture[str], source: Path, output: str, config: Path, *flags: str) -> None:
    code, err = run_cli(capsys, "run", "--config", config, "--source", source, "--output", output, *flags, *RUN)
    assert code == 0, err


def segments(folder: Path) -> list[Path]:
    """The finished segments under ``folder`` (not the hidden partials), in name order."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def stamps(path: Path) -> tuple[list[int | None], bool]:
    """The frame index stamped on each decoded frame, and whether the first frame is a keyframe."""
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    return [read_stamp(f.to_ndarray(format="bgr24")) for f in frames], frames[0].key_frame


def test_a_clip_is_cut_into_playable_segments_named_by_their_start(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, clip: Path
) -> None:
    record(capsys, clip, str(tmp_path / "rec" / "%Y%m%d-%H%M%S.mp4"), segment_config(tmp_path, 2))
    files = segments(tmp_path / "rec")
    assert len(files) == 3
    decoded = [stamps(path) for path in files]
    assert [len(indices) for indices, _ in decoded] == [2 * FPS, 2 * FPS, FPS]  # cut on the frames' own time
    assert all(keyframe for _, keyframe in decoded)
    assert [i for indices, _ in decoded for i in indices] == list(range(5 * FPS))  # every frame, in order
    starts = [datetime.strptime(path.stem, "%Y%m%d-%H%M%S") for path in files]
    assert [(b - a).total_seconds() for a, b in itertools.pairwise(starts)] == [2, 2]
    assert abs((datetime.now() - starts[0]).total_seconds()) < 60


def test_fields_in_folders_make_folders_and_each_segment_keeps_its_audio(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tone_clip: Path
) -> None:
    record(capsys, tone_clip, str(tmp_path / "rec" / "%Y" / "%m-%d" / "%H%M%S.mkv"), segment_config(tmp_path, 1))
    files = segments(tmp_path / "rec")
    today = datetime.now()
    assert len(files) == 2 and {p.parent for p in files} == {tmp_path / "rec" / f"{today:%Y}" / f"{today:%m-%d}"}
    for path in files:
        with av.open(str(path)) as container:
            video = [frame.time for frame in container.decode(video=0)]
        with av.open(str(path)) as container:
            audio = [(f.time, f.time + f.samples / f.sample_rate) for f in container.decode(audio=0)]
        assert len(video) == FPS and abs(video[0]) < 1 / FPS
        assert audio and abs(audio[0][0]) <= 1 / FPS and abs(audio[-1][1] - 1.0) <= 1 / FPS, audio[-1]


def test_names_taken_get_a_suffix_and_a_rerun_continues_into_new_segments(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, clip: Path
) -> None:
    folder = tmp_path / "rec"
    folder.mkdir()
    day = f"{datetime.now():%Y%m%d}"  # a name with only the day: every segment wants the same one
    (folder / f"{day}.mp4").write_bytes(b"yesterday's recording, kept")
    config = segment_config(tmp_path, 2)
    for _ in range(2):
        record(capsys, clip, str(folder / "%Y%m%d.mp4"), config, "--max-frames", str(3 * FPS))
    assert (folder / f"{day}.mp4").read_bytes() == b"yesterday's recording, kept"
    files = segments(folder)
    assert [p.name for p in files] == [f"{day}.mp4", *(f"{day}_{n}.mp4" for n in range(1, 5))]
    runs = [stamps(path)[0] for path in files[1:]]
    assert runs == [list(range(60)), list(range(60, 90))] * 2


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)  # polling files' growth: there is nothing to wait on


def playable_s(path: Path) -> float:
    """Up to when a player can show ``path`` as it is now; -1 while it has no frame yet."""
    try:
        with av.open(str(path)) as container:
            return max((frame.time for frame in container.decode(video=0)), default=-1.0)
    except av.error.FFmpegError:
        return -1.0


def test_sigkill_leaves_closed_segments_whole_and_the_open_one_playable(tmp_path: Path) -> None:
    folder = tmp_path / "rec"
    process = subprocess.Popen(
        [sys.executable, "-m", "backdrop", "run", "--config", segment_config(tmp_path, 3), "--source",
         "testsrc:320x240@30,live", "--output", folder / "%H%M%S.mp4", *RUN],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip

    def partials() -> list[Path]:
        return list(folder.glob(f".*.{process.pid}.partial"))

    try:
        wait_for(lambda: len(segments(folder)) >= 1 and len(partials()) == 1, 60, "a finished segment")
        started = time.monotonic()  # the open segment's partial appeared at about this time
        wait_for(lambda: bool(partials()) and playable_s(partials()[0]) >= 1.5, 30, "two fragments of the open one")
        process.send_signal(signal.SIGKILL)
        recorded_s = time.monotonic() - started
        process.wait(10)
    finally:
        stop_process(process)
    finished = segments(folder)
    assert len(finished) in (1, 2)  # a cut may fall between the two waits
    for path in finished:
        with av.open(str(path)) as container:
            frames = list(container.decode(video=0))
        assert frames[0].key_frame and len(frames) >= FPS and 2.5 < frames[-1].time < 3  # a live source may drop some
    (partial,) = partials()
    assert playable_s(partial) >= min(recorded_s, 3) - 1.5  # fragments are ≤ 1 s; ½ s for the queues


@pytest.mark.parametrize(
    ("output", "flags", "message"),
    [
        ("rec/%Q.mp4", (), "output rec/%Q.mp4: %Q is not a strftime field this recorder knows"),
        (
            "rec/100%.mp4",
            (),
            "output rec/100%.mp4: %. is not a strftime field this recorder knows (e.g. %Y%m%d-%H%M%S; "
            "write %% for a literal %)",
        ),
        ("20260101%%.mp4", (), "output 20260101%%.mp4 is the source 20260101%.mp4: choose another output"),
        ("afile/%H%M%S.mp4", (), "cannot write afile/%H%M%S.mp4: cannot create folder afile: "),
        ("rec/%H%M%S.mp4", ("--background", "transparent"), "output rec/%H%M%S.mp4: .mp4 cannot keep transparency"),
        ("%Y%m%d.mp4", (), "output %Y%m%d.mp4 could name the source 20260101.mp4: choose another output"),
    ],
)
def test_bad_patterns_are_one_line_errors(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    clip: Path,
    monkeypatch: pytest.MonkeyPatch,
    output: str,
    flags: tuple[str, ...],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    source = "20260101%.mp4" if "%%" in output else "20260101.mp4"
    (tmp_path / source).symlink_to(clip)
    (tmp_path / "afile").write_text("a file where the folder should be")
    code, err = run_cli(capsys, "run", "--source", source, "--output", output, *flags, *RUN)
    (line,) = error_lines(err)
    assert code == 2 and line.startswith(f"backdrop: error: {message}"), line
    assert sorted(p.name for p in tmp_path.iterdir()) == [source, "afile"]


@pytest.mark.parametrize(
    ("output", "written"),
    [
        ("rec/100%%.mp4", r"rec/100%\.mp4"),  # no field: one plain file
        ("rec/50%%%%.mkv", r"rec/50%%\.mkv"),
        ("rec/100%%-%Y%m%d.mp4", r"rec/100%-\d{8}\.mp4"),  # a field: segments
        ("rec/%%%H%%/%M%%.mp4", r"rec/%\d{2}%/\d{2}%\.mp4"),
        ("frames%%/", r"frames%/frame_00000[0-2]\.png"),  # a PNG folder
    ],
)
def test_a_double_percent_writes_a_literal_percent_in_any_output_name(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, output: str, written: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rec").mkdir()  # a plain file's folder must exist; segments make theirs
    code, err = run_cli(capsys, "run", "--source", "testsrc:64x48,frames=3", "--output", output, *RUN)
    assert code == 0, err
    files = [str(path.relative_to(tmp_path)) for path in segments(tmp_path)]
    assert files and all(re.fullmatch(written, name) for name in files), files


def test_segment_length_is_validated(capsys: pytest.CaptureFixture[str], tmp_path: Path, clip: Path) -> None:
    code, err = run_cli(capsys, "run", "--config", segment_config(tmp_path, 0), "--source", clip, *RUN)
    assert code == 2 and error_lines(err) == ["backdrop: error: encoder.segment_s: must be in (0, 86400]"]


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        (["rec/%Y%m%d.mp4"], None),  # digits only: never rec/input.mp4
        (["rec/%B.mp4"], None),  # not a month's name
        (["rec/in%p%S.mp4"], None),
        (["rec/%d%b.mp4"], "output rec/%d%b.mp4 could also name the output rec/01Jan.mp4"),
        (["rec/%Y%m%d.mp4", "rec/20260101.mp4"], "output rec/20260101.mp4 could also name the output rec/%Y%m%d.mp4"),
        (["rec/%Y%m%d.mp4", "rec/%Y%m%d.mp4"], "output rec/%Y%m%d.mp4 is given twice"),
    ],
)
def test_patterns_are_checked_against_every_path_they_can_expand_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, outputs: list[str], message: str | None
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rec").mkdir()
    (tmp_path / "rec" / "input.mp4").write_bytes(b"the source")
    config = parse_config({"source": {"uri": "rec/input.mp4"}, "outputs": ["rec/01Jan.mp4", *outputs]})
    if message is None:
        check_targets(config, config_path=None)
    else:
        with pytest.raises(ConfigError) as error:
            check_targets(config, config_path=None)
        assert str(error.value) == message
