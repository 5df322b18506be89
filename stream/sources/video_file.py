"""A video file decoded with PyAV (threaded decode), read at the pipeline's pace, in the decoder's own I420 when it can.

A file with a display rotation (a phone video stored sideways) is turned upright here, before the model sees
it, so every frame and output is upright; width and height are those after the turn.

A file whose frames are too small for the steps (stream.core.steps.MIN_SIDE) is refused when it opens.

A damaged file is decoded as far as it goes: undecodable packets are skipped, a truncated file ends early,
and ``damage`` then says what happened so the run can report it after writing every good frame.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import av

from backdrop.errors import SourceError
from backdrop.pixels import BGR, I420
from backdrop.stream.core.frame import Frame
from backdrop.stream.core.steps import size_problem
from backdrop.stream.sources.base import Source
from backdrop.stream.sources.orientation import quarter_turns, upright

AV_FORMATS = {BGR: "bgr24", I420: "yuv420p"}


class VideoFileSource(Source):
    """Frames of the first video stream of a file: I420 straight from the decoder when it is 8-bit 4:2:0, else BGR."""

    live = False

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.container: av.container.InputContainer | None = None
        self.decoded = 0
        self.bad_packets = 0
        self.damage: str | None = None
        self._fps = 30.0
        self._expected: int | None = None
        self._native_i420 = False

    def open(self) -> None:
        if not self.path.is_file():
            raise SourceError(f"input not found: {self.path}" if not self.path.exists() else f"not a file: {self.path}")
        if not os.access(self.path, os.R_OK):
            raise SourceError(f"input is not readable (permission denied): {self.path}")
        try:
            self.container = av.open(str(self.path))
        except av.error.FFmpegError as e:
            raise SourceError(f"cannot open {self.path}: {e.strerror or e}") from e
        if not self.container.streams.video:
            self.close()
            raise SourceError(f"{self.path} has no video stream")
        stream = self.container.streams.video[0]
        stream.thread_type = "AUTO"
        context = stream.codec_context
        problem = size_problem(context.width, context.height)  # a quarter turn swaps the sides, not their minimum
        if problem:
            self.close()
            raise SourceError(f"{self.path} is {problem}")
        # I420 straight from the decoder only when no conversion hides in it: 8-bit 4:2:0, limited range, even size
        self._native_i420 = context.pix_fmt == "yuv420p" and context.width % 2 == 0 and context.height % 2 == 0
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        self._fps = float(rate) if rate else 30.0
        if stream.frames:
            self._expected = stream.frames
        elif self.container.duration:
            self._expected = round(self.container.duration / av.time_base * self._fps)
        self._frames = self._decode(self.container, stream)

    def _decode(self, container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> Iterator[Frame]:
        """Yield every decodable frame; count bad packets; stop (recording why) when demuxing fails."""
        packets = container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.error.FFmpegError as e:
                self.damage = f"{self.path}: stopped reading after {self.decoded} frames: {e.strerror or e}"
                break
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                self.bad_packets += 1
                continue
            for frame in frames:
                image = frame.to_ndarray(format=AV_FORMATS[self.layout])
                image = upright(image, self.layout, quarter_turns(frame.rotation))
                yield Frame(image, self.layout, self.decoded, pts_s=frame.time)
                self.decoded += 1
        self._judge()

    def _judge(self) -> None:
        """Name the damage once the end is reached: bad packets, or far fewer frames than the header promised."""
        if self.damage:
            return
        if self.bad_packets:
            self.damage = (
                f"{self.path} is corrupt: skipped {self.bad_packets} undecodable packets, decoded {self.decoded} frames"
            )
        elif self._expected and self.decoded < self._expected - max(2, self._expected // 50):
            self.damage = f"{self.path} is truncated: decoded {self.decoded} of {self._expected} frames"

    def read(self) -> Frame | None:
        if self.container is None:
            raise SourceError(f"{self.path} is not open")
        return next(self._frames, None)

    def close(self) -> None:
        if self.container is not None:
            self.container.close()
            self.container = None

    @property
    def layout(self) -> str:
        return I420 if self._native_i420 else BGR

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def frame_count(self) -> int | None:
        return self._expected

    def describe(self) -> str:
        return str(self.path)
