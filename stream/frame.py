"""The unit that flows through the pipeline: one decoded frame plus its bookkeeping."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Frame:
    """A BGR uint8 image (H×W×3) with its sequence number and capture time (time.monotonic())."""

    index: int
    image: np.ndarray
    captured_at: float
    timestamps: dict[str, float] = field(default_factory=dict)
