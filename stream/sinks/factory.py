"""Picks the Sink class for an output string: file (or segments), PNG folder, window, null, RTSP, preview or vcam."""

from __future__ import annotations

from pathlib import Path

from backdrop.errors import SinkError
from backdrop.stream.config.run import EncoderConfig, HttpConfig
from backdrop.stream.sinks.base import Sink
from backdrop.stream.sinks.segment_names import is_segmented, literal_name
from backdrop.stream.sinks.video_file import is_video_file

ALPHA_OUTPUTS = "a PNG folder, .mov, .mkv or null"
DEFAULT_HTTP = HttpConfig()  # no token, no extra Host names: a preview on loopback only


def make_sink(
    spec: str,
    *,
    alpha: bool = False,
    encoder: EncoderConfig | None = None,
    audio_from: Path | None = None,
    http: HttpConfig = DEFAULT_HTTP,
    overwrite: bool = False,
) -> Sink:
    """The Sink for ``spec`` (not yet opened); ``alpha`` means frames are BGRA and must stay so.

    ``audio_from`` is the source file whose audio a video file output keeps (see stream.audio); others ignore it.
    ``http`` (the run's ``http`` section: token, allowed Host names) guards a browser preview. ``overwrite`` lets a
    PNG folder replace an earlier run's frames (a file output always replaces its file when it closes).
    """
    if spec == "null":
        from backdrop.stream.sinks.null import NullSink

        return NullSink()
    path = Path(literal_name(spec))  # a plain output's name: each %% as one %
    is_file = is_video_file(spec)
    is_folder = "://" not in spec and (spec.endswith("/") or path.is_dir() or (not path.suffix and "/" in spec))
    if not (is_file or is_folder) and alpha:
        raise SinkError(f"output {spec!r} cannot carry transparency; with background transparent use {ALPHA_OUTPUTS}")
    if spec == "window":
        from backdrop.stream.sinks.window import WindowSink

        return WindowSink()
    if spec == "vcam" or spec.startswith("vcam:"):
        from backdrop.stream.sinks.vcam import VirtualCameraSink

        return VirtualCameraSink(spec.partition(":")[2] or None)
    if spec.startswith(("rtsp://", "rtsps://")):
        from backdrop.stream.sinks.rtsp import RtspSink

        return RtspSink(spec)
    if spec.startswith("http://"):
        from backdrop.stream.sinks.preview import PreviewSink

        return PreviewSink(spec, http=http)
    if is_segmented(spec):
        from backdrop.stream.sinks.segmented_file import SegmentedFileSink

        return SegmentedFileSink(spec, alpha=alpha, encoder=encoder, audio_from=audio_from)
    if is_file:
        from backdrop.stream.sinks.video_file import VideoFileSink

        return VideoFileSink(path, alpha=alpha, encoder=encoder, audio_from=audio_from)
    if is_folder:
        from backdrop.stream.sinks.png_folder import PngFolderSink

        return PngFolderSink(path, replace=overwrite)
    raise SinkError(
        f"unknown output {spec!r}: use a .mp4/.mkv/.mov file, a folder/ for PNG frames, window, null, vcam, "
        "rtsp:// or http://"
    )
