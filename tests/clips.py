"""Helpers for the stream tests: decode what a run wrote, and run the CLI in-process."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from backdrop.cli import main

CLIP_SIZE = (640, 360)  # the generated test clips: small, so the suite stays fast on two cores
CLIP_FRAMES = 40


def decode(path: Path, fmt: str = "bgr24") -> list[np.ndarray]:
    """Every frame of a video file as arrays (``bgra`` keeps alpha)."""
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format=fmt) for frame in container.decode(video=0)]


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Exit code and stderr of ``backdrop ARGS`` run in this process (fast: the model stays imported)."""
    capsys.readouterr()
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def error_lines(stderr: str) -> list[str]:
    """The lines of stderr that are not progress lines."""
    return [line for line in stderr.splitlines() if line.startswith("backdrop:") or "Traceback" in line]
