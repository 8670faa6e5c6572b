"""Throughput measurement for the input pipelines."""

from __future__ import annotations

import time

import numpy as np
import tensorflow as tf

from keras_wideresnet._extras import require
from keras_wideresnet.data import augment, reader


def _count(element) -> int:
    first = tf.nest.flatten(element)[0]
    return int(first.shape[0]) if len(first.shape) == 4 else 1


def measure_throughput(dataset: tf.data.Dataset, num_batches: int, *, warmup_batches: int = 2) -> float:
    """Images per second over ``num_batches`` elements after ``warmup_batches``.

    Elements whose first component is rank 4 count as batches of that many images; rank-3 elements
    count as single images (``decode_only_dataset``).
    """
    if num_batches < 1:
        raise ValueError(f"num_batches must be >= 1. Received: num_batches={num_batches}")
    iterator = iter(dataset)
    for _ in range(warmup_batches):
        next(iterator)
    images = 0
    start = time.perf_counter()
    for _ in range(num_batches):
        try:
            images += _count(next(iterator))
        except StopIteration:
            break
    elapsed = time.perf_counter() - start
    if images == 0:
        raise ValueError("the dataset ran out during warm-up; use repeat=True or fewer warm-up batches.")
    return images / max(elapsed, 1e-9)


def decode_only_dataset(file_pattern: str, *, task: str = "classification", repeat: bool = True) -> tf.data.Dataset:
    """Baseline: parse + plain full-image decode of the same records (unbatched, AUTOTUNE, prefetch)."""
    ds = reader.parse_records(reader.records(file_pattern, is_training=False), task)
    if repeat:
        ds = ds.repeat()
    ds = ds.map(lambda e: augment.decode_rgb(e["encoded"]), num_parallel_calls=tf.data.AUTOTUNE)
    return reader.apply_options(ds.prefetch(tf.data.AUTOTUNE), deterministic=False)


def photo_jpegs(num_images: int, *, height: int = 375, width: int = 500, quality: int = 90,
                seed: int = 0) -> list[bytes]:
    """``num_images`` distinct JPEGs of real photographs at ImageNet's typical 500×375.

    Random crops (with flips) of the two photographs scikit-learn ships (``china.jpg``,
    ``flower.jpg``, 427×640; no download), resized to ``height``×``width`` and re-encoded.
    Throughput ratios depend on how costly the JPEGs are to decode, so the benchmark uses real
    photographic content rather than smooth synthetic images, which decode unrealistically fast.
    """
    datasets = require("sklearn.datasets", "quickstart", "The benchmark's sample photographs")

    photos = datasets.load_sample_images().images
    rng = np.random.default_rng(seed)
    out = []
    for i in range(num_images):
        photo = photos[i % len(photos)]
        ch, cw = int(photo.shape[0] * rng.uniform(0.6, 1.0)), int(photo.shape[1] * rng.uniform(0.6, 1.0))
        y, x = rng.integers(0, photo.shape[0] - ch + 1), rng.integers(0, photo.shape[1] - cw + 1)
        crop = photo[y:y + ch, x:x + cw]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        image = tf.image.resize(crop[None].astype(np.float32), (height, width), antialias=True)[0]
        image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
        out.append(tf.io.encode_jpeg(image, quality=quality).numpy())
    return out
