"""A bounded queue between two pipeline stages, with the two policies a stream needs.

``drop_oldest`` (live sources): a full queue discards its oldest item so the newest frame always gets
in and latency stays low. Otherwise (files): ``put`` blocks until there is room (backpressure, no loss).
``close`` wakes every waiter at once, which is how the pipeline stops without polling.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any


class QueueClosed(Exception):
    """Raised by ``put`` once the queue is closed: the pipeline is stopping."""


class EndOfStream:
    """The marker a stage passes downstream after its last item."""

    def __repr__(self) -> str:
        return "END_OF_STREAM"


END_OF_STREAM = EndOfStream()


class StageQueue:
    """A thread-safe FIFO of at most ``capacity`` items."""

    def __init__(self, name: str, capacity: int, *, drop_oldest: bool) -> None:
        self.name = name
        self.capacity = capacity
        self.drop_oldest = drop_oldest
        self.items: deque[Any] = deque()
        self.dropped = 0
        self.closed = False
        self.condition = threading.Condition()

    def put(self, item: Any) -> None:
        """Append ``item``; block while full (or drop the oldest frame), raise QueueClosed once closed."""
        with self.condition:
            while not self.closed and len(self.items) >= self.capacity:
                if self.drop_oldest and not isinstance(self.items[0], EndOfStream):
                    self.items.popleft()
                    self.dropped += 1
                else:
                    self.condition.wait()
            if self.closed:
                raise QueueClosed(self.name)
            self.items.append(item)
            self.condition.notify_all()

    def get(self) -> Any:
        """The oldest item, blocking while empty; END_OF_STREAM once closed."""
        with self.condition:
            while not self.items and not self.closed:
                self.condition.wait()
            if self.closed:
                return END_OF_STREAM
            item = self.items.popleft()
            self.condition.notify_all()
            return item

    def get_nowait(self) -> Any | None:
        """The oldest item if one is waiting, else None (used to gather a batch)."""
        with self.condition:
            if not self.items or self.closed or isinstance(self.items[0], EndOfStream):
                return None
            item = self.items.popleft()
            self.condition.notify_all()
            return item

    def close(self) -> None:
        """Stop the queue: pending items are discarded and every blocked put/get returns at once."""
        with self.condition:
            self.closed = True
            self.items.clear()
            self.condition.notify_all()

    def __len__(self) -> int:
        return len(self.items)
