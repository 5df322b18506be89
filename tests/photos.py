"""The bundled public-domain photos of people, as model-ready batches."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import cv2
import numpy as np

ASSETS = Path(str(resources.files("backdrop").joinpath("assets")))
PHOTOS = ("astronaut.jpg", "grace_hopper.jpg")


def load_rgb(name: str) -> np.ndarray:
    image = cv2.imread(str(ASSETS / name))
    if image is None:
        raise FileNotFoundError(ASSETS / name)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def photo_batch(size: tuple[int, int], count: int = 2) -> np.ndarray:
    """``count`` photos (cycling through PHOTOS) resized to (height, width), float32 RGB in [0, 1]."""
    height, width = size
    images = [load_rgb(PHOTOS[i % len(PHOTOS)]) for i in range(count)]
    resized = [cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA) for image in images]
    return np.stack(resized).astype(np.float32) / 255.0
