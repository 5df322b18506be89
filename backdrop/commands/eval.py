"""``backdrop eval``: score a model on an images/ + masks/ dataset, or the run's matte on any footage (``--video``).

scikit-learn is imported only for ``--data``; ``--video`` runs the stream's own matte steps
(backdrop/video_evaluation.py).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from backdrop.commands.arguments import TRAIN_EXTRA_HINT, count
from backdrop.model.extras import require_modules


def register(subparsers: argparse._SubParsersAction) -> None:
    evaluator = subparsers.add_parser(
        "eval", help="score a model on an images/ + masks/ dataset, or the matte's temporal quality on a video"
    )
    mode = evaluator.add_mutually_exclusive_group(required=True)
    mode.add_argument("--data", type=Path, help="dataset folder with images/ and masks/")
    mode.add_argument("--video", type=Path, metavar="CLIP", help="any footage: temporal metrics of the run's matte")
    evaluator.add_argument(
        "--model", help="general, landscape or a path to a model (default: general, or the config's)"
    )
    evaluator.add_argument(
        "--runtime", help="onnxruntime, tflite, keras, tensorrt (default: onnxruntime, or the config's)"
    )
    evaluator.add_argument("--json", type=Path, help="also write every score to this JSON file")
    evaluator.add_argument("--overlays", type=Path, help="--data: folder for pictures of the worst images")
    evaluator.add_argument("--worst", type=count, default=5, help="--data: how many worst images to draw")
    evaluator.add_argument("--threads", type=count, help="inference threads")
    evaluator.add_argument(
        "--config", help="--video: run config (YAML path or bundled name) for model and mask settings"
    )
    evaluator.add_argument("--reference", type=Path, metavar="FOLDER", help="--video: reference mattes, one per frame")
    evaluator.add_argument("--sheet", type=Path, metavar="PNG", help="--video: contact sheet of edge crops")
    evaluator.set_defaults(handler=run)


VIDEO_ONLY = ("config", "reference", "sheet")
DATA_ONLY = ("overlays",)


def run(args: argparse.Namespace) -> int:
    from backdrop.errors import ConfigError

    misplaced = [name for name in (DATA_ONLY if args.video else VIDEO_ONLY) if getattr(args, name) is not None]
    if misplaced:
        mode = "--video" if args.video else "--data"
        raise ConfigError(f"--{misplaced[0]} does not apply to eval {mode}")
    if args.video:
        return run_video_eval(args)
    require_modules("sklearn", purpose="evaluation", hint=TRAIN_EXTRA_HINT)
    from backdrop.model.evaluation.evaluate import Evaluator
    from backdrop.model.evaluation.report import format_table, write_json, write_overlays

    with Evaluator(args.model or "general", args.runtime or "onnxruntime", threads=args.threads) as evaluator:
        report = evaluator.evaluate(args.data)
        print(format_table(report))
        if args.json:
            print(f"\nscores: {write_json(report, args.json)}")
        if args.overlays:
            paths = write_overlays(report.worst(args.worst), evaluator, args.overlays)
            print(f"overlays of the {len(paths)} worst images: {args.overlays}")
    return 0


def run_video_eval(args: argparse.Namespace) -> int:
    import json

    from backdrop.stream.config.run import load_config, with_overrides
    from backdrop.video_evaluation import evaluate_video

    overrides = {"model.name": args.model, "model.runtime": args.runtime, "model.threads": args.threads}
    config = with_overrides(load_config(args.config), overrides)
    report = evaluate_video(args.video, config, reference=args.reference, sheet=args.sheet)
    text = json.dumps(report, indent=2)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    summary = {key: report[key] for key in ("frames", "matte", "unfiltered")}
    summary["ghosting"] = {k: v for k, v in report["ghosting"].items() if k != "per_frame"}
    if "reference" in report:
        summary["reference_iou"] = {k: report["reference"][k] for k in ("iou_mean", "iou_min")}
    print(json.dumps(summary, indent=2))
    return 0
