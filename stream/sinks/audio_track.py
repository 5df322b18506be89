"""The source's audio carried into a video file: packets copied when the container takes the codec, else AAC.

A second demuxer reads the source file's first audio stream beside the video decoder, so the pipeline's
frames need not carry sound. The video sink asks for the audio up to the end of each frame it writes, in
the source's clock shifted so that its first frame is at 0: audio and video interleave by timestamp, stay
in sync, and the audio ends with the last frame written (a --max-frames or stopped run cuts both).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import av

from backdrop.errors import SinkError

if TYPE_CHECKING:
    from av.audio.stream import AudioStream


class AudioTrack:
    """The first audio stream of ``source`` added to ``output``: stream-copied when its format accepts the
    codec, else encoded to AAC. ``mux_until`` then writes it in step with the video."""

    def __init__(self, source: Path, output: av.container.OutputContainer) -> None:
        self.output = output
        try:
            self.input = av.open(str(source))
        except (av.error.FFmpegError, OSError) as e:
            raise SinkError(f"cannot read the audio of {source}: {getattr(e, 'strerror', None) or e}") from e
        if not self.input.streams.audio:
            self.input.close()
            raise SinkError(f"{source} has no audio stream")
        self.input_stream = self.input.streams.audio[0]
        self.copy = self.input_stream.codec_context.name in output.supported_codecs
        if self.copy:
            self.stream = output.add_stream_from_template(self.input_stream)
        else:
            context = self.input_stream.codec_context
            self.stream = output.add_stream("aac", rate=context.sample_rate, layout=context.layout)
        self.packets: Iterator[av.Packet[AudioStream]] = self.input.demux(self.input_stream)
        self.pending: tuple[av.Packet[AudioStream], int] | None = None  # (packet, its pts)

    def mux_until(self, until_s: float, origin_s: float) -> None:
        """Write every packet that starts before ``until_s`` (source clock), shifted back by ``origin_s``."""
        while (pending := self._next()) is not None:
            packet, pts = pending
            if pts * packet.time_base >= until_s:
                return
            self.pending = None
            shift = round(origin_s / packet.time_base)
            if self.copy:
                packet.pts = pts - shift
                packet.dts = None if packet.dts is None else packet.dts - shift
                packet.stream = self.stream
                self._mux([packet])
            else:
                for frame in self._decode(packet):
                    if frame.pts is None:
                        raise SinkError(f"the audio of {self.input.name} decoded to a frame without a timestamp")
                    frame.pts -= shift
                    self._mux(self.stream.encode(frame))

    @staticmethod
    def _decode(packet: av.Packet[AudioStream]) -> list[av.AudioFrame]:
        """The packet's audio, or none where it is damaged: a glitch in the sound is no reason to stop the video."""
        try:
            return packet.decode()
        except av.error.FFmpegError:
            return []

    def _mux(self, packets: list[av.Packet]) -> None:
        """Mux the packets that end after 0: audio before the first frame, and an encoder's priming packet, would
        need negative times, which a fragmented MP4 can only take by shifting every other packet."""
        kept = []
        for packet in packets:
            if packet.pts is None:
                raise SinkError("the audio encoder gave a packet without a timestamp")
            if packet.pts + max(packet.duration or 0, 1) > 0:
                kept.append(packet)
        self.output.mux(kept)

    def _next(self) -> tuple[av.Packet[AudioStream], int] | None:
        """(packet, pts): the pending one, else the next with a pts; None at the end or where the audio is damaged."""
        while self.pending is None:
            try:
                packet = next(self.packets)
            except (StopIteration, av.error.FFmpegError):
                return None
            if packet.pts is not None:
                self.pending = (packet, packet.pts)
        return self.pending

    def flush(self) -> None:
        """Write what the AAC encoder still holds (nothing to do when copying)."""
        if not self.copy:
            self._mux(self.stream.encode(None))

    def close(self) -> None:
        """Release the source file (the output container is the sink's)."""
        self.input.close()
