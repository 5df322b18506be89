"""The model's contract, stored beside the model files so every runtime reads it from one place.

A model called ``NAME`` lives as ``NAME.keras`` / ``NAME.onnx`` / ``NAME.tflite`` plus ``NAME.json``
(this contract) in one folder. Runtimes never hard-code input size, layout or tensor names.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from backdrop.errors import ModelError
from backdrop.pixels import BGR, RESAMPLINGS, small_rgb

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
BUILTIN_MODELS = {"general": "selfie_general", "landscape": "selfie_landscape"}
CHANNEL_ORDERS = ("RGB", "BGR")
MODEL_SUFFIXES = (".keras", ".json", ".onnx", ".tflite")  # the files of a trained model (model/export.py)


@dataclass(frozen=True)
class ModelContract:
    """What a segmenter expects and returns: NHWC RGB float32 in [0, 1] in, N×H×W×1 probability out."""

    name: str
    variant: str
    input_height: int
    input_width: int
    input_name: str = "image"
    output_name: str = "mask"
    channel_order: str = "RGB"
    value_range: tuple[float, float] = (0.0, 1.0)
    origin: str = ""
    # how a frame is shrunk to the input: "mediapipe" samples as MediaPipe's ImageToTensorCalculator does,
    # which the selfie models were trained with (and models fine-tuned here, through this contract); "resize"
    # is cv2.resize, for models trained with it
    resampling: str = "mediapipe"

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) of the model input."""
        return self.input_height, self.input_width

    def to_model_input(self, image: np.ndarray, layout: str = BGR) -> np.ndarray:
        """A picture of any size in ``layout`` → this model's input: H×W×3 float32 in its channel order and range.

        The one preprocessing of Backdrop: the pipeline, evaluation, distillation, benchmarks and tests all
        call it, so a model trained or scored here sees exactly what it sees live.
        """
        rgb = small_rgb(image, layout, (self.input_width, self.input_height), self.resampling)
        if self.channel_order == "BGR":
            rgb = rgb[..., ::-1]
        low, high = self.value_range
        scale = np.float32((high - low) / 255.0)
        tensor = rgb.astype(np.float32)
        tensor *= scale
        return tensor + np.float32(low) if low else tensor

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    def __post_init__(self) -> None:
        if self.channel_order not in CHANNEL_ORDERS:
            raise ModelError(f"model {self.name}: channel_order must be one of {', '.join(CHANNEL_ORDERS)}")
        if len(self.value_range) != 2 or not self.value_range[0] < self.value_range[1]:
            raise ModelError(f"model {self.name}: value_range must be [low, high] with low < high")
        if self.resampling not in RESAMPLINGS:
            raise ModelError(f"model {self.name}: resampling must be one of {', '.join(RESAMPLINGS)}")

    @classmethod
    def load(cls, path: Path) -> ModelContract:
        try:
            data = json.loads(path.read_text())
            data["value_range"] = tuple(data.get("value_range", (0.0, 1.0)))
            return cls(**data)
        except FileNotFoundError as e:
            raise ModelError(f"model contract not found: {path}") from e
        except (ValueError, TypeError) as e:
            raise ModelError(f"model contract {path} is invalid: {e}") from e


@dataclass(frozen=True)
class ModelFiles:
    """Where one model's files live: ``stem`` plus a suffix per format."""

    stem: Path

    def path(self, suffix: str) -> Path:
        return self.stem.with_suffix(suffix)

    @property
    def contract(self) -> ModelContract:
        return ModelContract.load(self.path(".json"))

    def require(self, suffix: str) -> Path:
        """The file of one format, or a ModelError that names it."""
        path = self.path(suffix)
        if not path.is_file():
            raise ModelError(f"model file not found: {path}")
        return path


def model_stem(path: Path) -> Path:
    """The stem a path names a model by: ``x.keras``, ``x.onnx`` … and ``x`` all name ``x``."""
    return path.with_suffix("") if path.suffix in MODEL_SUFFIXES else path


def resolve_model(spec: str) -> ModelFiles:
    """Map ``general``, ``landscape`` or a path to any of a model's files onto its ModelFiles."""
    if spec in BUILTIN_MODELS:
        return ModelFiles(WEIGHTS_DIR / BUILTIN_MODELS[spec])
    files = ModelFiles(model_stem(Path(spec)))
    if not files.path(".json").is_file():
        known = ", ".join(BUILTIN_MODELS)
        raise ModelError(f"unknown model {spec!r}: use {known} or a path to a model with a .json contract beside it")
    return files
