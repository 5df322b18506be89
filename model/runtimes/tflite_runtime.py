"""LiteRT (TFLite) segmenter with the XNNPACK delegate, resized per batch size on demand."""

from __future__ import annotations

import numpy as np

from backdrop.errors import ModelError
from backdrop.model.contract import ModelFiles
from backdrop.model.extras import require_modules
from backdrop.model.segmenter import Segmenter


class TFLiteSegmenter(Segmenter):
    name = "tflite"

    @staticmethod
    def require() -> None:
        require_modules(
            "ai_edge_litert", purpose="the tflite runtime (LiteRT)", hint="pip install 'backdrop-video[keras]'"
        )

    def __init__(self, files: ModelFiles, *, threads: int | None = None) -> None:
        super().__init__(files, threads=threads)
        from ai_edge_litert.interpreter import Interpreter

        path = files.require(".tflite")
        try:
            self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
        except ValueError as e:
            raise ModelError(f"LiteRT cannot load {path}: {e}") from e
        self._input = self.interpreter.get_input_details()[0]["index"]
        self._output = self.interpreter.get_output_details()[0]["index"]
        self._batch = 0

    def segment(self, batch: np.ndarray) -> np.ndarray:
        batch = self.check_batch(batch)
        if batch.shape[0] != self._batch:
            self.interpreter.resize_tensor_input(self._input, batch.shape, strict=True)
            self.interpreter.allocate_tensors()
            self._batch = batch.shape[0]
        self.interpreter.set_tensor(self._input, batch)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._output)[..., 0]
