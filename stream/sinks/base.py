"""The life cycle every sink shares: open with the stream's geometry, write frames, close."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Any

from backdrop.pixels import BGR, BGRA
from backdrop.stream.core.frame import Frame


class Sink(ABC):
    """A consumer of composited frames. ``layouts`` lists the pixel layouts ``write`` takes; the pipeline only
    chooses a layout that every sink lists (BGR is always among them; BGRA when the output keeps alpha)."""

    layouts: tuple[str, ...] = (BGR, BGRA)

    @abstractmethod
    def open(self, width: int, height: int, fps: float) -> None:
        """Prepare the output; raise SinkError naming the problem (unwritable path, no display …)."""

    @abstractmethod
    def write(self, frame: Frame) -> None:
        """Deliver one frame (its ``layout`` is one of ``layouts``)."""

    @abstractmethod
    def close(self) -> None:
        """Flush and finish (a file sink leaves a playable file). Safe to call twice."""

    def update_stats(self, stats: dict[str, Any]) -> None:
        """Receive the pipeline's latest stats snapshot; sinks that show stats override this."""

    def counters(self) -> dict[str, int]:
        """Events worth counting in the run's stats, e.g. ``dropped`` frames and ``reconnects``."""
        return {}

    def describe(self) -> str:
        """A human name for logs and errors, with any credentials masked."""
        return type(self).__name__

    def __enter__(self) -> Sink:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
