"""Helpers for the data tests: tiny images and masks written in each dataset's real layout."""

import os

import numpy as np
import pytest
from PIL import Image


def save_rgb(path: str, h: int, w: int, seed: int = 0, fmt: str | None = None) -> np.ndarray:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path, format=fmt, **({"quality": 95} if path.lower().endswith((".jpg", ".jpeg")) else {}))
    return arr


def save_mask(path: str, mask: np.ndarray, palette: bool = False) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    im = Image.fromarray(mask.astype(np.uint8), mode="L")
    if palette:
        im = im.convert("P")
        im.putpalette([v for i in range(256) for v in (i, 255 - i, (i * 7) % 256)])
    im.save(path)


class Helpers:
    save_rgb = staticmethod(save_rgb)
    save_mask = staticmethod(save_mask)


@pytest.fixture
def helpers():
    return Helpers
