"""cuda-python's runtime module under either of its import paths (cuda.bindings ≥ 12.6, cuda.cudart before)."""

from __future__ import annotations

from backdrop.errors import RuntimeUnavailable

try:
    from cuda.bindings import runtime as cudart
except ImportError:
    try:
        from cuda import cudart
    except ImportError as e:
        hint = "pip install 'backdrop-video[tensorrt]'"
        raise RuntimeUnavailable(f"the tensorrt runtime needs cuda-python: {hint}") from e

__all__ = ["cudart"]
