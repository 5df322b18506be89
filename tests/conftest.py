"""Shared fixtures: the real model, and small generated clips of a person (a public-domain photo)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from clips import CLIP_FRAMES, CLIP_SIZE

from backdrop.model.segmenter import Segmenter
from backdrop.stream.sources.demo_clip import write_clip


@pytest.fixture(scope="session")
def segmenter() -> Iterator[Segmenter]:
    """The bundled general model on ONNX Runtime, loaded once."""
    from backdrop.model.segmenter import load_segmenter

    with load_segmenter("general", "onnxruntime", threads=1) as loaded:
        yield loaded


@pytest.fixture(scope="session")
def stamped_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 640×360 H.264 clip of a person, each frame's index stamped on the chest as a binary code."""
    path = tmp_path_factory.mktemp("clips") / "stamped.mp4"
    width, height = CLIP_SIZE
    return write_clip(path, width=width, height=height, frames=CLIP_FRAMES, with_stamp=True)


@pytest.fixture(scope="session")
def mkv_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same person clip in Matroska (its header states the duration, so truncation is detectable)."""
    path = tmp_path_factory.mktemp("clips") / "clip.mkv"
    width, height = CLIP_SIZE
    return write_clip(path, width=width, height=height, frames=60, with_stamp=True)
