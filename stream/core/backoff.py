"""Capped exponential backoff: retry a lost server quickly at first, then no faster than every ``max_s``."""

from __future__ import annotations

MAX_DOUBLINGS = 32  # days of retries must not overflow 2**failures as a float; far past any sane cap


class Backoff:
    """Delays of ``initial_s``, twice that, four times … up to ``max_s``; ``reset()`` after a success."""

    def __init__(self, *, initial_s: float = 0.5, max_s: float = 10.0) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self.failures = 0

    def next_delay(self) -> float:
        """Count one more failure and return how long to wait before the next attempt."""
        delay = min(self.max_s, self.initial_s * 2.0 ** min(self.failures, MAX_DOUBLINGS))
        self.failures += 1
        return delay

    def reset(self) -> None:
        self.failures = 0
