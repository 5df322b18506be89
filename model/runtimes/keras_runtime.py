"""The reference runtime: the Keras model itself on TensorFlow (slowest, but the source of truth)."""

from __future__ import annotations

import numpy as np

from backdrop.model.contract import ModelFiles
from backdrop.model.extras import require_modules
from backdrop.model.keras_io import load_keras_model
from backdrop.model.segmenter import Segmenter


class KerasSegmenter(Segmenter):
    name = "keras"

    @staticmethod
    def require() -> None:
        require_modules("tensorflow", "keras", purpose="the keras runtime", hint="pip install 'backdrop-video[keras]'")

    def __init__(self, files: ModelFiles, *, threads: int | None = None) -> None:
        super().__init__(files, threads=threads)
        import tensorflow as tf

        if threads:
            try:
                tf.config.threading.set_intra_op_parallelism_threads(threads)
                tf.config.threading.set_inter_op_parallelism_threads(1)
            except RuntimeError:
                pass  # TensorFlow already started: its thread pools are fixed for this process
        self.model = load_keras_model(files.require(".keras"))
        self._predict = tf.function(lambda x: self.model(x, training=False), reduce_retracing=True)

    def segment(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self._predict(self.check_batch(batch)))[..., 0]
