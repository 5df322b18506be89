"""The life cycle every sink shares: open with the stream's geometry, write frames, close."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import TYPE_CHECKING, Any

from backdrop.pixels import BGR, BGRA
from backdrop.stream.core.frame import Frame

if TYPE_CHECKING:
    from backdrop.stream.core.live_controls import LiveControls


class Sink(ABC):
    """A consumer of composited frames. ``layouts`` lists the pixel layouts ``write`` takes; the pipeline only
    chooses a layout that every sink lists (BGR is always among them; BGRA when the output keeps alpha).

    A sink that shows frames to a person may also: take the live controls (``use_controls``), name the source
    (``use_source_description``), need the thread that waits for the run (``needs_main_thread``, then the
    pipeline calls ``pump`` there instead of sleeping), and be closed by its viewer (``closed_by_viewer``: the
    run then ended normally). The defaults say no.
    """

    layouts: tuple[str, ...] = (BGR, BGRA)
    needs_main_thread: bool = False
    closed_by_viewer: bool = False

    @abstractmethod
    def open(self, width: int, height: int, fps: float) -> None:
        """Prepare the output; raise SinkError naming the problem (unwritable path, no display …)."""

    @abstractmethod
    def write(self, frame: Frame) -> None:
        """Deliver one frame (its ``layout`` is one of ``layouts``)."""

    @abstractmethod
    def close(self) -> None:
        """Flush and finish (a file sink leaves a playable file). Safe to call twice."""

    def use_controls(self, controls: LiveControls) -> None:
        """Take the run's live controls (window hotkeys, preview buttons drive them); most sinks have none."""

    def use_source_description(self, description: str) -> None:
        """Take the source's ``describe()`` (credentials masked) before ``open``: a window puts it in its title."""

    def pump(self, timeout: float) -> bool:
        """Do the sink's work on the waiting thread for up to ``timeout`` s; False once its viewer ended the run.

        Called only when ``needs_main_thread`` is set; such a sink must override it.
        """
        raise NotImplementedError(f"{type(self).__name__} sets needs_main_thread but has no pump()")

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
