"""A one-item mailbox that keeps only the newest item: how live stages hand frames on without ever queueing.

A producer must never wait for a slow consumer (a camera does not pause), and a consumer wants the newest
frame, not a backlog. ``put`` therefore replaces the item and counts the ones nobody took; readers remember
the sequence number of what they last took and block until something newer arrives or the slot closes.
Several readers may share a slot (preview viewers): taking does not remove the item.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestSlot(Generic[T]):
    """The newest item put, numbered 1, 2, 3 … (``seq`` is 0 while empty); thread-safe."""

    def __init__(self) -> None:
        self.overwritten = 0  # items replaced before any reader took them
        self.closed = False
        self._seq = 0
        self._taken_seq = 0
        self._entry: tuple[int, T] | None = None  # (seq, item) of the newest item
        self._changed = threading.Condition()

    @property
    def seq(self) -> int:
        """The number of the newest item (how many were put)."""
        return self._seq

    def put(self, item: T) -> None:
        """Replace the item without ever blocking; ignored once closed."""
        with self._changed:
            if self.closed:
                return
            if self._seq > self._taken_seq:
                self.overwritten += 1
            self._seq += 1
            self._entry = (self._seq, item)
            self._changed.notify_all()

    def take(self, after_seq: int, timeout: float | None = None) -> tuple[int, T] | None:
        """(number, item) once an item newer than ``after_seq`` exists; None once closed or after ``timeout`` s."""
        with self._changed:
            if not self._changed.wait_for(lambda: self.closed or self._seq > after_seq, timeout) or self.closed:
                return None
            if self._entry is None:  # empty (only a negative after_seq gets here)
                return None
            self._taken_seq = self._seq
            return self._entry

    def close(self) -> None:
        """Wake every waiting reader with None; later puts are ignored."""
        with self._changed:
            self.closed = True
            self._changed.notify_all()
