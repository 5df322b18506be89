"""Process-wide settings for many streams in one process, applied by whoever owns the process.

The streams already keep the cores busy, so OpenCV's own worker pool only adds hand-offs between threads and
cold caches. Every stream's threads take the interpreter lock dozens of times per frame, between short OpenCV
calls; a shorter switch interval makes one stuck behind another thread's Python give way sooner (README
"Serving many streams" has the numbers). Both settings are global to the process, so a library never sets
them behind its caller's back: ``backdrop serve`` applies them for its run and restores them, and a Ray actor,
whose process runs nothing but its streams, applies them for its life.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import cv2


@dataclass(frozen=True)
class ProcessTuning:
    """OpenCV's worker threads and the interpreter's thread switch interval."""

    opencv_threads: int
    switch_interval_s: float

    @classmethod
    def current(cls) -> ProcessTuning:
        return cls(opencv_threads=cv2.getNumThreads(), switch_interval_s=sys.getswitchinterval())

    def apply(self) -> ProcessTuning:
        """Make these the process's settings; returns the ones they replace (apply those to restore)."""
        previous = ProcessTuning.current()
        cv2.setNumThreads(self.opencv_threads)
        sys.setswitchinterval(self.switch_interval_s)
        return previous


FOR_STREAMS = ProcessTuning(opencv_threads=1, switch_interval_s=0.001)  # Python's default interval is 0.005 s
