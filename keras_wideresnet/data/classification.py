"""ImageNet-style classification input pipeline (docs/architecture.md §7.1–§7.2).

Training: Inception random-resized crop fused with JPEG decoding, colour jitter 0.4 (random order),
PCA lighting, clip, horizontal flip, ImageNet normalisation. Eval: resize the shorter side to
``eval_resize_shorter`` and centre-crop ``image_size`` (paper protocol: 320 → 320; also 224).
"""

from __future__ import annotations

from typing import Callable

import tensorflow as tf

from keras_wideresnet.data import augment, reader

AUTOTUNE = tf.data.AUTOTUNE


def _train_image(encoded, seeds, image_size: int, area_range: tuple[float, float], colour: bool):
    """Per image: fused decode + Inception crop (``seeds[0]``), bilinear resize, and (with colour
    augmentation) the mean colour the contrast jitter needs (docs/architecture.md §7.1)."""
    image = augment.decode_and_crop(
        encoded, lambda shape: augment.inception_crop_window(shape, seeds[0], area_range))
    image = tf.image.resize(image, [image_size, image_size], method="bilinear")
    return image, tf.reduce_mean(image, axis=[0, 1]) if colour else tf.zeros([3])


@tf.function(jit_compile=True)
def _batch_augment(images_255, seeds, means, colour: bool, flip: bool):
    """Batched horizontal flip (``seeds[:, 3]``), colour jitter + PCA lighting (``seeds[:, 1]``)
    + clip, then normalisation (docs/architecture.md §7.1).

    Each image's draws come from its own seeds, as if drawn per image. The flip commutes with the
    per-pixel colour ops (and the image mean they use), so doing it here equals flipping first.
    XLA fuses flip, affine map, clip and normalisation into one pass over the batch: per-image
    conds and draws in the tf.data map would cost a large share of the pipeline's CPU throughput.
    """
    if flip:
        flips = tf.map_fn(lambda s: augment.random_flip(s[3]), seeds, fn_output_signature=tf.bool)
        images_255 = tf.where(flips[:, None, None, None], tf.reverse(images_255, [2]), images_255)
    if colour:
        params = tf.map_fn(lambda s: augment.colour_params(s[1]), seeds,
                           fn_output_signature=augment.COLOUR_PARAMS_SIGNATURE)
        params["mean"] = means
        images_255 = augment.batch_colour_augment(images_255, params, scale=255.0)
        images_255 = tf.clip_by_value(images_255, 0.0, 255.0)
    return augment.normalize(images_255)


def eval_image(encoded, image_size: int, resize_shorter: int):
    """Eval transform of one encoded image: shorter side → ``resize_shorter``, centre crop
    ``image_size`` (fused decode-and-crop), bicubic, normalised. Shared with serving."""
    image = augment.decode_and_crop(
        encoded, lambda shape: augment.center_crop_window(shape, image_size, resize_shorter))
    image = tf.image.resize(image, [image_size, image_size], method="bicubic", antialias=True)
    return augment.normalize(tf.clip_by_value(image, 0.0, 255.0))


def _eval_resize_shorter(image_size: int, eval_resize_shorter: int | None) -> int:
    """Checks the crop sizes and returns the eval shorter side (default ``image_size``)."""
    if image_size < 8:
        raise ValueError(f"image_size must be >= 8. Received: image_size={image_size}")
    resize_shorter = eval_resize_shorter or image_size
    if resize_shorter < image_size:
        raise ValueError(
            f"eval_resize_shorter ({resize_shorter}) must be >= image_size ({image_size}) for a centre crop."
        )
    return resize_shorter


def _record_transform(is_training: bool, image_size: int, resize_shorter: int, num_classes: int | None,
                      label_offset: int, crop_area_range: tuple[float, float],
                      colour: bool) -> Callable[..., tuple]:
    """The per-record map: label offset and range check, then the train or eval image transform."""

    def transform(element, element_seeds):
        label = tf.cast(element["label"], tf.int32) + label_offset
        if num_classes is not None:
            in_range = tf.logical_and(label >= 0, label < num_classes)
            tf.debugging.Assert(in_range, ["label outside [0, num_classes) in record", element["name"], label])
        if is_training:
            image, mean = _train_image(element["encoded"], element_seeds, image_size, crop_area_range,
                                       colour)
            return tf.ensure_shape(image, [image_size, image_size, 3]), label, element_seeds, mean
        image = eval_image(element["encoded"], image_size, resize_shorter)
        return tf.ensure_shape(image, [image_size, image_size, 3]), label

    return transform


def _batch_and_prefetch(ds: tf.data.Dataset, batch_size: int, drop_remainder: bool, is_training: bool,
                        deterministic: bool, colour: bool, flip: bool) -> tf.data.Dataset:
    """Batches, applies the batched training augmentation, prefetches and sets the options."""
    ds = ds.batch(batch_size, drop_remainder=drop_remainder, num_parallel_calls=AUTOTUNE)
    if is_training:
        ds = ds.map(lambda images, labels, seeds, means: (_batch_augment(images, seeds, means, colour, flip), labels),
                    num_parallel_calls=AUTOTUNE, deterministic=deterministic)
    ds = ds.prefetch(AUTOTUNE)
    return reader.apply_options(ds, deterministic)


def classification_dataset(
    file_pattern: str,
    *,
    is_training: bool,
    global_batch_size: int,
    image_size: int = 224,
    num_classes: int | None = None,
    eval_resize_shorter: int | None = None,
    input_context: tf.distribute.InputContext | None = None,
    deterministic: bool = False,
    seed: int | None = None,
    drop_remainder: bool | None = None,
    repeat: bool | None = None,
    augment: bool = True,
    tfds_name: str | None = None,
    tfds_split: str | None = None,
    tfds_data_dir: str | None = None,
    shuffle_buffer_size: int = 10000,
    label_offset: int = 0,
    crop_area_range: tuple[float, float] = (0.08, 1.0),
    flip: bool = True,
) -> tf.data.Dataset:
    """Batches of ``(image float32 [b, image_size, image_size, 3], label int32 [b])``
    (docs/architecture.md §7.1–§7.2).

    Args:
      file_pattern: glob (or comma-separated globs) of our TFRecords; ignored when ``tfds_name`` is set.
      is_training: random crop/jitter/flip, shuffling, and by default repeat + drop_remainder.
      global_batch_size: total batch; each replica gets its share when ``input_context`` is given.
      eval_resize_shorter: eval resizes the shorter side to this (default ``image_size``), then
        centre-crops ``image_size``.
      deterministic, seed: reproducible order and augmentation.
      augment: False keeps only the random crop and flip in training (no colour jitter/lighting).
      num_classes: if given, labels outside ``[0, num_classes)`` raise an error naming the record.
      label_offset: added to stored labels (e.g. -1 for Model Garden's 1001-class ImageNet records).
      crop_area_range: area fraction range of the random-resized crop (paper: 0.08-1).
      flip: random horizontal flips in training (off for digits/text).
      tfds_name/tfds_split/tfds_data_dir: read a prepared TFDS dataset (e.g. ``imagenet2012``) from a
        local data_dir instead; downloads are never started.
    """
    resize_shorter = _eval_resize_shorter(image_size, eval_resize_shorter)
    batch_size = reader.per_replica_batch_size(global_batch_size, input_context)
    repeat, drop_remainder = reader.resolve_defaults(is_training, repeat, drop_remainder)
    seed = reader.pipeline_seed(seed, input_context)
    ds = reader.element_source(
        "classification", file_pattern, is_training=is_training, repeat=repeat, input_context=input_context,
        deterministic=deterministic, seed=seed, shuffle_buffer_size=shuffle_buffer_size,
        tfds_name=tfds_name, tfds_split=tfds_split, tfds_data_dir=tfds_data_dir)
    ds = reader.with_seeds(ds, seed)
    transform = _record_transform(is_training, image_size, resize_shorter, num_classes, label_offset,
                                  crop_area_range, augment)
    ds = ds.map(transform, num_parallel_calls=AUTOTUNE, deterministic=deterministic)
    return _batch_and_prefetch(ds, batch_size, drop_remainder, is_training, deterministic, augment, flip)
