"""Per-image prediction with colour-palette masks and overlays (docs/architecture.md §7.5).

The image goes through the evaluation preprocessing (longer side → ``eval_image_size``, padded
to a multiple of 8), test-time inference, and back to its original size.
"""

from __future__ import annotations

import io
from typing import Sequence

import numpy as np
import tensorflow as tf
from PIL import Image

from keras_wideresnet.tasks.inference import segmentation_probs
from keras_wideresnet.data.preprocessing import (
    invert_segmentation_preprocessing,
    segmentation_eval_image,
)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")


def pascal_palette(num_classes: int = 256) -> np.ndarray:
    """The PASCAL VOC colour map (``uint8 [num_classes, 3]``), bit-interleaved class ids."""
    palette = np.zeros((num_classes, 3), np.uint8)
    for c in range(num_classes):
        r = g = b = 0
        cid = c
        for shift in range(7, -1, -1):
            r |= ((cid >> 0) & 1) << shift
            g |= ((cid >> 1) & 1) << shift
            b |= ((cid >> 2) & 1) << shift
            cid >>= 3
        palette[c] = (r, g, b)
    return palette


def segment_image(model, image: np.ndarray, eval_image_size: int,
                  scales: Sequence[float] = (1.0,), flip: bool = False,
                  tile_size: int | None = None) -> np.ndarray:
    """uint8 RGB ``[H, W, 3]`` → int class map ``[H, W]`` at the original size."""
    canvas, info = segmentation_eval_image(tf.convert_to_tensor(image, tf.uint8), eval_image_size)
    probs = segmentation_probs(model, canvas[None], scales=scales, flip=flip, tile_size=tile_size)
    probs = invert_segmentation_preprocessing(probs[0], info)
    return tf.argmax(probs, axis=-1).numpy().astype(np.uint8)


def read_image(path: str) -> np.ndarray:
    """Reads an image file as uint8 RGB, with an error that names the file."""
    try:
        with open(path, "rb") as f:
            return np.asarray(Image.open(io.BytesIO(f.read())).convert("RGB"))
    except FileNotFoundError:
        raise
    except Exception as e:  # noqa: BLE001 - PIL raises many kinds
        raise ValueError(f"{path!r} is not a readable image ({e}). Pass JPEG/PNG files.") from e


def save_mask_and_overlay(class_map: np.ndarray, image: np.ndarray, mask_path: str,
                          overlay_path: str, alpha: float = 0.5) -> None:
    """Writes a palette PNG (class ids as pixel values) and a colour overlay PNG."""
    palette = pascal_palette()
    mask = Image.fromarray(class_map.astype(np.uint8), mode="P")
    mask.putpalette(palette.reshape(-1).tolist())
    mask.save(mask_path)
    colour = palette[class_map]
    blend = (alpha * colour + (1 - alpha) * image).astype(np.uint8)
    Image.fromarray(blend).save(overlay_path)
