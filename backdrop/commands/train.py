"""``backdrop train``: fine-tune or train the segmenter on an images/ + masks/ dataset.

TensorFlow is imported only when the command runs, so the rest of the CLI starts fast without the [train] extra.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from backdrop.commands.arguments import TRAIN_EXTRA_HINT, count
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
    trainer.add_argument("--resume", action="store_true", help="continue from OUT.checkpoints/")
    trainer.add_argument("--backgrounds", type=Path, help="folder of images to swap in behind the person")
    trainer.add_argument("--no-augment", action="store_true", help="train on the images exactly as they are")
    trainer.add_argument("--threads", type=count, help="TensorFlow compute threads (default: all cores)")
    trainer.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
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
