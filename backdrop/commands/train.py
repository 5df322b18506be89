"""``backdrop train``: fine-tune or train the segmenter on an images/ + masks/ dataset.

TensorFlow is imported only when the command runs, so the rest of the CLI starts fast without the [train] extra.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from backdrop.commands.arguments import (
    TRAIN_EXTRA_HINT,
    add_overwrite_option,
    add_report_options,
    count,
    existing,
    refuse_replacing,
    shows_progress,
)
from backdrop.commands.progress import ProgressLine
from backdrop.model.extras import require_modules


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
    trainer.add_argument(
        "--resume", action="store_true", help="continue from OUT.checkpoints/ (replacing the model files it wrote)"
    )
    trainer.add_argument("--backgrounds", type=Path, help="folder of images to swap in behind the person")
    trainer.add_argument("--no-augment", action="store_true", help="train on the images exactly as they are")
    trainer.add_argument("--threads", type=count, help="TensorFlow compute threads (default: all cores)")
    add_overwrite_option(trainer)
    add_report_options(trainer, json_help="print the result (files, best epoch, loss history) as JSON instead")
    trainer.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from backdrop.model.contract import MODEL_SUFFIXES, model_stem

    if not args.resume:  # a resumed run finishes the model whose files it replaces
        files = [("model file", model_stem(args.out).with_suffix(suffix)) for suffix in MODEL_SUFFIXES]
        refuse_replacing(existing(*files), overwrite=args.overwrite)
    require_modules("tensorflow", purpose="training", hint=TRAIN_EXTRA_HINT)
    from backdrop.model.training.augment import AugmentConfig
    from backdrop.model.training.trainer import TrainConfig, TrainProgress, train

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
        verbose=0,  # the progress line below, and the summary, say what Keras' per-epoch lines would
    )
    progress = ProgressLine(enabled=shows_progress(args))

    def show(where: TrainProgress) -> None:
        label = f"train epoch {where.epoch}/{where.epochs}"
        progress.count(label, where.batch, where.batches, detail=f"loss {where.loss:.4f}")

    try:
        result = train(config, on_batch=show if progress.enabled else None)
    finally:
        progress.end()
    if args.json:
        document = {
            "files": [str(path) for path in result.files],
            "best_epoch": result.best_epoch,
            "epochs_run": result.epochs_run,
            "stopped_early": result.stopped_early,
            "history": result.history,
        }
        print(json.dumps(document, indent=2))
        return 0
    stopped = ", stopped early" if result.stopped_early else ""
    print(f"best epoch {result.best_epoch} ({result.epochs_run} run{stopped}); model files:")
    for path in result.files:
        print(path)
    return 0
