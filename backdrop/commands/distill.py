"""``backdrop distill``: label your own clips with the pretrained model, as a dataset for ``backdrop train``."""

from __future__ import annotations

import argparse
from pathlib import Path

from backdrop.commands.arguments import count


def register(subparsers: argparse._SubParsersAction) -> None:
    distiller = subparsers.add_parser("distill", help="label your own clips with the pretrained model")
    distiller.add_argument("clips", type=Path, nargs="+", help="video files")
    distiller.add_argument("--out", type=Path, required=True, help="dataset folder to create")
    distiller.add_argument("--model", default="general", help="the teacher: general, landscape or a path")
    distiller.add_argument("--every", type=int, default=1, help="keep every N-th frame")
    distiller.add_argument("--min-confidence", type=float, default=0.0, help="drop frames below this (try 0.9)")
    distiller.add_argument("--max-side", type=int, default=640, help="store frames at most this large")
    distiller.add_argument("--threads", type=count, help="inference threads")
    distiller.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from backdrop.model.training.distill import DistillConfig, distill

    config = DistillConfig(
        clips=tuple(args.clips),
        out=args.out,
        model=args.model,
        every=args.every,
        min_confidence=args.min_confidence,
        max_side=args.max_side,
        threads=args.threads,
    )
    for summary in distill(config):
        print(f"{summary.clip}: kept {summary.kept} frames, dropped {summary.dropped} below the confidence bar")
    print(f"dataset: {args.out}")
    return 0
