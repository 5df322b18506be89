"""`backdrop train`, `backdrop eval` and `backdrop distill`: adapt the segmenter to your footage, and measure it.

Handlers import TensorFlow and scikit-learn only when they run, so the rest of the CLI starts fast and
works without the [train] extra.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from backdrop.model.extras import require_modules

TRAIN_EXTRA_HINT = "pip install 'backdrop[train]'"


def count(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    trainer = subparsers.add_parser("train", help="fine-tune or train the segmenter on an images/ + masks/ dataset")
    trainer.add_argument("--data", type=Path, required=True, help="dataset folder with images/ and masks/")
    trainer.add_argument("--out", type=Path, required=True, help="output model path, e.g. models/mine.keras")
    trainer.add_argument("--init", choices=("pretrained", "scratch"), default="pretrained")
    trainer.add_argument("--variant", choices=("general", "landscape"), default="general")
    trainer.add_argument("--epochs", type=int, default=20)
    trainer.add_argument("--batch-size", type=int, default=8)
    trainer.add_argument("--learning-rate", type=float, help="peak rate (default 5e-4 pretrained, 3e-3 scratch)")
    trainer.add_argument("--weight-decay", type=float, default=1e-4, help="AdamW's decoupled weight decay")
    trainer.add_argument("--val-fraction", type=float, default=0.15, help="share held out for validation")
    trainer.add_argument("--patience", type=int, default=5, help="stop after this many epochs without improvement")
    trainer.add_argument("--seed", type=int, default=0)
    trainer.add_argument("--resume", action="store_true", help="continue from OUT.checkpoints/")
    trainer.add_argument("--backgrounds", type=Path, help="folder of images to swap in behind the person")
    trainer.add_argument("--no-augment", action="store_true", help="train on the images exactly as they are")
    trainer.add_argument("--threads", type=count, help="TensorFlow compute threads (default: all cores)")
    trainer.set_defaults(handler=run_train)

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
    evaluator.set_defaults(handler=run_eval)

    distiller = subparsers.add_parser("distill", help="label your own clips with the pretrained model")
    distiller.add_argument("clips", type=Path, nargs="+", help="video files")
    distiller.add_argument("--out", type=Path, required=True, help="dataset folder to create")
    distiller.add_argument("--model", default="general", help="the teacher: general, landscape or a path")
    distiller.add_argument("--every", type=int, default=1, help="keep every N-th frame")
    distiller.add_argument("--min-confidence", type=float, default=0.0, help="drop frames below this (try 0.9)")
    distiller.add_argument("--max-side", type=int, default=640, help="store frames at most this large")
    distiller.add_argument("--threads", type=count, help="inference threads")
    distiller.set_defaults(handler=run_distill)


def run_train(args: argparse.Namespace) -> int:
    require_modules("tensorflow", purpose="training", hint=TRAIN_EXTRA_HINT)
    from backdrop.model.training.augment import AugmentConfig
    from backdrop.model.training.trainer import TrainConfig, train

    config = TrainConfig(
        data=args.data,
        out=args.out,
        init=args.init,
        variant=args.variant,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        weight_decay=args.weight_decay,
        val_fraction=args.val_fraction,
        patience=args.patience,
        seed=args.seed,
        resume=args.resume,
        backgrounds=args.backgrounds,
        augmentation=None if args.no_augment else AugmentConfig(),
        threads=args.threads,
    )
    result = train(config)
    stopped = ", stopped early" if result.stopped_early else ""
    print(f"best epoch {result.best_epoch} ({result.epochs_run} run{stopped}); model files:")
    for path in result.files:
        print(path)
    return 0


VIDEO_ONLY = ("config", "reference", "sheet")
DATA_ONLY = ("overlays",)


def run_eval(args: argparse.Namespace) -> int:
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

    from backdrop.model.evaluation.video import evaluate_video
    from backdrop.stream.config import load_config, with_overrides

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


def run_distill(args: argparse.Namespace) -> int:
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
