"""Loading .keras files with a clear error instead of Keras' long tracebacks."""

from __future__ import annotations

from pathlib import Path

from backdrop.errors import ModelError, RuntimeUnavailable


def load_keras_model(path: Path):
    """The Keras model stored at ``path`` (uncompiled: inference and export need no optimizer)."""
    try:
        import keras
    except ImportError as e:
        raise RuntimeUnavailable("loading .keras models needs TensorFlow: pip install 'backdrop-video[keras]'") from e
    try:
        return keras.models.load_model(path, compile=False)
    except (OSError, ValueError) as e:
        raise ModelError(f"Keras cannot load {path}: {e}") from e
