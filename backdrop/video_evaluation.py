"""`backdrop eval --video`: the run's own matte pipeline over any footage, scored with the temporal metrics.

Frames come from the same file source and go through the same Infer and MatteMaker as `backdrop run`
with the run configuration's model and mask settings, so the numbers describe what a run shows. Each frame
is matted twice: as configured and from its own mask alone (no temporal filter, no interval), so ghosting
(where the matte differs from what the model said for this frame) can be measured; with ``model.interval``
a third time, as configured but at interval 0, the matte the interval saves inferences against. Sizes of the
edge band and of the interior margin scale with the frame height (given here at 720p).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from backdrop.errors import BackdropError
from backdrop.model.evaluation import temporal_metrics as tm
from backdrop.model.evaluation.contact_sheet import EdgeCrops
from backdrop.model.segmenter import load_segmenter
from backdrop.pixels import IMAGE_SUFFIXES, to_bgr
from backdrop.stream.compositing.backgrounds import parse_background
from backdrop.stream.compositing.blend import Matte, cleaned
from backdrop.stream.compositing.foreground import BIAS, correction
from backdrop.stream.compositing.matte import MatteMaker
from backdrop.stream.compositing.temporal import TemporalState
from backdrop.stream.config.run import MaskConfig, RunConfig
from backdrop.stream.core.schedule import InferenceSchedule
from backdrop.stream.core.steps import Infer
from backdrop.stream.sources.video_file import VideoFileSource

EDGE_BAND = 7 / 720  # edge-band radius as a share of the frame height
INTERIOR_MARGIN = 14 / 720  # how far inside the edge "inside the person" starts, as a share of the height
VIDEO_METRIC_LABELS = {  # the summary's names of MatteStats' figures
    "edge_flicker": "edge flicker",
    "crossings_per_frame": "crossings a frame",
    "soft_edge_width_px": "soft edge width (px)",
    "see_through": "see-through",
}


def unfiltered(mask: MaskConfig) -> MaskConfig:
    """The same mask settings with the temporal filter off: the per-frame matte ghosting is measured against."""
    return dataclasses.replace(mask, temporal="none")


def reference_masks(folder: Path) -> list[Path]:
    """The reference matte images in ``folder``, in name order; a BackdropError when there are none."""
    if not folder.is_dir():
        raise BackdropError(f"reference folder not found: {folder}")
    try:
        paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    except OSError as e:
        raise BackdropError(f"cannot read reference folder {folder}: {e.strerror or e}") from e
    if not paths:
        raise BackdropError(f"reference folder {folder} holds no mask images")
    return paths


def read_reference(path: Path, size: tuple[int, int]) -> np.ndarray:
    """One reference matte as float32 alpha in [0, 1] at ``size`` (width, height)."""
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise BackdropError(f"cannot read reference mask {path}")
    if image.shape[::-1] != size:
        image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    return image.astype(np.float32) * np.float32(1 / 255)


@dataclass
class MatteStats:
    """Per-frame values of the metrics on one sequence of mattes."""

    edge_flicker: list[float] = field(default_factory=list)
    crossings: list[int] = field(default_factory=list)
    soft_edge_width: list[float] = field(default_factory=list)
    see_through: list[float] = field(default_factory=list)
    previous: np.ndarray | None = None

    def add(self, alpha: np.ndarray, band: int, margin: int) -> None:
        if self.previous is not None:
            self.edge_flicker.append(tm.edge_flicker(self.previous, alpha, band))
            self.crossings.append(tm.crossings(self.previous, alpha))
        self.soft_edge_width.append(tm.soft_edge_width(alpha))
        self.see_through.append(tm.see_through(alpha, margin))
        self.previous = alpha

    def summary(self) -> dict[str, float]:
        return {
            "edge_flicker": mean(self.edge_flicker),
            "crossings_per_frame": mean(self.crossings),
            "soft_edge_width_px": mean(self.soft_edge_width),
            "see_through": mean(self.see_through),
        }


def mean(values: list) -> float:
    return round(float(np.mean(values)), 6) if values else 0.0


@dataclass
class Ghosting:
    """Where the filtered matte departs from the unfiltered one, frame by frame, and how far it lags."""

    trailing: list[int] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)
    apart: float = 0.0  # summed mean |filtered - unfiltered|
    moved: float = 0.0  # summed mean |Δ unfiltered|

    def add(self, filtered: np.ndarray, plain: np.ndarray, previous_plain: np.ndarray | None) -> None:
        trailing, missing = tm.ghost_pixels(filtered, plain)
        self.trailing.append(trailing)
        self.missing.append(missing)
        if previous_plain is not None:
            self.apart += tm.mean_abs_difference(filtered, plain)
            self.moved += tm.mean_abs_difference(plain, previous_plain)

    def summary(self) -> dict:
        total = np.add(self.trailing, self.missing)
        return {
            "pixels_per_frame": mean(total.tolist()),
            "trailing_per_frame": mean(self.trailing),
            "missing_per_frame": mean(self.missing),
            "worst_frame": int(total.argmax()),
            "worst_pixels": int(total.max()),
            # how many frames of the unfiltered matte's own motion the filtered one trails (0 without motion)
            "lag_frames": round(self.apart / self.moved, 4) if self.moved > 0 else 0.0,
            "per_frame": total.tolist(),
        }


class Agreement:
    """Per-frame IoU and dtSSD of a matte against another one for the same frames (a reference, or interval 0's)."""

    def __init__(self) -> None:
        self.ious: list[float] = []
        self.dtssd: list[float] = []
        self.previous: tuple[np.ndarray, np.ndarray] | None = None

    def add(self, alpha: np.ndarray, reference: np.ndarray) -> None:
        self.ious.append(tm.iou(alpha, reference))
        if self.previous is not None:
            self.dtssd.append(tm.dtssd(self.previous[0], alpha, self.previous[1], reference))
        self.previous = alpha, reference

    def summary(self) -> dict:
        return {
            "iou_mean": mean(self.ious),
            "iou_min": round(min(self.ious), 6),
            "dtssd": mean(self.dtssd),
            "per_frame": [round(v, 6) for v in self.ious],
        }


class ReferenceScores(Agreement):
    """Agreement with a folder of reference mattes, one per frame in name order."""

    def __init__(self, folder: Path, clip: Path) -> None:
        super().__init__()
        self.folder, self.clip = folder, clip
        self.paths = reference_masks(folder)

    def add_frame(self, index: int, alpha: np.ndarray) -> None:
        if index >= len(self.paths):
            raise self.mismatch("more")
        self.add(alpha, read_reference(self.paths[index], (alpha.shape[1], alpha.shape[0])))

    def mismatch(self, frames: int | str) -> BackdropError:
        return BackdropError(f"reference {self.folder} has {len(self.paths)} masks but {self.clip} has {frames} frames")

    def summary(self) -> dict:
        if len(self.ious) != len(self.paths):
            raise self.mismatch(len(self.ious))
        return {"folder": str(self.folder), **super().summary()}


class MatteChain:
    """One matte maker with its own temporal state, as a stream's Compositor keeps it."""

    def __init__(self, mask: MaskConfig, size: tuple[int, int], layout: str, *, propagate: bool = False) -> None:
        self.maker = MatteMaker(mask, *size, layout, propagate=propagate)
        self.state: TemporalState | None = None
        self.matte: Matte | None = None  # the latest

    def __call__(self, mask: np.ndarray | None, image: np.ndarray) -> np.ndarray:
        """The full-resolution alpha for one model mask (None: a frame the schedule skipped) and its frame."""
        self.matte, self.state = self.maker.matte(mask, image, self.state)
        return self.matte.full()


def contamination(image: np.ndarray, layout: str, matte: Matte) -> float | None:
    """How much old-background colour a plain blend would keep in this frame's band (mean levels, 0–255, over
    the soft pixels): the correction clean edges make, ``α·(1 − α)·|F̄ − B̄|``; None without a band."""
    soft = (matte.work > 0) & (matte.work < 1)
    if not soft.any():
        return None
    change = np.abs(correction(image, layout, matte.work).astype(np.int16) - BIAS)
    return float(change[soft].mean())


SHEET_VERSIONS = ("plain", "clean edges")  # each crop of the contact sheet, before and after


def removes_rim(config: RunConfig) -> bool:
    """Whether the configured output cleans its edges (``mask.clean_edges``, or with auto its background's choice)."""
    setting = config.mask.clean_edges
    return parse_background(config.background).cleans_edges if setting == "auto" else setting


def sheet_colours(image: np.ndarray, layout: str, matte: Matte | None) -> list[np.ndarray]:
    """The frame's BGR colours as an output lays them over a new background, before and after clean edges: the
    frame's own, then the band's estimated person colours (the same picture when there is no matte or band)."""
    bgr = to_bgr(image, layout)
    return [bgr, bgr if matte is None else cleaned(bgr, dataclasses.replace(matte, clean_edges=True))]


def evaluate_video(
    clip: Path,
    config: RunConfig,
    *,
    reference: Path | None = None,
    sheet: Path | None = None,
    on_frame: Callable[[int, int | None], None] | None = None,
) -> dict:
    """Every temporal metric of the configured matte pipeline over ``clip``, as a JSON-ready dict.

    ``on_frame(done, total)`` hears of every frame scored (``total`` as the file's header says, or None).

    The model runs on every frame: the unfiltered matte is each frame's own; the configured matte gets only the
    masks its schedule (``model.interval``) asks for, and with an interval it is also compared with the same
    settings at interval 0 (IoU, dtSSD), the matte it saves inferences against.
    """
    references = ReferenceScores(reference, clip) if reference is not None else None
    matted, raw, ghosting, crops = MatteStats(), MatteStats(), Ghosting(), EdgeCrops(SHEET_VERSIONS)
    own, every = Agreement(), Agreement()  # against the frame's own matte, and against interval 0's
    rims: list[float] = []  # per frame, the old background a plain blend would keep in the band
    schedule = InferenceSchedule(config.model.interval, config.model.max_interval)
    skips = config.model.interval != 0
    chains: tuple[MatteChain, MatteChain, MatteChain] | None = None
    with (
        VideoFileSource(clip) as source,
        load_segmenter(config.model.name, config.model.runtime, threads=config.model.threads) as segmenter,
    ):
        every_frame = Infer(segmenter)
        while (frame := source.read()) is not None:
            if chains is None:
                size = frame.size
                chains = (
                    MatteChain(config.mask, size, frame.layout, propagate=skips),
                    MatteChain(unfiltered(config.mask), size, frame.layout),
                    MatteChain(config.mask, size, frame.layout),
                )
                band, margin = (max(1, round(share * size[1])) for share in (EDGE_BAND, INTERIOR_MARGIN))
            mask = every_frame.masks([every_frame.preprocess(frame)])[0]
            alpha = chains[0](mask if schedule.due(frame) else None, frame.image)
            if chains[0].matte is not None and (rim := contamination(frame.image, frame.layout, chains[0].matte)):
                rims.append(rim)
            plain = chains[1](mask, frame.image)
            if skips:
                every.add(alpha, chains[2](mask, frame.image))
            own.add(alpha, plain)
            ghosting.add(alpha, plain, raw.previous)
            matted.add(alpha, band, margin)
            raw.add(plain, band, margin)
            if references is not None:
                references.add_frame(frame.index, alpha)
            crops.offer(frame.index, partial(sheet_colours, frame.image, frame.layout, chains[0].matte), alpha)
            if on_frame is not None:
                on_frame(frame.index + 1, source.frame_count)
    if chains is None:
        raise BackdropError(f"{clip} has no decodable frames")
    report = {
        "clip": str(clip),
        "frames": len(ghosting.trailing),
        "frames_inferred": schedule.inferred,
        "size": list(size),
        "model": config.model.name,
        "interval": config.model.interval,
        "mask": dataclasses.asdict(config.mask),
        "edge_band_px": band,
        "interior_margin_px": margin,
        "matte": matted.summary(),
        "unfiltered": raw.summary(),
        "ghosting": ghosting.summary(),
        "against_unfiltered": own.summary(),
        "edge_contamination": {"levels": mean(rims), "removed": removes_rim(config)},
        "per_frame": {"edge_flicker": [round(v, 6) for v in matted.edge_flicker], "crossings": matted.crossings},
    }
    if skips:
        report["against_interval_0"] = every.summary()
    if references is not None:
        report["reference"] = references.summary()
    if sheet is not None:
        report["sheet"] = str(crops.write(sheet))
    return report


def format_video_report(report: dict) -> str:
    """The human summary of an ``evaluate_video`` report: what was measured, the matte's scores beside the
    unfiltered ones, ghosting, and the agreements that were measured."""
    width, height = report["size"]
    lines = [
        f"{report['clip']}: {report['frames']} frames {width}x{height}, model {report['model']}, "
        f"interval {report['interval']} ({report['frames_inferred']} inferred)",
        "",
        f"{'':24} {'matte':>11} {'unfiltered':>11}",
    ]
    for key, label in VIDEO_METRIC_LABELS.items():
        lines.append(f"{label:24} {report['matte'][key]:11.4f} {report['unfiltered'][key]:11.4f}")
    ghosting = report["ghosting"]
    lines += [
        "",
        f"ghosting: {ghosting['pixels_per_frame']:.1f} pixels a frame (worst frame {ghosting['worst_frame']}: "
        f"{ghosting['worst_pixels']}), lagging {ghosting['lag_frames']:.2f} frames",
    ]
    for key, label in (("reference", "reference"), ("against_interval_0", "against interval 0")):
        if key in report:
            scores = report[key]
            lines.append(
                f"{label}: IoU mean {scores['iou_mean']:.4f}, min {scores['iou_min']:.4f}, dtSSD {scores['dtssd']:.4f}"
            )
    if "sheet" in report:
        lines.append(f"contact sheet: {report['sheet']}")
    return "\n".join(lines)
