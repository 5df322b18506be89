"""The life cycle every sink shares: open with the stream's geometry, write frames, close."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Any

import numpy as np

from backdrop.stream.pixels import BGR


class Sink(ABC):
    """A consumer of composited frames: BGR uint8 (H×W×3), BGRA (H×W×4) for transparent output, or I420
    ((H·3/2)×W, see stream.pixels) when the sink lists it in ``layouts`` and the pipeline chose it."""

    layouts: tuple[str, ...] = (BGR,)  # the layouts ``write`` accepts

    @abstractmethod
    def open(self, width: int, height: int, fps: float) -> None:
        """Prepare the output; raise SinkError naming the problem (unwritable path, no display …)."""

    @abstractmethod
    def write(self, image: np.ndarray) -> None:
        """Deliver one frame."""

    @abstractmethod
    def close(self) -> None:
        """Flush and finish (a file sink leaves a playable file). Safe to call twice."""

    def update_stats(self, stats: dict[str, Any]) -> None:
        """Receive the pipeline's latest stats snapshot; sinks that show stats override this."""

    def describe(self) -> str:
        """A human name for logs and errors, with any credentials masked."""
        return type(self).__name__

    def __enter__(self) -> Sink:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
