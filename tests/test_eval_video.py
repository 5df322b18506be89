"""`backdrop eval --video` as a user runs it: JSON metrics, a contact sheet, reference IoU, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from clips import error_lines, run_cli

from backdrop.model.evaluation.contact_sheet import ROWS, TILE
from backdrop.stream.compositing.matte import MatteMaker
from backdrop.stream.config.run import load_config
from backdrop.stream.core.steps import Infer
from backdrop.stream.sources.demo_clip import write_clip
from backdrop.stream.sources.video_file import VideoFileSource
from backdrop.video_evaluation import unfiltered

FRAMES = 10


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short 320×180 clip of the swaying person over a drifting room."""
    return write_clip(tmp_path_factory.mktemp("eval") / "clip.mp4", width=320, height=180, frames=FRAMES)


@pytest.fixture(scope="module")
def unfiltered_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run config with the temporal filter off, so the matte is each frame's own."""
    defaults = load_config(None).mask
    changed = {name: value for name, value in vars(unfiltered(defaults)).items() if getattr(defaults, name) != value}
    path = tmp_path_factory.mktemp("eval") / "plain.yaml"
    path.write_text(yaml.safe_dump({"mask": changed}))
    return path


def test_video_eval_writes_every_metric_and_a_contact_sheet(capsys, clip: Path, tmp_path: Path) -> None:
    out, sheet = tmp_path / "metrics.json", tmp_path / "edges.png"
    code, stderr = run_cli(capsys, "eval", "--video", clip, "--json", out, "--sheet", sheet)
    assert code == 0, stderr
    report = json.loads(out.read_text())
    assert report["frames"] == FRAMES and report["size"] == [320, 180]
    for matte in (report["matte"], report["unfiltered"]):
        assert set(matte) == {"edge_flicker", "crossings_per_frame", "soft_edge_width_px", "see_through"}
        assert 0 < matte["edge_flicker"] < 0.5  # the person sways: the edge moves, but not everywhere
        assert 0 < matte["soft_edge_width_px"] < 20 and 0 <= matte["see_through"] < 0.2
    ghosting = report["ghosting"]
    assert len(ghosting["per_frame"]) == FRAMES and ghosting["lag_frames"] >= 0
    assert len(report["per_frame"]["edge_flicker"]) == FRAMES - 1
    picture = cv2.imread(str(sheet))
    # four rows of three edge crops, captioned, each crop before and after clean edges
    assert picture.shape[1] == 3 * 2 * TILE and picture.shape[0] > ROWS * TILE
    before, after = picture[-TILE:, :TILE].astype(int), picture[-TILE:, TILE : 2 * TILE].astype(int)
    assert np.abs(before - after).max() > 0  # the band's colours were estimated, not copied
    assert "reference" not in report
    # the swaying person over a coloured room: a plain blend would keep some of the room in the band
    assert 0 < report["edge_contamination"]["levels"] < 64
    assert report["edge_contamination"]["removed"] is False  # the default blur leaves the band as it is (auto)


def test_a_reference_made_of_the_matte_itself_scores_iou_one(
    capsys, clip: Path, unfiltered_config: Path, segmenter, tmp_path: Path
) -> None:
    folder = tmp_path / "reference"
    folder.mkdir()
    infer, state = Infer(segmenter), None
    with VideoFileSource(clip) as source:
        while (frame := source.read()) is not None:
            maker = MatteMaker(load_config(str(unfiltered_config)).mask, *frame.size, frame.layout)
            matte, state = maker.matte(infer.masks([infer.preprocess(frame)])[0], frame.image, state)
            cv2.imwrite(str(folder / f"{frame.index:04d}.png"), np.round(matte.full() * 255).astype(np.uint8))
    out = tmp_path / "metrics.json"
    code, stderr = run_cli(
        capsys, "eval", "--video", clip, "--config", unfiltered_config, "--reference", folder, "--json", out
    )
    assert code == 0, stderr
    report = json.loads(out.read_text())
    assert report["reference"]["per_frame"] == [1.0] * FRAMES
    assert report["ghosting"]["pixels_per_frame"] == 0  # no filter, no ghost
    assert report["matte"] == report["unfiltered"]


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing_clip", "input not found"),
        ("missing_reference", "reference folder not found"),
        ("empty_reference", "holds no mask images"),
        ("short_reference", "has 3 masks but"),
    ],
)
def test_bad_inputs_are_one_line_errors(capsys, clip: Path, tmp_path: Path, case: str, message: str) -> None:
    folder = tmp_path / "reference"
    if case in ("empty_reference", "short_reference"):
        folder.mkdir()
    if case == "short_reference":
        for i in range(3):
            cv2.imwrite(str(folder / f"{i}.png"), np.zeros((180, 320), np.uint8))
    video = tmp_path / "nothing.mp4" if case == "missing_clip" else clip
    args = ["eval", "--video", video] + ([] if case == "missing_clip" else ["--reference", folder])
    code, stderr = run_cli(capsys, *args)
    lines = error_lines(stderr)
    assert code == 2 and len(lines) == 1 and message in lines[0], stderr


@pytest.mark.parametrize("args", [[], ["--data", "d", "--video", "v.mp4"]])
def test_eval_needs_exactly_one_of_a_dataset_or_a_video(capsys, args: list[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        run_cli(capsys, "eval", *args)
    assert stopped.value.code == 2 and "--data" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--video", "v.mp4", "--overlays", "o"], "--overlays does not apply to eval --video"),
        (["--data", "d", "--sheet", "s.png"], "--sheet does not apply to eval --data"),
    ],
)
def test_options_of_the_other_mode_are_refused(capsys, args: list[str], message: str) -> None:
    code, stderr = run_cli(capsys, "eval", *args)
    assert code == 2 and error_lines(stderr) == [f"backdrop: error: {message}"]
