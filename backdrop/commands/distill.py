"""``backdrop distill``: label your own clips with the pretrained model, as a dataset for ``backdrop train``."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from backdrop.commands.arguments import add_report_options, count, shows_progress
from backdrop.commands.progress import ProgressLine


def register(subparsers: argparse._SubParsersAction) -> None:
    distiller = subparsers.add_parser("distill", help="label your own clips with the pretrained model")
    distiller.add_argument("clips", type=Path, nargs="+", help="video files")
    distiller.add_argument("--out", type=Path, required=True, help="dataset folder to create")
    distiller.add_argument("--model", default="general", help="the teacher: general, landscape or a path")
    distiller.add_argument("--every", type=int, default=1, help="keep every N-th frame")
    distiller.add_argument(
        "--min-confidence",
        type=float,
        default=0.0,
        help="drop frames the model is less sure of than this, 0 … 1. Try 0.75: the demo clip's frames score "
        "0.71 … 0.90 and 0.75 keeps 129 of its 150. A bar that keeps fewer than 2 frames is an error that shows the "
        "scores seen",
    )
    distiller.add_argument("--max-side", type=int, default=640, help="store frames at most this large")
    distiller.add_argument("--threads", type=count, help="inference threads")
    add_report_options(distiller, json_help="print the per-clip counts as JSON instead of the summary")
    distiller.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from backdrop.model.training.distill import DistillConfig, DistillProgress, distill

    config = DistillConfig(
        clips=tuple(args.clips),
        out=args.out,
        model=args.model,
        every=args.every,
        min_confidence=args.min_confidence,
        max_side=args.max_side,
        threads=args.threads,
    )
    progress = ProgressLine(enabled=shows_progress(args))

    def show(where: DistillProgress) -> None:
        progress.count(f"distill {where.clip}", where.frame, where.frames)

    try:
        summaries = distill(config, on_frame=show if progress.enabled else None)
    finally:
        progress.end()
    if args.json:
        print(json.dumps({"dataset": str(args.out), "clips": [dataclasses.asdict(s) for s in summaries]}, indent=2))
        return 0
    for summary in summaries:
        print(f"{summary.clip}: kept {summary.kept} frames, dropped {summary.dropped} below the confidence bar")
    print(f"dataset: {args.out}")
    return 0
