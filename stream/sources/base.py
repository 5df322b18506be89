"""The life cycle every source shares: open, read frames, close."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import TypeVar

from backdrop.pixels import BGR
from backdrop.stream.core.frame import Frame

SourceT = TypeVar("SourceT", bound="Source")


class Source(ABC):
    """A producer of Frames in one pixel layout, ``layout`` (known once open).

    ``live`` sources (webcam, RTSP, HTTP) run at their own pace, so the pipeline drops their oldest frames
    when it falls behind; finite sources (files, folders) are read at the pipeline's pace and never dropped.

    What else a source may tell the run, each with its default here: ``connected`` (False while a live source
    is reconnecting: serve shows the stream as reconnecting) and ``damage`` (what was wrong with a finite
    input once it has been read: the run writes every good frame, then reports it and exits 2).
    """

    live: bool = False
    connected: bool = True
    damage: str | None = None

    @abstractmethod
    def open(self) -> None:
        """Connect and read enough to know the frame size; raise SourceError naming the problem."""

    @abstractmethod
    def read(self) -> Frame | None:
        """The next frame, or None at end of stream."""

    @abstractmethod
    def close(self) -> None:
        """Release the device, file or connection. Safe to call twice."""

    def interrupt(self) -> None:
        """Wake a ``read()`` blocked on a stalled device or connection so that a stop takes effect.

        Called from another thread when the run is stopping. Sources whose reads always return promptly
        need nothing here; those that can block indefinitely (a reconnecting network stream) override it.
        """

    @property
    def layout(self) -> str:
        """The pixel layout ``read`` returns: a decoder's native one (I420 for most video files) saves conversions."""
        return BGR

    @property
    @abstractmethod
    def fps(self) -> float:
        """Nominal frame rate (the sinks encode at it)."""

    @property
    def frame_count(self) -> int | None:
        """Frames in a finite source when known (for progress and ETA), else None."""
        return None

    def counters(self) -> dict[str, int]:
        """Events worth counting in the run's stats, e.g. ``dropped`` frames and ``reconnects``."""
        return {}

    def describe(self) -> str:
        """A human name for logs and errors, with any credentials masked."""
        return type(self).__name__

    def __enter__(self: SourceT) -> SourceT:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
