"""Training on data the tests make themselves: dataset layout, augmentation, distillation, fine-tuning, export.

The fine-tuning domain is "negative film" (tests/training_data.py): the bundled people composited onto
synthetic backgrounds, colours inverted under a tint. The pretrained model is measurably worse there,
which gives fine-tuning something real to fix; held-out images use other backgrounds and placements.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import tensorflow as tf
from training_data import make_samples, write_clip, write_dataset

from backdrop import cli
from backdrop.commands import distill as distill_command
from backdrop.commands import train as train_command
from backdrop.model.evaluation.evaluate import Evaluator
from backdrop.model.segmenter import load_segmenter
from backdrop.model.training.augment import AugmentConfig, augment
from backdrop.model.training.dataset import Arrays, load_arrays, split_samples, training_dataset
from backdrop.model.training.distill import DistillConfig, confidence, distill
from backdrop.model.training.layout import DatasetError, find_samples, read_mask
from backdrop.model.training.losses import BceDiceLoss
from backdrop.model.training.trainer import (
    DEFAULT_LEARNING_RATES,
    TrainConfig,
    compile_for_training,
    initial_model,
    train,
)

ROOT = Path(__file__).resolve().parent.parent
GENERAL = (256, 256)
NO_AUGMENT = AugmentConfig(
    flip=False,
    min_crop=1.0,
    brightness=0,
    contrast=0,
    saturation=0,
    hue=0,
    blur_probability=0,
    max_noise=0,
    background_probability=0,
)


def run_backdrop(monkeypatch, *argv: str) -> int:
    """The real `backdrop` entry point, with this module's commands registered."""
    monkeypatch.setattr(cli, "COMMAND_MODULES", (train_command, distill_command))
    return cli.main(list(argv))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0.5, b > 0.5
    return np.count_nonzero(a & b) / max(1, np.count_nonzero(a | b))


# --- dataset layout -------------------------------------------------------------------------------------


def test_masks_in_0_1_and_0_255_read_the_same(tmp_path):
    samples = make_samples(1, (64, 64), seed=3)
    write_dataset(tmp_path / "a", samples, mask_scale=255)
    write_dataset(tmp_path / "b", samples, mask_scale=1)
    (a,), (b,) = find_samples(tmp_path / "a"), find_samples(tmp_path / "b")
    np.testing.assert_array_equal(read_mask(a.mask, (64, 64)), read_mask(b.mask, (64, 64)))
    assert set(np.unique(read_mask(a.mask, (64, 64)))) == {0.0, 1.0}


def test_clips_stay_on_one_side_of_the_validation_split(tmp_path):
    write_dataset(tmp_path, make_samples(6, (32, 32), seed=1))
    for clip in ("c1", "c2", "c3"):
        write_dataset(tmp_path, make_samples(4, (32, 32), seed=2), clip=clip)
    train_samples, validation = split_samples(find_samples(tmp_path), 0.3, seed=0)
    assert len(train_samples) + len(validation) == 18 and validation
    train_clips = {s.clip for s in train_samples if s.clip}
    assert not train_clips & {s.clip for s in validation if s.clip}


def test_a_single_clip_is_split_in_time(tmp_path):
    write_dataset(tmp_path, make_samples(10, (32, 32), seed=1), clip="only")
    train_samples, validation = split_samples(find_samples(tmp_path), 0.2, seed=0)
    assert [s.name for s in validation] == ["only/0008", "only/0009"]
    assert len(train_samples) == 8


def test_too_few_samples_to_validate_is_an_error(tmp_path):
    write_dataset(tmp_path, make_samples(1, (32, 32), seed=1))
    with pytest.raises(DatasetError, match="--val-fraction 0"):
        split_samples(find_samples(tmp_path), 0.15, seed=0)
    assert split_samples(find_samples(tmp_path), 0.0, seed=0)[1] == []


# --- augmentation and the tf.data pipeline -----------------------------------------------------------


@pytest.fixture(scope="module")
def small_arrays():
    samples = make_samples(6, (96, 96), seed=5)
    return Arrays(np.stack([s[0] for s in samples]), np.stack([s[1] * 255 for s in samples])[..., None])


def batches(arrays, seed, epochs=1):
    dataset = training_dataset(arrays, batch_size=3, seed=seed, augmentation=AugmentConfig())
    return [[(x.numpy(), y.numpy()) for x, y in dataset] for _ in range(epochs)]


def test_pipeline_is_deterministic_under_a_seed(small_arrays):
    first, again, other = (
        batches(small_arrays, 1, epochs=2),
        batches(small_arrays, 1, epochs=2),
        batches(small_arrays, 2),
    )
    for (x1, y1), (x2, y2) in zip(first[0] + first[1], again[0] + again[1], strict=True):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(first[0][0][0], other[0][0][0])
    assert not np.array_equal(first[0][0][0], first[1][0][0])  # each epoch sees new augmentations


def test_geometry_moves_image_and_mask_together():
    mask = np.zeros((64, 64, 1), np.float32)
    mask[10:40, 5:25] = 1
    image = np.repeat(mask, 3, axis=-1)  # the image is its own mask: any misalignment shows
    config = AugmentConfig(
        min_crop=0.6, brightness=0, contrast=0, saturation=0, hue=0, blur_probability=0, max_noise=0,
        background_probability=0,
    )  # fmt: skip
    for seed in range(8):
        got_image, got_mask = augment(tf.constant(image), tf.constant(mask), tf.constant([seed, 3], tf.int64), config)
        np.testing.assert_allclose(got_image.numpy()[..., 0], got_mask.numpy()[..., 0], atol=1e-5)
    flipped = {bool(augment(image, mask, tf.constant([s, 0], tf.int64), config)[1][20, 10, 0] < 0.5) for s in range(8)}
    assert flipped == {True, False}  # some seeds flip or move the person, others do not


def test_background_swap_replaces_only_the_background(tmp_path):
    from backdrop.model.training.dataset import load_backgrounds

    (tmp_path / "bg").mkdir()
    cv2.imwrite(str(tmp_path / "bg" / "blue.png"), np.full((20, 30, 3), (255, 0, 0), np.uint8))  # BGR blue
    image, mask = make_samples(1, (64, 64), seed=8)[0]
    swap_only = AugmentConfig(**{**NO_AUGMENT.__dict__, "background_probability": 1.0})
    stock = tf.constant(load_backgrounds(tmp_path / "bg", (64, 64)))
    got, got_mask = augment(
        tf.constant(image / 255, tf.float32), tf.constant(mask[..., None], tf.float32), tf.constant([1, 2], tf.int64),
        swap_only, stock,
    )  # fmt: skip
    got, person = got.numpy(), mask.astype(bool)
    np.testing.assert_allclose(got[~person], np.broadcast_to([0, 0, 1], got[~person].shape), atol=1e-6)
    np.testing.assert_allclose(got[person], image[person] / 255, atol=1e-6)
    np.testing.assert_array_equal(got_mask.numpy()[..., 0], mask)


def test_loss_is_zero_when_perfect_and_grows_with_error():
    loss = BceDiceLoss()
    truth = np.zeros((2, 8, 8, 1), np.float32)
    truth[0, 2:6, 2:6] = 1  # one image with a person, one empty
    perfect = float(loss(truth, np.clip(truth, 1e-7, 1 - 1e-7)))
    unsure = float(loss(truth, np.full_like(truth, 0.5)))
    wrong = float(loss(truth, np.clip(1 - truth, 1e-7, 1 - 1e-7)))
    assert perfect < 1e-3 < unsure < wrong


def test_a_few_training_steps_lower_the_loss():
    samples = make_samples(8, (144, 256), seed=6, shifted=True)
    images = np.stack([image for image, _ in samples]).astype(np.float32) / 255
    masks = np.stack([mask for _, mask in samples]).astype(np.float32)[..., None]
    model = initial_model("pretrained", "landscape")
    compile_for_training(model, learning_rate=DEFAULT_LEARNING_RATES["pretrained"], weight_decay=1e-4, total_steps=6)
    before, _ = model.evaluate(images, masks, batch_size=8, verbose=0)
    model.fit(images, masks, batch_size=4, epochs=3, shuffle=False, verbose=0)  # six steps
    after, _ = model.evaluate(images, masks, batch_size=8, verbose=0)
    assert after < 0.5 * before


# --- fine-tuning on a shifted domain (slow: one real training run, then its exports) -------------------


@pytest.fixture(scope="module")
def fine_tuned(tmp_path_factory):
    """One short fine-tuning run from the pretrained weights on negative-film composites."""
    root = tmp_path_factory.mktemp("fine_tune")
    data = write_dataset(root / "train", make_samples(40, GENERAL, seed=1, shifted=True))
    held_out = write_dataset(root / "held_out", make_samples(16, GENERAL, seed=99, shifted=True))
    config = TrainConfig(
        data=data, out=root / "models" / "negative.keras", epochs=4, val_fraction=0.2, threads=2, verbose=0
    )
    return config, train(config), held_out


@pytest.mark.slow
def test_training_writes_every_format_and_checkpoints(fine_tuned):
    config, result, _ = fine_tuned
    assert [p.suffix for p in result.files] == [".keras", ".json", ".onnx", ".tflite"]
    assert all(p.is_file() and p.stem == "negative" for p in result.files)
    assert {"last.keras", "best.weights.h5", "state.json"} <= {p.name for p in config.checkpoints.iterdir()}
    assert result.epochs_run == 4 and 1 <= result.best_epoch <= 4


@pytest.mark.slow
def test_fine_tuning_lowers_the_held_out_loss(fine_tuned):
    config, result, held_out = fine_tuned
    assert result.history["loss"][-1] < 0.5 * result.history["loss"][0]
    arrays = load_arrays(find_samples(held_out), GENERAL)
    truth = arrays.masks.astype(np.float32) / 255
    images = arrays.images.astype(np.float32) / 255
    losses = {}
    for model in ("general", str(config.stem)):
        with load_segmenter(model, "onnxruntime", threads=1) as segmenter:
            losses[model] = float(BceDiceLoss()(truth, segmenter.segment(images)[..., None]))
    assert losses[str(config.stem)] < 0.7 * losses["general"]


@pytest.mark.slow
def test_fine_tuning_raises_held_out_iou(fine_tuned):
    config, _, held_out = fine_tuned
    scores = {}
    for model in ("general", str(config.stem.with_suffix(".keras"))):
        with Evaluator(model, "onnxruntime", threads=1) as evaluator:
            scores[model] = evaluator.evaluate(held_out).mean()["iou"]
    before, after = scores.values()
    print(f"held-out IoU on negative film: pretrained {before:.4f} → fine-tuned {after:.4f}")
    assert after > before + 0.03


@pytest.mark.slow
def test_trained_model_gives_the_same_masks_on_every_runtime(fine_tuned):
    config, _, held_out = fine_tuned
    images = load_arrays(find_samples(held_out)[:4], GENERAL).images.astype(np.float32) / 255
    masks = {}
    for runtime in ("onnxruntime", "tflite", "keras"):
        with load_segmenter(str(config.stem), runtime, threads=1) as segmenter:
            masks[runtime] = segmenter.segment(images)
    for runtime in ("tflite", "keras"):
        # the ONNX graph computes hard-swish as one HardSwish op (x·clip(x/6 + 1/2)), which rounds differently
        # from Keras' x·relu6(x + 3)/6: a few outputs of a freshly trained model move by up to ~1e-4
        np.testing.assert_allclose(masks[runtime], masks["onnxruntime"], atol=2e-4)


@pytest.mark.slow
def test_trained_model_runs_through_backdrop_run(fine_tuned, tmp_path):
    config, _, held_out = fine_tuned
    output = tmp_path / "out.mp4"
    command = [
        sys.executable, "-m", "backdrop.cli", "run", "--source", str(held_out / "images"),
        "--model", str(config.stem.with_suffix(".keras")), "--runtime", "onnxruntime",
        "--background", "color:#00ff00", "--output", str(output), "--max-frames", "6", "--no-progress",
    ]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    with av.open(str(output)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 6
    truths = [read_mask(s.mask, GENERAL) for s in find_samples(held_out)[:6]]
    for frame, truth in zip(frames, truths, strict=True):
        truth = cv2.resize(truth, (frame.shape[1], frame.shape[0]), interpolation=cv2.INTER_NEAREST) > 0.5
        green = (frame[..., 1] > 180) & (frame[..., 0] < 90) & (frame[..., 2] < 90)
        assert green[~truth].mean() > 0.85  # the background was replaced
        assert green[truth].mean() < 0.1  # the person was kept


@pytest.mark.slow
def test_train_command_resumes_from_the_last_checkpoint(tmp_path, monkeypatch, capsys):
    data = write_dataset(tmp_path / "data", make_samples(8, (144, 256), seed=4))
    out = tmp_path / "models" / "mine.keras"
    command = ["train", "--data", str(data), "--out", str(out), "--variant", "landscape", "--val-fraction", "0"]
    assert run_backdrop(monkeypatch, *command, "--epochs", "1") == 0
    assert run_backdrop(monkeypatch, *command, "--epochs", "2", "--resume") == 0
    printed = capsys.readouterr().out
    assert "(1 run)" in printed  # only the second epoch ran
    assert str(out.with_suffix(".onnx")) in printed
    assert '"epoch": 2' in (tmp_path / "models" / "mine.checkpoints" / "state.json").read_text()
    assert run_backdrop(monkeypatch, *command, "--epochs", "2", "--resume") == 2
    assert "already finished 2 epochs" in capsys.readouterr().err


# --- the train command's errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--epochs", "0"], "epochs must be at least 1"),
        (["--val-fraction", "1.5"], "val-fraction must be in [0, 1)"),
        (["--resume"], "nothing to resume"),
        (["--backgrounds", "/nonexistent"], "backgrounds folder not found"),
    ],
)
def test_train_rejects_bad_settings_with_one_line(extra, message, tmp_path, monkeypatch, capsys):
    data = write_dataset(tmp_path / "data", make_samples(4, (64, 64), seed=4))
    code = run_backdrop(monkeypatch, "train", "--data", str(data), "--out", str(tmp_path / "m"), *extra)
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and "\n" not in err


def test_train_names_images_without_masks(tmp_path, monkeypatch, capsys):
    data = write_dataset(tmp_path / "data", make_samples(3, (64, 64), seed=4))
    (data / "masks" / "0002.png").unlink()
    assert run_backdrop(monkeypatch, "train", "--data", str(data), "--out", str(tmp_path / "m")) == 2
    assert "0002" in capsys.readouterr().err


# --- distillation from the user's own clips --------------------------------------------------------------


@pytest.fixture(scope="module")
def mixed_clip(tmp_path_factory):
    """A clip whose first half looks ordinary and second half is negative film, with the true masks."""
    samples = make_samples(6, (240, 320), seed=21) + make_samples(6, (240, 320), seed=22, shifted=True)
    path = write_clip(tmp_path_factory.mktemp("clips") / "room.mp4", [image for image, _ in samples])
    return path, [mask for _, mask in samples]


def test_distill_labels_every_frame_of_a_clip(mixed_clip, tmp_path, monkeypatch, capsys):
    clip, truths = mixed_clip
    out = tmp_path / "distilled"
    assert run_backdrop(monkeypatch, "distill", str(clip), "--out", str(out), "--threads", "1") == 0
    assert "room: kept 12 frames" in capsys.readouterr().out
    samples = find_samples(out)
    assert [s.name for s in samples] == [f"room/{i:06d}" for i in range(12)]
    assert all(s.clip == "room" for s in samples)
    labels = [read_mask(s.mask, (240, 320)) for s in samples]
    assert np.mean([iou(label, truth) for label, truth in zip(labels[:6], truths[:6], strict=True)]) > 0.9


def test_distill_drops_unsure_frames_and_keeps_better_labels(mixed_clip, tmp_path):
    clip, truths = mixed_clip
    everything = distill(DistillConfig(clips=(clip,), out=tmp_path / "all", threads=1))
    confident = distill(DistillConfig(clips=(clip,), out=tmp_path / "sure", min_confidence=0.9, threads=1))
    assert everything[0].kept == 12
    assert confident[0].dropped >= 1 and confident[0].kept >= 1
    assert confident[0].kept + confident[0].dropped == 12

    def label_quality(folder):
        samples = find_samples(folder)
        return np.mean([iou(read_mask(s.mask, (240, 320)), truths[int(s.name[-6:])]) for s in samples])

    assert label_quality(tmp_path / "sure") > label_quality(tmp_path / "all")


def test_distill_every_nth_frame(mixed_clip, tmp_path):
    clip, _ = mixed_clip
    (summary,) = distill(DistillConfig(clips=(clip,), out=tmp_path / "d", every=4, threads=1))
    assert summary.kept == 3
    assert [s.name for s in find_samples(tmp_path / "d")] == ["room/000000", "room/000004", "room/000008"]


def test_confidence_is_low_for_unsure_pixels_only():
    sure = np.zeros((16, 16), np.float32)
    sure[4:12, 4:12] = 1
    unsure = np.where(sure > 0, 0.6, 0.0).astype(np.float32)
    assert confidence(sure) == 1.0 and confidence(np.zeros((8, 8))) == 1.0
    assert confidence(unsure) == pytest.approx(0.2)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d / "missing.mp4", "clip not found"),
        (lambda d: (d / "text.mp4").write_text("no video here") and d / "text.mp4", "cannot decode clip"),
    ],
)
def test_distill_rejects_bad_clips_with_one_line(make, message, tmp_path, monkeypatch, capsys):
    code = run_backdrop(monkeypatch, "distill", str(make(tmp_path)), "--out", str(tmp_path / "out"))
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and "\n" not in err


def test_distill_refuses_to_mix_into_existing_frames(mixed_clip, tmp_path):
    clip, _ = mixed_clip
    distill(DistillConfig(clips=(clip,), out=tmp_path, every=6, threads=1))
    with pytest.raises(DatasetError, match="already has frames"):
        distill(DistillConfig(clips=(clip,), out=tmp_path, threads=1))
