"""Which outputs keep the source's audio: video files do (see stream.sinks.audio_track), the others drop it.

The pipeline's frames carry no sound; a video-file output reads the audio from the source file itself, so
the run only has to tell it which file that is, and to say once when other outputs cannot keep it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import av

from backdrop.stream.config.run import RunConfig
from backdrop.stream.sinks.video_file import is_video_file

log = logging.getLogger(__name__)


def has_audio(path: str | Path) -> bool:
    """True when ``path`` is a media file with an audio stream (unreadable: False, the source will say why)."""
    try:
        with av.open(str(path)) as container:
            return bool(container.streams.audio)
    except (av.error.FFmpegError, OSError):
        return False


def audio_source(config: RunConfig) -> Path | None:
    """The source file whose audio the run's file outputs keep, or None; warns once when outputs drop it.

    Only video-file outputs can carry audio; the others (PNG folders, window, network, vcam, null) are named
    in one warning line when the source has audio to lose.
    """
    uri = config.source.uri
    if not config.encoder.audio or not os.path.isfile(uri) or not has_audio(uri):
        return None
    dropping = [spec for spec in config.outputs if not is_video_file(spec)]
    if dropping:
        log.warning("the source's audio is dropped for %s (only video files carry audio)", ", ".join(dropping))
    return Path(uri) if len(dropping) < len(config.outputs) else None
