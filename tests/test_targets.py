"""No write target is a read path or another target; the stats path is checked before the run, not after it."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

import pytest
from clips import error_lines, run_cli
from conftest import Unprivileged

from backdrop.errors import ConfigError, SinkError
from backdrop.stream.config.run import parse_config
from backdrop.stream.sinks.targets import check_targets
from backdrop.stream.sources.demo_clip import write_clip


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", width=160, height=96, frames=3)


@pytest.fixture
def workdir(tmp_path: Path, small_clip: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder holding clip.mp4, bg.mp4, a symlink and a hard link to the clip, frames/ and run.yaml."""
    shutil.copy(small_clip, tmp_path / "clip.mp4")
    shutil.copy(small_clip, tmp_path / "bg.mp4")
    (tmp_path / "link.mp4").symlink_to("clip.mp4")
    os.link(tmp_path / "clip.mp4", tmp_path / "hard.mp4")
    (tmp_path / "frames").mkdir()
    (tmp_path / "run.yaml").write_text("outputs: [out.mp4]\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"outputs": ["clip.mp4"]}, "output clip.mp4 is the source clip.mp4: choose another output"),
        ({"outputs": ["./clip.mp4"]}, "output ./clip.mp4 is the source clip.mp4: choose another output"),
        ({"outputs": ["link.mp4"]}, "output link.mp4 is the source clip.mp4: choose another output"),
        ({"outputs": ["hard.mp4"]}, "output hard.mp4 is the source clip.mp4: choose another output"),
        ({"outputs": ["null", "clip.mp4"]}, "output clip.mp4 is the source clip.mp4: choose another output"),
        (
            {"outputs": ["null"], "pipeline": {"stats_json": "clip.mp4"}},
            "--stats-json clip.mp4 is the source clip.mp4: choose another stats file",
        ),
        (
            {"outputs": ["null"], "pipeline": {"stats_json": "hard.mp4"}},
            "--stats-json hard.mp4 is the source clip.mp4: choose another stats file",
        ),
        (
            {"outputs": ["out.mp4"], "pipeline": {"stats_json": "out.mp4"}},
            "--stats-json out.mp4 is also the output out.mp4",
        ),
        (
            {"background": "bg.mp4", "outputs": ["bg.mp4"]},
            "output bg.mp4 is the background bg.mp4: choose another output",
        ),
        ({"outputs": ["out.mp4", "out.mp4"]}, "output out.mp4 is given twice"),
        ({"outputs": ["out.mp4", "./out.mp4"]}, "output ./out.mp4 is also the output out.mp4"),
        ({"outputs": ["shots/", "shots"]}, "output shots is also the output shots/"),
        (
            {"source": {"uri": "frames"}, "outputs": ["frames/"]},
            "output frames/ is the source frames: choose another output",
        ),
        (
            {"outputs": ["null"], "pipeline": {"stats_json": "run.yaml"}},
            "--stats-json run.yaml is the config file run.yaml: choose another stats file",
        ),
        ({"outputs": ["a\0.mp4"]}, "output 'a\\x00.mp4' is not a usable path: embedded null byte"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_clashes_are_one_line_errors_naming_both(workdir: Path, data: dict, message: str) -> None:
    config = parse_config({"source": {"uri": "clip.mp4"}, **data})
    with pytest.raises(ConfigError) as error:
        check_targets(config, config_path=Path("run.yaml"))
    assert str(error.value) == message


@pytest.mark.parametrize(
    "data",
    [
        {"outputs": ["out.mp4", "frames_out/", "null", "window", "vcam", "vcam:/dev/video9"]},
        {"outputs": ["rtsp://127.0.0.1:8554/clip.mp4", "http://127.0.0.1:8080"]},
        {"outputs": ["out.mp4"], "pipeline": {"stats_json": "stats.json"}},
        {"outputs": ["clip.mkv"], "background": "blur:21"},  # same stem, another file
        {"source": {"uri": "testsrc"}, "outputs": ["testsrc.mp4"]},
        {"source": {"uri": "frames"}, "outputs": ["frames/out.mp4"]},  # a file inside the folder read: allowed
    ],
)
def test_distinct_targets_pass(workdir: Path, data: dict) -> None:
    check_targets(parse_config({"source": {"uri": "clip.mp4"}, **data}), config_path=None)


@pytest.mark.parametrize(
    ("stats", "message"),
    [
        ("nope/stats.json", "cannot write stats to nope/stats.json: folder nope does not exist"),
        ("frames", "cannot write stats to frames: it is a folder"),
        ("frames/", "cannot write stats to frames/: it is a folder"),
    ],
)
def test_bad_stats_path_is_found_before_the_run(workdir: Path, stats: str, message: str) -> None:
    config = parse_config({"outputs": ["null"], "pipeline": {"stats_json": stats}})
    with pytest.raises(SinkError) as error:
        check_targets(config, config_path=None)
    assert str(error.value) == message


def check_locked_stats() -> int:
    """check_targets for stats in locked/: 0, or 1 and the error on stderr."""
    try:
        config = parse_config({"outputs": ["null"], "pipeline": {"stats_json": "locked/stats.json"}})
        check_targets(config, config_path=None)
    except SinkError as error:
        print(error, file=sys.stderr)
        return 1
    return 0


@pytest.mark.parametrize("existing", [False, True], ids=["new file", "existing file"])
def test_unwritable_stats_path(unprivileged: Unprivileged, existing: bool) -> None:
    """Checked by a user the modes bind: nobody where the tests run as root (as in CI), since root writes anywhere."""
    folder = unprivileged.folder / "locked"
    folder.mkdir()
    if existing:
        (folder / "stats.json").write_text("{}")
    unprivileged.own(folder, *folder.iterdir())
    assert unprivileged.call(check_locked_stats) == (0, "")  # the user's own folder: only the modes below refuse it
    if existing:
        (folder / "stats.json").chmod(0o444)
    folder.chmod(0o555)
    assert unprivileged.call(check_locked_stats) == (1, "cannot write stats to locked/stats.json: permission denied\n")


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (("--output", "clip.mp4"), "output clip.mp4 is the source clip.mp4"),
        (("--output", "link.mp4"), "output link.mp4 is the source clip.mp4"),
        (("--output", "hard.mp4"), "output hard.mp4 is the source clip.mp4"),
        (("--output", "out.mp4", "--stats-json", "clip.mp4"), "--stats-json clip.mp4 is the source clip.mp4"),
        (("--output", "out.mp4", "--stats-json", "out.mp4"), "--stats-json out.mp4 is also the output out.mp4"),
        (("--output", "null", "--stats-json", "nope/s.json"), "folder nope does not exist"),
        (("--output", "out.mp4", "--config", "run.yaml", "--stats-json", "run.yaml"), "is the config file run.yaml"),
    ],
)
def test_cli_refuses_before_touching_anything(
    workdir: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], names: str
) -> None:
    before = {path.name: sha256(path) for path in workdir.iterdir() if path.is_file()}
    code, err = run_cli(capsys, "run", "--source", "clip.mp4", "--runtime", "onnxruntime", *args)
    assert code == 2
    assert [line for line in err.splitlines() if line] == error_lines(err)  # nothing but the error line
    assert len(error_lines(err)) == 1 and err.startswith("backdrop: error: ") and names in err
    assert {path.name: sha256(path) for path in workdir.iterdir() if path.is_file()} == before
    assert not (workdir / "out.mp4").exists() and not list(workdir.glob(".*partial"))
