"""`backdrop train`: fine-tune (or train from scratch) the segmenter and export it like the shipped model.

AdamW under a cosine learning-rate schedule minimises BCE + Dice. After every epoch the full training
state (weights and optimizer, whose step counter drives the schedule) goes to ``NAME.checkpoints/``, so
``--resume`` continues where a stopped run left off; the best epoch by validation loss is what gets
exported. Early stopping ends a run whose validation loss has not improved for ``patience`` epochs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import keras
import tensorflow as tf

from backdrop.errors import BackdropError
from backdrop.model.architecture import VARIANT_INPUT_SIZES, build_selfie_segmenter
from backdrop.model.contract import ModelContract, model_stem, resolve_model
from backdrop.model.export import save_model_files
from backdrop.model.keras_io import load_keras_model
from backdrop.model.training.augment import AugmentConfig
from backdrop.model.training.dataset import (
    load_arrays,
    load_backgrounds,
    split_samples,
    training_dataset,
    validation_dataset,
)
from backdrop.model.training.layout import find_samples
from backdrop.model.training.losses import BceDiceLoss, PersonIoU

INITS = ("pretrained", "scratch")
# Fine-tuning must not wreck the pretrained features; a fresh network needs bigger steps.
DEFAULT_LEARNING_RATES = {"pretrained": 5e-4, "scratch": 3e-3}
FINAL_LEARNING_RATE_FRACTION = 0.05  # the cosine schedule ends at this fraction of the initial rate


class TrainingError(BackdropError):
    """Training cannot start or continue: bad settings or nothing to resume."""


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Everything one ``backdrop train`` run needs; the CLI maps its flags one-to-one onto these fields."""

    data: Path
    out: Path
    init: str = "pretrained"
    variant: str = "general"
    epochs: int = 20
    batch_size: int = 8
    learning_rate: float | None = None  # None: DEFAULT_LEARNING_RATES[init]
    weight_decay: float = 1e-4
    val_fraction: float = 0.15
    patience: int = 5
    seed: int = 0
    resume: bool = False
    backgrounds: Path | None = None
    augmentation: AugmentConfig | None = field(default_factory=AugmentConfig)
    threads: int | None = None
    verbose: int = 2

    def __post_init__(self) -> None:
        if self.init not in INITS:
            raise TrainingError(f"unknown init {self.init!r}: choose one of {', '.join(INITS)}")
        if self.variant not in VARIANT_INPUT_SIZES:
            raise TrainingError(f"unknown variant {self.variant!r}: choose one of {', '.join(VARIANT_INPUT_SIZES)}")
        for name in ("epochs", "batch_size", "patience"):
            if getattr(self, name) < 1:
                raise TrainingError(f"{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.val_fraction < 1:
            raise TrainingError(f"val-fraction must be in [0, 1), got {self.val_fraction}")
        if self.learning_rate is not None and self.learning_rate <= 0:
            raise TrainingError(f"learning-rate must be positive, got {self.learning_rate}")

    @property
    def stem(self) -> Path:
        """The output model's path without suffix (``--out x.keras`` and ``--out x`` both mean ``x``)."""
        return model_stem(self.out)

    @property
    def checkpoints(self) -> Path:
        return self.stem.parent / f"{self.stem.name}.checkpoints"


@dataclass(frozen=True)
class TrainResult:
    files: list[Path]
    history: dict[str, list[float]]
    best_epoch: int  # 1-based
    epochs_run: int
    stopped_early: bool


@dataclass(frozen=True)
class TrainProgress:
    """Where a training run is after a batch: batch ``batch`` of ``batches`` in epoch ``epoch`` of ``epochs``."""

    epoch: int  # 1-based, as are batches
    epochs: int
    batch: int
    batches: int
    loss: float


class BatchReport(keras.callbacks.Callback):
    """Hands a TrainProgress to ``report`` after every batch: Keras' own display is per epoch at best."""

    def __init__(self, report: Callable[[TrainProgress], None], epochs: int, batches: int) -> None:
        super().__init__()
        self.report, self.epochs, self.batches = report, epochs, batches
        self.epoch = 1

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch + 1

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = float((logs or {}).get("loss", math.nan))
        self.report(TrainProgress(self.epoch, self.epochs, batch + 1, self.batches, loss))


def initial_model(init: str, variant: str) -> keras.Model:
    """The shipped pretrained model of ``variant``, or a freshly initialised one."""
    if init == "pretrained":
        return load_keras_model(resolve_model(variant).require(".keras"))
    return build_selfie_segmenter(variant)


def compile_for_training(model: keras.Model, *, learning_rate: float, weight_decay: float, total_steps: int) -> None:
    schedule = keras.optimizers.schedules.CosineDecay(
        learning_rate, decay_steps=max(1, total_steps), alpha=FINAL_LEARNING_RATE_FRACTION
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=schedule, weight_decay=weight_decay),
        loss=BceDiceLoss(),
        metrics=[PersonIoU()],
        jit_compile=False,  # plain graphs: an XLA compile on top of the trace would only lengthen short runs
    )
    # Create the optimizer's slots now: created inside the first step, they make TensorFlow trace it twice.
    model.optimizer.build(model.trainable_variables)


class TrainingState(keras.callbacks.Callback):
    """After every epoch: the resumable model in ``last.keras``, the best weights so far, and ``state.json``."""

    def __init__(self, folder: Path, monitor: str, variant: str, best: float, best_epoch: int) -> None:
        super().__init__()
        self.folder, self.monitor, self.variant = folder, monitor, variant
        self.best, self.best_epoch = best, best_epoch

    @property
    def best_weights(self) -> Path:
        return self.folder / "best.weights.h5"

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        value = float((logs or {})[self.monitor])
        if value < self.best:
            self.best, self.best_epoch = value, epoch + 1
            self.model.save_weights(self.best_weights)
        self.model.save(self.folder / "last.keras")
        state = {"epoch": epoch + 1, "monitor": self.monitor, "best": self.best, "best_epoch": self.best_epoch}
        temporary = self.folder / "state.json.tmp"
        temporary.write_text(json.dumps({**state, "variant": self.variant}, indent=2) + "\n")
        temporary.replace(self.folder / "state.json")


def _resume_state(config: TrainConfig) -> dict:
    path = config.checkpoints / "state.json"
    if not path.is_file() or not (config.checkpoints / "last.keras").is_file():
        raise TrainingError(f"nothing to resume: no checkpoint in {config.checkpoints}")
    state = json.loads(path.read_text())
    if state["variant"] != config.variant:
        raise TrainingError(
            f"the checkpoint in {config.checkpoints} is a {state['variant']} model, not {config.variant}"
        )
    if state["epoch"] >= config.epochs:
        raise TrainingError(f"the checkpoint already finished {state['epoch']} epochs: raise --epochs to continue")
    return state


def _set_threads(threads: int | None) -> None:
    if not threads:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass  # TensorFlow already started in this process: its thread pools are fixed


def train(config: TrainConfig, *, on_batch: Callable[[TrainProgress], None] | None = None) -> TrainResult:
    """Train as ``config`` says and write NAME.keras/.json/.onnx/.tflite at ``config.stem``; ``on_batch`` hears of
    every batch trained."""
    state = _resume_state(config) if config.resume else None
    _set_threads(config.threads)
    keras.utils.set_random_seed(config.seed)
    size = VARIANT_INPUT_SIZES[config.variant]
    train_samples, val_samples = split_samples(find_samples(config.data), config.val_fraction, config.seed)
    train_arrays = load_arrays(train_samples, size)
    backgrounds = load_backgrounds(config.backgrounds, size) if config.backgrounds else None
    train_data = training_dataset(
        train_arrays,
        batch_size=config.batch_size,
        seed=config.seed,
        augmentation=config.augmentation,
        backgrounds=backgrounds,
    )
    val_data = validation_dataset(load_arrays(val_samples, size), batch_size=config.batch_size) if val_samples else None
    monitor = "val_loss" if val_data is not None else "loss"

    if state is not None:
        model = keras.models.load_model(config.checkpoints / "last.keras")
        initial_epoch, best, best_epoch = state["epoch"], state["best"], state["best_epoch"]
    else:
        model = initial_model(config.init, config.variant)
        steps = config.epochs * math.ceil(len(train_arrays) / config.batch_size)
        learning_rate = config.learning_rate or DEFAULT_LEARNING_RATES[config.init]
        compile_for_training(model, learning_rate=learning_rate, weight_decay=config.weight_decay, total_steps=steps)
        initial_epoch, best, best_epoch = 0, math.inf, 0

    config.checkpoints.mkdir(parents=True, exist_ok=True)
    state_callback = TrainingState(config.checkpoints, monitor, config.variant, best, best_epoch)
    if state is None:
        state_callback.best_weights.unlink(missing_ok=True)  # a fresh run must not export an older run's best
    stopper = keras.callbacks.EarlyStopping(monitor=monitor, patience=config.patience)
    callbacks: list[keras.callbacks.Callback] = [state_callback, stopper]
    if on_batch is not None:
        callbacks.append(BatchReport(on_batch, config.epochs, math.ceil(len(train_arrays) / config.batch_size)))
    history = model.fit(
        train_data,
        validation_data=val_data,
        epochs=config.epochs,
        initial_epoch=initial_epoch,
        callbacks=callbacks,
        shuffle=False,  # the dataset shuffles itself, under the seed
        verbose=config.verbose,
    )
    if not state_callback.best_weights.is_file():
        raise TrainingError(f"training diverged: {monitor} was never a finite number")
    model.load_weights(state_callback.best_weights)
    return TrainResult(
        files=export_trained(model, config),
        history={k: [float(v) for v in values] for k, values in history.history.items()},
        best_epoch=state_callback.best_epoch,
        epochs_run=len(history.epoch),
        stopped_early=stopper.stopped_epoch > 0,
    )


def export_trained(model: keras.Model, config: TrainConfig) -> list[Path]:
    """Copy the weights into a clean, uncompiled network and write it through the shipped model's export path."""
    clean = build_selfie_segmenter(config.variant)
    clean.set_weights(model.get_weights())
    height, width = VARIANT_INPUT_SIZES[config.variant]
    settings = ", ".join(f"{k}={getattr(config, k)}" for k in ("data", "init", "epochs", "seed"))
    pretrained = config.init == "pretrained"
    licence = ", fine-tuned from MediaPipe selfie segmentation, Apache License 2.0" if pretrained else ""
    contract = ModelContract(
        name=config.stem.name,
        variant=config.variant,
        input_height=height,
        input_width=width,
        origin=f"backdrop train ({settings}){licence}",
    )
    return save_model_files(clean, contract, config.stem)
