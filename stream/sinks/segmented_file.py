"""A recording cut into segments of ``encoder.segment_s`` seconds, each a video file of its own.

Each segment is a VideoFileSink, so it is crash-safe the same way (a hidden ``.NAME.PID.partial``, fragmented,
moved into place when the segment ends) and keeps the source file's audio for its stretch. A new segment is
a new encoder, so it starts with a keyframe and plays on its own.

Cuts fall on the frames' own time (``pts_s``, else frame count / fps), every ``segment_s`` from the first
frame, so a file source is cut the same way however fast it runs. A segment is named by its start: the
wall-clock time the recording opened plus its start's offset into the recording (for a live source, about
when it was captured). A name already taken (a restart in the same second) gets a ``_1``, ``_2`` … suffix:
nothing is ever overwritten. A restarted run starts a new segment. The next segment opens before the last
one is finished, so a kill at any moment leaves the latest frames in an open partial.

One recorder per pattern: while open, the sink holds the pattern's write lock (stream.sinks.write_lock; the lock
file lies in the pattern's fixed folder, its name the rest of the pattern with ``/`` as ``%2F``), so a second
recording into the same pattern is refused when it opens; each segment also holds its own file's lock.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from backdrop.errors import SinkError
from backdrop.stream.config.run import EncoderConfig
from backdrop.stream.core.frame import Frame
from backdrop.stream.sinks.base import Sink
from backdrop.stream.sinks.segment_names import check_pattern, fixed_folder, segment_path, unused
from backdrop.stream.sinks.video_file import VideoFileSink
from backdrop.stream.sinks.write_lock import WriteLock

CUT_EPSILON_S = 1e-6  # a frame this close before a cut belongs after it (float timestamps of 2.0 s may read 1.9999…)


class SegmentedFileSink(Sink):
    """Writes frames into consecutive video files named by ``pattern`` (strftime fields, see segment_names)."""

    def __init__(
        self,
        pattern: str,
        *,
        alpha: bool = False,
        encoder: EncoderConfig | None = None,
        audio_from: Path | None = None,
    ) -> None:
        check_pattern(pattern)
        self.pattern = pattern
        self.encoder = encoder or EncoderConfig()
        self.audio_from = audio_from
        self.alpha = alpha
        self.layouts = VideoFileSink(pattern, alpha=alpha, encoder=self.encoder).layouts  # checks suffix and alpha
        self.segment_s = self.encoder.segment_s
        self.current: VideoFileSink | None = None
        self.written: list[Path] = []  # finished segments, in order
        self.frames = 0
        self.opened_at = 0.0  # wall clock when the recording opened: names the first segment
        self.origin_s: float | None = None  # the first frame's time
        self.cut_s = 0.0  # the current segment ends at this frame time
        folder = fixed_folder(pattern)
        self.lock = WriteLock(folder / os.path.relpath(pattern, folder).replace("/", "%2F"), label=pattern)

    def open(self, width: int, height: int, fps: float) -> None:
        folder = fixed_folder(self.pattern)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SinkError(f"cannot write {self.pattern}: cannot create folder {folder}: {e.strerror or e}") from e
        self.geometry = (width, height, fps)
        self.opened_at = time.time()
        self.lock.acquire()
        try:
            self._start(0.0)  # the first segment now: a problem with the name shows before any frame
        except BaseException:
            self.lock.release()
            raise

    def _start(self, offset_s: float) -> None:
        """Open the segment starting ``offset_s`` into the recording."""
        path = segment_path(self.pattern, self.opened_at + offset_s)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SinkError(f"cannot write {path}: cannot create folder {path.parent}: {e.strerror or e}") from e
        sink = VideoFileSink(unused(path), alpha=self.alpha, encoder=self.encoder, audio_from=self.audio_from)
        sink.open(*self.geometry)
        self.current = sink

    def write(self, frame: Frame) -> None:
        if self.current is None:
            raise SinkError(f"{self.pattern} is not open")
        time_s = frame.time_s
        if self.origin_s is None:
            self.origin_s, self.cut_s = time_s, time_s + self.segment_s
        elif time_s >= self.cut_s - CUT_EPSILON_S:
            index = int((time_s - self.origin_s + CUT_EPSILON_S) // self.segment_s)  # skips segments a gap left empty
            finished = self.current
            self._start(index * self.segment_s)  # before the last one closes: whenever a kill comes, a partial is open
            self._finish(finished)
            self.cut_s = self.origin_s + (index + 1) * self.segment_s
        self.current.write(frame)
        self.frames += 1

    def _finish(self, sink: VideoFileSink | None) -> None:
        if sink is not None:
            sink.close()
            if sink.frames:
                self.written.append(sink.path)

    def close(self) -> None:
        """Finish the open segment (one opened but never written to leaves nothing)."""
        sink, self.current = self.current, None
        try:
            self._finish(sink)
        finally:
            self.lock.release()

    def describe(self) -> str:
        return self.pattern
