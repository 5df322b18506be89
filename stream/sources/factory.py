"""Picks the Source class for a source string: URL, testsrc, webcam, image folder or video file."""

from __future__ import annotations

import re
from pathlib import Path

from backdrop.stream.config.run import SourceConfig
from backdrop.stream.sources.base import Source

_WEBCAM = re.compile(r"webcam(?::(?P<named>\d+))?|(?P<bare>\d+)|/dev/video\d+")


def make_source(config: SourceConfig) -> Source:
    """The Source for ``config.uri`` (not yet opened); heavy modules are imported only for the kind used."""
    uri = config.uri
    if uri.startswith(("rtsp://", "rtsps://", "http://", "https://")):
        from backdrop.stream.sources.network import NetworkSource

        return NetworkSource(
            uri,
            transport=config.transport,
            open_timeout_s=config.open_timeout_s,
            read_timeout_s=config.read_timeout_s,
            max_backoff_s=config.max_backoff_s,
            open_retries=config.open_retries,
            give_up_after_s=config.give_up_after_s,
        )
    if uri == "testsrc" or uri.startswith("testsrc:"):
        from backdrop.stream.sources.testsrc import TestSource

        return TestSource.from_spec(uri, fps=config.fps)
    webcam = _WEBCAM.fullmatch(uri)
    if webcam:
        from backdrop.stream.sources.webcam import WebcamMode, WebcamSource

        index = webcam.group("named") or webcam.group("bare")
        device: int | str = int(index) if index else (uri if uri.startswith("/dev/") else 0)
        return WebcamSource(
            device,
            mode=WebcamMode(config.width, config.height, config.fps, config.pixel_format),
            open_timeout_s=config.open_timeout_s,
            read_timeout_s=config.read_timeout_s,
            max_backoff_s=config.max_backoff_s,
            give_up_after_s=config.give_up_after_s,
        )
    if Path(uri).is_dir():
        from backdrop.stream.sources.image_folder import ImageFolderSource

        return ImageFolderSource(uri, fps=config.fps)
    from backdrop.stream.sources.video_file import VideoFileSource

    return VideoFileSource(uri)
