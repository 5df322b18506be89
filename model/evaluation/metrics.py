"""Segmentation metrics on one mask pair, and temporal ones on a clip.

Region scores (IoU, Dice/F1, precision, recall) come from scikit-learn. Scoring a 720p frame pixel by
pixel through scikit-learn takes most of a second, so pixels are first counted into the four cells of
the confusion matrix and scikit-learn scores those four cells as weighted samples — the same numbers,
exactly, at the cost of four samples.

Conventions for empty masks: a prediction that is empty where the truth is empty scores 1 everywhere
(nothing to find, nothing found); otherwise a ratio with a zero denominator scores 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from sklearn.metrics import jaccard_score, precision_recall_fscore_support

THRESHOLD = 0.5  # probability at which a pixel counts as person
BOUNDARY_TOLERANCE = 0.008  # DAVIS: boundary match distance as a fraction of the image diagonal
# (truth, prediction) of the four confusion-matrix cells, in the order of the weights below.
CELLS_TRUTH = np.array([0, 0, 1, 1])
CELLS_PREDICTION = np.array([0, 1, 0, 1])


@dataclass(frozen=True)
class MaskScores:
    """One image's scores; each in [0, 1], higher is better except ``mae`` (mean absolute alpha error)."""

    iou: float
    dice: float
    precision: float
    recall: float
    boundary_f: float
    mae: float


def binary(mask: np.ndarray) -> np.ndarray:
    return np.asarray(mask) > THRESHOLD


def region_scores(truth: np.ndarray, predicted: np.ndarray) -> tuple[float, float, float, float]:
    """(IoU, Dice/F1, precision, recall) of two boolean masks."""
    truth, predicted = truth.ravel(), predicted.ravel()
    true_positive = np.count_nonzero(truth & predicted)
    false_positive = np.count_nonzero(predicted) - true_positive
    false_negative = np.count_nonzero(truth) - true_positive
    if true_positive + false_positive + false_negative == 0:
        return 1.0, 1.0, 1.0, 1.0
    weights = np.array(
        [truth.size - true_positive - false_positive - false_negative, false_positive, false_negative, true_positive]
    )
    precision, recall, f1, _ = precision_recall_fscore_support(
        CELLS_TRUTH, CELLS_PREDICTION, average="binary", sample_weight=weights, zero_division=0.0
    )
    iou = jaccard_score(CELLS_TRUTH, CELLS_PREDICTION, sample_weight=weights, zero_division=0.0)
    return float(iou), float(f1), float(precision), float(recall)


def boundary(mask: np.ndarray) -> np.ndarray:
    """The one-pixel-wide inner edge of a boolean mask; the image's own border is not an edge."""
    as_bytes = mask.astype(np.uint8)
    eroded = cv2.erode(as_bytes, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE)
    return (as_bytes - eroded).astype(bool)


def tolerance_pixels(shape: tuple[int, ...], tolerance: float = BOUNDARY_TOLERANCE) -> int:
    """The match radius DAVIS uses: ``ceil(tolerance × diagonal)``, at least one pixel."""
    return max(1, math.ceil(tolerance * math.hypot(shape[0], shape[1])))


def boundary_f_score(truth: np.ndarray, predicted: np.ndarray, tolerance: float = BOUNDARY_TOLERANCE) -> float:
    """DAVIS boundary F: edge pixels of one mask within the tolerance radius of the other's edge."""
    truth_edge, predicted_edge = boundary(truth), boundary(predicted)
    truth_count, predicted_count = np.count_nonzero(truth_edge), np.count_nonzero(predicted_edge)
    if truth_count == 0 and predicted_count == 0:
        return 1.0
    if truth_count == 0 or predicted_count == 0:
        return 0.0
    radius = tolerance_pixels(truth.shape, tolerance)
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    near_truth = cv2.dilate(truth_edge.astype(np.uint8), disk).astype(bool)
    near_predicted = cv2.dilate(predicted_edge.astype(np.uint8), disk).astype(bool)
    precision = np.count_nonzero(predicted_edge & near_truth) / predicted_count
    recall = np.count_nonzero(truth_edge & near_predicted) / truth_count
    return 0.0 if precision + recall == 0 else float(2 * precision * recall / (precision + recall))


def score_mask(truth: np.ndarray, alpha: np.ndarray) -> MaskScores:
    """All scores of a predicted ``alpha`` (H×W in [0, 1]) against a truth mask (H×W in [0, 1])."""
    if truth.shape != alpha.shape:
        raise ValueError(f"truth {truth.shape} and prediction {alpha.shape} differ in size")
    truth_bin, predicted_bin = binary(truth), binary(alpha)
    iou, dice, precision, recall = region_scores(truth_bin, predicted_bin)
    mae = float(np.mean(np.abs(alpha.astype(np.float32) - truth.astype(np.float32)), dtype=np.float64))
    return MaskScores(iou, dice, precision, recall, boundary_f_score(truth_bin, predicted_bin), mae)


class ClipMotion:
    """Temporal scores of one clip, accumulated frame by frame so a clip never has to fit in memory.

    ``flicker`` is the mean |Δalpha| between consecutive frames (0 for a still matte; real motion counts
    too); ``excess_flicker`` is the mean |Δalpha − Δtruth|, the change the ground truth's own motion does
    not explain.
    """

    def __init__(self) -> None:
        self.previous: tuple[np.ndarray, np.ndarray] | None = None
        self.steps = 0
        self.change = 0.0
        self.excess = 0.0

    def add(self, alpha: np.ndarray, truth: np.ndarray) -> None:
        alpha, truth = alpha.astype(np.float32), truth.astype(np.float32)
        if self.previous is not None:
            last_alpha, last_truth = self.previous
            self.change += float(np.mean(np.abs(alpha - last_alpha)))
            self.excess += float(np.mean(np.abs((alpha - last_alpha) - (truth - last_truth))))
            self.steps += 1
        self.previous = (alpha, truth)

    @property
    def flicker(self) -> float:
        return self.change / self.steps if self.steps else 0.0

    @property
    def excess_flicker(self) -> float:
        return self.excess / self.steps if self.steps else 0.0
