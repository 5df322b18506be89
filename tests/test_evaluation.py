"""Evaluation: metrics exact on hand-built masks, and `backdrop eval` end to end on a labelled dataset."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from sklearn.metrics import f1_score, jaccard_score, precision_score, recall_score
from training_data import make_samples, write_dataset

from backdrop import cli
from backdrop.commands import eval as eval_command
from backdrop.model.evaluation.evaluate import METRICS, Evaluator
from backdrop.model.evaluation.metrics import (
    ClipMotion,
    boundary,
    boundary_f_score,
    region_scores,
    score_mask,
    tolerance_pixels,
)
from backdrop.model.evaluation.report import format_table, overlay

SIZE = 100


def square(top: int, left: int, side: int, size: int = SIZE) -> np.ndarray:
    mask = np.zeros((size, size), np.float32)
    mask[top : top + side, left : left + side] = 1
    return mask


@pytest.mark.parametrize(
    "truth, predicted, expected",
    [
        # (IoU, Dice, precision, recall, boundary F, MAE)
        pytest.param(square(20, 20, 40), square(20, 20, 40), (1, 1, 1, 1, 1, 0), id="perfect"),
        pytest.param(square(20, 20, 40), np.zeros((SIZE, SIZE)), (0, 0, 0, 0, 0, 0.16), id="nothing found"),
        pytest.param(np.zeros((SIZE, SIZE)), np.zeros((SIZE, SIZE)), (1, 1, 1, 1, 1, 0), id="both empty"),
        pytest.param(np.zeros((SIZE, SIZE)), square(0, 0, 10), (0, 0, 0, 0, 0, 0.01), id="false alarm only"),
        # Left half against top half of the frame: a quarter of the pixels agree.
        pytest.param(
            np.pad(np.ones((SIZE, SIZE // 2)), ((0, 0), (0, SIZE // 2))),
            np.pad(np.ones((SIZE // 2, SIZE)), ((0, SIZE // 2), (0, 0))),
            (1 / 3, 1 / 2, 1 / 2, 1 / 2, None, 1 / 2),
            id="half overlap",
        ),
    ],
)
def test_scores_are_exact_on_hand_built_masks(truth, predicted, expected):
    scores = score_mask(truth, predicted.astype(np.float32))
    got = (scores.iou, scores.dice, scores.precision, scores.recall, scores.boundary_f, scores.mae)
    for name, value, want in zip(METRICS, got, expected, strict=True):
        if want is not None:
            assert value == pytest.approx(want, abs=1e-9), name


def test_region_scores_match_scikit_learn_pixel_by_pixel():
    rng = np.random.default_rng(7)
    truth, predicted = rng.random((60, 80)) > 0.6, rng.random((60, 80)) > 0.3
    expected = [
        metric(truth.ravel(), predicted.ravel()) for metric in (jaccard_score, f1_score, precision_score, recall_score)
    ]
    assert region_scores(truth, predicted) == pytest.approx(expected, abs=1e-12)


def test_mean_absolute_alpha_error_uses_soft_alpha():
    truth = square(0, 0, SIZE // 2)  # a quarter of the frame is person
    # A prediction of 0.25 everywhere misses a quarter by 0.75 and three quarters by 0.25.
    assert score_mask(truth, np.full_like(truth, 0.25)).mae == pytest.approx(0.25 * 0.75 + 0.75 * 0.25)


def test_boundary_is_the_inner_edge_and_ignores_the_frame():
    assert np.count_nonzero(boundary(square(10, 10, 20).astype(bool))) == 4 * 20 - 4
    full = np.ones((SIZE, SIZE), bool)
    assert not boundary(full).any()


def test_boundary_tolerance_follows_davis():
    # DAVIS: ceil(0.008 × diagonal); 100×100 → ceil(1.131) = 2 pixels.
    assert tolerance_pixels((SIZE, SIZE)) == 2
    assert tolerance_pixels((720, 1280)) == 12


@pytest.mark.parametrize("shift, perfect", [(1, True), (2, True), (3, False)])
def test_boundary_f_accepts_edges_within_tolerance_only(shift, perfect):
    truth = square(30, 30, 40)
    moved = square(30, 30 + shift, 40)
    f = boundary_f_score(truth.astype(bool), moved.astype(bool))
    assert (f == 1.0) == perfect
    assert 0 < f <= 1


def test_boundary_f_counts_a_far_false_alarm_exactly():
    truth = square(10, 10, 30)
    predicted = np.maximum(truth, square(70, 70, 10))  # a stray blob far from the person
    # Recall 1; precision = 116 truth-edge pixels / (116 + 36 stray-edge pixels).
    precision, recall = 116 / (116 + 36), 1.0
    expected = 2 * precision * recall / (precision + recall)
    assert boundary_f_score(truth.astype(bool), predicted.astype(bool)) == pytest.approx(expected)


def test_boundary_f_is_zero_for_disjoint_people():
    assert boundary_f_score(square(0, 0, 20).astype(bool), square(60, 60, 20).astype(bool)) == 0


def test_flicker_and_excess_flicker():
    still, moving = ClipMotion(), ClipMotion()
    on, off = np.ones((4, 4), np.float32), np.zeros((4, 4), np.float32)
    for alpha in (on, off, on, off):
        still.add(alpha, on)  # the truth never changes: all the change is flicker beyond it
        moving.add(alpha, alpha)  # the truth changes exactly as the prediction does
    assert (still.flicker, still.excess_flicker) == (1.0, 1.0)
    assert (moving.flicker, moving.excess_flicker) == (1.0, 0.0)
    steady = ClipMotion()
    for _ in range(3):
        steady.add(on * 0.7, on)
    assert (steady.flicker, steady.steps) == (0.0, 2)


def test_overlay_colours_hits_false_alarms_and_misses():
    image = np.full((SIZE, SIZE, 3), 200, np.uint8)
    truth, predicted = square(0, 0, 50), square(0, 25, 50)
    picture = overlay(image, truth, predicted, "caption")
    assert picture.shape == (SIZE + 28, SIZE, 3)
    hit, false_alarm, miss, neither = picture[10, 30], picture[10, 60], picture[10, 10], picture[80, 80]
    assert hit[1] > hit[0] and hit[1] > hit[2]
    assert false_alarm[0] > false_alarm[1] and false_alarm[0] > false_alarm[2]
    assert miss[2] > miss[0] and miss[2] > miss[1]
    assert neither[0] == neither[1] == neither[2]


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """Clean composites (stills) plus a short clip of the same people, labelled exactly."""
    folder = tmp_path_factory.mktemp("labelled")
    write_dataset(folder, make_samples(6, (180, 240), seed=11))
    write_dataset(folder, make_samples(4, (180, 240), seed=12), clip="clip_a", mask_scale=1)
    return folder


def test_pretrained_model_scores_well_on_clean_composites(labelled):
    with Evaluator("general", "onnxruntime", threads=1) as evaluator:
        report = evaluator.evaluate(labelled)
    assert len(report.samples) == 10
    mean = report.mean()
    assert mean["iou"] > 0.9 and mean["boundary_f"] > 0.8 and mean["mae"] < 0.05
    (clip,) = report.clips
    assert (clip.clip, clip.frames) == ("clip_a", 4)
    assert clip.flicker > 0  # the clip's frames show different people and backgrounds
    assert clip.excess_flicker < clip.flicker
    worst = report.worst(3)
    assert [w.scores.iou for w in worst] == sorted(s.scores.iou for s in report.samples)[:3]
    table = format_table(report)
    assert "boundary F" in table and "clip_a" in table


def run_backdrop(monkeypatch, *argv: str) -> int:
    """The real `backdrop` entry point, with this module's commands registered."""
    monkeypatch.setattr(cli, "COMMAND_MODULES", (eval_command,))
    return cli.main(list(argv))


def test_eval_command_prints_a_table_writes_json_and_overlays(labelled, tmp_path, monkeypatch, capsys):
    report_path, overlays = tmp_path / "scores.json", tmp_path / "worst"
    code = run_backdrop(
        monkeypatch, "eval", "--data", str(labelled), "--json", str(report_path), "--overlays", str(overlays),
        "--worst", "2", "--threads", "1",
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "IoU" in out and "flicker" in out
    scores = json.loads(report_path.read_text())
    assert scores["images"] == len(scores["samples"]) == 10
    assert set(scores["mean"]) == set(METRICS)
    assert scores["clips"][0]["clip"] == "clip_a"
    worst_two = sorted(scores["samples"], key=lambda s: s["iou"])[:2]
    written = sorted(p.name for p in overlays.iterdir())
    assert len(written) == 2 and written[0].startswith("01_") and worst_two[0]["name"].replace("/", "_") in written[0]


@pytest.mark.parametrize(
    "layout, message",
    [
        ("missing", "dataset folder not found"),
        ("no masks folder", "dataset folder not found"),
        ("unlabelled", "have no mask"),
        ("mask size", "but its image is"),
        ("broken image", "cannot read image"),
    ],
)
def test_eval_rejects_a_bad_dataset_with_one_line(layout, message, tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    if layout != "missing":
        write_dataset(data, make_samples(2, (64, 64), seed=1))
    if layout == "no masks folder":
        for path in (data / "masks").iterdir():
            path.unlink()
        (data / "masks").rmdir()
    elif layout == "unlabelled":
        (data / "masks" / "0001.png").unlink()
    elif layout == "mask size":
        cv2.imwrite(str(data / "images" / "0001.png"), np.zeros((64, 80, 3), np.uint8))
    elif layout == "broken image":
        (data / "images" / "0001.png").write_bytes(b"not an image")
    assert run_backdrop(monkeypatch, "eval", "--data", str(data)) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and err.startswith("backdrop: error:")
