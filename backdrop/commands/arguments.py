"""Argument types and hints the commands share."""

from __future__ import annotations

import argparse

TRAIN_EXTRA_HINT = "pip install 'backdrop[train]'"


def count(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
