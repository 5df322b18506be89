"""``backdrop eval``: score a model on an images/ + masks/ dataset, or the run's matte on any footage (``--video``).

scikit-learn is imported only for ``--data``; ``--video`` runs the stream's own matte steps
(backdrop/video_evaluation.py).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from backdrop.commands.arguments import (
    TRAIN_EXTRA_HINT,
    add_overwrite_option,
    add_progress_option,
    count,
    existing,
    refuse_replacing,
    shows_progress,
)
from backdrop.commands.progress import ProgressLine
from backdrop.model.extras import require_modules

STDOUT = "-"  # --json with no file: the JSON goes to stdout instead of the summary


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
    evaluator.add_argument(
        "--json",
        nargs="?",
        const=STDOUT,
        metavar="FILE",
        help="alone: print every score as JSON instead of the summary; with FILE: also write them there",
    )
    evaluator.add_argument("--overlays", type=Path, help="--data: folder for pictures of the worst images")
    evaluator.add_argument("--worst", type=count, default=5, help="--data: how many worst images to draw")
    evaluator.add_argument("--threads", type=count, help="inference threads")
    evaluator.add_argument(
        "--config", help="--video: run config (YAML path or bundled name) for model and mask settings"
    )
    evaluator.add_argument("--reference", type=Path, metavar="FOLDER", help="--video: reference mattes, one per frame")
    evaluator.add_argument("--sheet", type=Path, metavar="PNG", help="--video: contact sheet of edge crops")
    add_overwrite_option(evaluator)
    add_progress_option(evaluator)
    evaluator.set_defaults(handler=run)


VIDEO_ONLY = ("config", "reference", "sheet")
DATA_ONLY = ("overlays",)


def run(args: argparse.Namespace) -> int:
    from backdrop.errors import ConfigError

    misplaced = [name for name in (DATA_ONLY if args.video else VIDEO_ONLY) if getattr(args, name) is not None]
    if misplaced:
        mode = "--video" if args.video else "--data"
        raise ConfigError(f"--{misplaced[0]} does not apply to eval {mode}")
    json_file = Path(args.json) if args.json not in (None, STDOUT) else None
    found = existing(("--json", json_file), ("--sheet", args.sheet))
    if args.overlays is not None and args.overlays.is_dir() and any(args.overlays.iterdir()):
        found.append(f"--overlays {args.overlays} already holds files")
    refuse_replacing(found, overwrite=args.overwrite)
    progress = ProgressLine(enabled=shows_progress(args))
    try:
        return run_video_eval(args, json_file, progress) if args.video else run_data_eval(args, json_file, progress)
    finally:
        progress.end()


def run_data_eval(args: argparse.Namespace, json_file: Path | None, progress: ProgressLine) -> int:
    require_modules("sklearn", purpose="evaluation", hint=TRAIN_EXTRA_HINT)
    import json

    from backdrop.model.evaluation.evaluate import Evaluator
    from backdrop.model.evaluation.report import format_table, write_json, write_overlays

    with Evaluator(args.model or "general", args.runtime or "onnxruntime", threads=args.threads) as evaluator:
        report = evaluator.evaluate(args.data, on_sample=lambda done, total: progress.count("eval", done, total))
        progress.end()
        if args.json == STDOUT:
            print(json.dumps(report.to_dict(), indent=2))
        else:
            print(format_table(report))
        if json_file:
            print(f"\nscores: {write_json(report, json_file)}")
        if args.overlays:
            paths = write_overlays(report.worst(args.worst), evaluator, args.overlays)
            print(f"overlays of the {len(paths)} worst images: {args.overlays}")
    return 0


def run_video_eval(args: argparse.Namespace, json_file: Path | None, progress: ProgressLine) -> int:
    import json

    from backdrop.stream.config.run import load_config, with_overrides
    from backdrop.video_evaluation import evaluate_video, format_video_report

    overrides = {"model.name": args.model, "model.runtime": args.runtime, "model.threads": args.threads}
    config = with_overrides(load_config(args.config), overrides)
    report = evaluate_video(
        args.video,
        config,
        reference=args.reference,
        sheet=args.sheet,
        on_frame=lambda done, total: progress.count("eval", done, total),
    )
    progress.end()
    text = json.dumps(report, indent=2)
    if json_file:
        json_file.parent.mkdir(parents=True, exist_ok=True)
        json_file.write_text(text + "\n")
    print(text if args.json == STDOUT else format_video_report(report))
    return 0
