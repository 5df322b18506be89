"""The allocator setting the CLI makes: a stage thread's frame-sized temporaries, freed and allocated again every
frame, stop costing a page fault per page."""

from __future__ import annotations

import subprocess
import sys

import pytest

FAULTS_PER_FRAME = """
import resource, sys, threading
import numpy as np
from backdrop.allocator import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
faults = []

def stage():  # as a pipeline stage does: a frame, a float matte, a smaller picture, all freed each frame
    np.ones((720, 1280, 3), np.uint8)
    before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
    for _ in range(20):
        frame, matte = np.ones((720, 1280, 3), np.uint8), np.ones((720, 1280), np.float32)
        del frame
        small = np.ones((360, 640, 3), np.uint8)
        del matte, small
    faults.append((resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before) / 20)

thread = threading.Thread(target=stage)
thread.start()
thread.join()
print(faults[0])
"""


def faults_per_frame(mode: str) -> float:
    done = subprocess.run([sys.executable, "-c", FAULTS_PER_FRAME, mode], capture_output=True, text=True, check=True)
    return float(done.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc: Linux only")
def test_frame_sized_temporaries_are_reused_instead_of_faulted_in_again() -> None:
    default, kept = faults_per_frame("default"), faults_per_frame("keep")
    assert kept < default / 2, (kept, default)
