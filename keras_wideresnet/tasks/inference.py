"""Test-time inference: multi-scale, flip and sliding-window segmentation (docs/architecture.md §7.5).

All functions take *normalized* images (see :func:`keras_wideresnet.applications.preprocess_input`)
and are plain TF ops, so the evaluator and the exported SavedModel share them exactly.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import tensorflow as tf


def _upsampled_probs(model: Callable, images: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
    """softmax(model(images)) resized bilinearly to ``size``."""
    logits = tf.cast(model(images, training=False), tf.float32)
    logits = tf.image.resize(logits, size, method="bilinear")
    return tf.nn.softmax(logits, axis=-1)


def _tiled_probs(model: Callable, images: tf.Tensor, tile_size: int, overlap: float) -> tf.Tensor:
    """Sliding-window probabilities for images larger than ``tile_size`` (e.g. Cityscapes)."""
    shape = tf.shape(images)
    h, w = shape[1], shape[2]
    stride = max(1, int(tile_size * (1.0 - overlap)))
    tile_h, tile_w = tf.minimum(h, tile_size), tf.minimum(w, tile_size)
    n_y = (tf.maximum(h - tile_h, 0) + stride - 1) // stride + 1
    n_x = (tf.maximum(w - tile_w, 0) + stride - 1) // stride + 1

    def body(idx, acc, cnt):
        # The last row/column of tiles is shifted inside the image.
        y0 = tf.minimum((idx // n_x) * stride, h - tile_h)
        x0 = tf.minimum((idx % n_x) * stride, w - tile_w)
        tile = images[:, y0:y0 + tile_h, x0:x0 + tile_w, :]
        probs = _upsampled_probs(model, tile, tf.stack([tile_h, tile_w]))
        paddings = [[0, 0], [y0, h - y0 - tile_h], [x0, w - x0 - tile_w], [0, 0]]
        acc += tf.pad(probs, paddings)
        cnt += tf.pad(tf.ones_like(probs[..., :1]), paddings)
        return idx + 1, acc, cnt

    first = _upsampled_probs(model, images[:, :tile_h, :tile_w, :], tf.stack([tile_h, tile_w]))
    num_classes = tf.shape(first)[-1]
    total = tf.zeros(tf.stack([shape[0], h, w, num_classes]), tf.float32)
    count = tf.zeros(tf.stack([shape[0], h, w, 1]), tf.float32)
    _, total, count = tf.while_loop(lambda i, *_: i < n_y * n_x, body,
                                    (tf.constant(0), total, count))
    return total / tf.maximum(count, 1.0)


def segmentation_probs(model: Callable, images: tf.Tensor, scales: Sequence[float] = (1.0,),
                       flip: bool = False, tile_size: int | None = None,
                       tile_overlap: float = 1.0 / 3.0) -> tf.Tensor:
    """Averaged class probabilities at the input resolution.

    For each scale the image is resized bilinearly, run through the model (whole or in tiles),
    the logits are resized back to the input size and soft-maxed; probabilities are averaged
    over scales and, with ``flip``, over the mirrored image (ademxapp ``--test-flipping``).
    ``scales=(1.0,)`` without flip is exactly plain inference.

    Args:
      model: Callable mapping normalized images to logits at any output stride.
      images: float32 ``[B, H, W, 3]``.
      scales: Multiplicative test scales (e.g. ``(0.75, 1.0, 1.25)``).
      flip: Also average the horizontally flipped prediction.
      tile_size: Sliding-window tile side (``None`` runs the whole image).
      tile_overlap: Fraction of overlap between tiles.

    Returns:
      float32 ``[B, H, W, C]`` probabilities.
    """
    if not scales:
        raise ValueError("`scales` must contain at least one scale, e.g. (1.0,).")
    images = tf.convert_to_tensor(images, tf.float32)
    size = tf.shape(images)[1:3]
    total = None
    n = 0
    for scale in scales:
        if scale <= 0:
            raise ValueError(f"Test scales must be positive. Received: scales={tuple(scales)}")
        if scale == 1.0:
            scaled = images
        else:
            new_size = tf.cast(tf.math.round(tf.cast(size, tf.float32) * scale), tf.int32)
            scaled = tf.image.resize(images, new_size, method="bilinear")
        for flipped in ((False, True) if flip else (False,)):
            x = tf.reverse(scaled, axis=[2]) if flipped else scaled
            if tile_size:
                probs = _tiled_probs(model, x, tile_size, tile_overlap)
            else:
                probs = _upsampled_probs(model, x, tf.shape(x)[1:3])
            if flipped:
                probs = tf.reverse(probs, axis=[2])
            if scale != 1.0:
                probs = tf.image.resize(probs, size, method="bilinear")
            total = probs if total is None else total + probs
            n += 1
    return total / float(n)


def classification_probs(model: Callable, images: tf.Tensor, flip: bool = False) -> tf.Tensor:
    """softmax(logits), averaged with the mirrored image when ``flip`` (docs/architecture.md §7.2)."""
    images = tf.convert_to_tensor(images, tf.float32)
    probs = tf.nn.softmax(tf.cast(model(images, training=False), tf.float32), axis=-1)
    if flip:
        mirrored = tf.reverse(images, axis=[2])
        probs = 0.5 * (probs + tf.nn.softmax(
            tf.cast(model(mirrored, training=False), tf.float32), axis=-1))
    return probs


def num_tiles(height: int, width: int, tile_size: int, overlap: float = 1.0 / 3.0) -> int:
    """How many tiles :func:`segmentation_probs` runs for an image (for progress reporting)."""
    stride = max(1, int(tile_size * (1.0 - overlap)))
    count = lambda n: math.ceil(max(n - tile_size, 0) / stride) + 1  # noqa: E731
    return count(height) * count(width)
