"""Evaluation preprocessing as single-image graph ops (paper spec §3.1 test, §3.3).

These mirror the evaluation input pipeline so that serving and ``tools/evaluate.py`` see the
same pixels: classification resizes the shorter side and centre-crops; segmentation resizes
the longer side, pads to a multiple of the output stride at the top-left and afterwards maps
probabilities back to the original size.
"""

from __future__ import annotations

import tensorflow as tf

from keras_wideresnet.applications import preprocess_input

RESIZE_METHOD = "bilinear"


def _resize(image: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
    image = tf.image.resize(tf.cast(image, tf.float32), size, method=RESIZE_METHOD)
    return tf.clip_by_value(image, 0.0, 255.0)


def classification_eval_image(image: tf.Tensor, image_size: int,
                              resize_shorter: int | None = None) -> tf.Tensor:
    """uint8 ``[H, W, 3]`` → normalised float32 ``[S, S, 3]`` (resize shorter side, centre crop)."""
    shorter = resize_shorter or image_size
    hw = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = shorter / tf.reduce_min(hw)
    new_hw = tf.maximum(tf.cast(tf.math.round(hw * scale), tf.int32), image_size)
    resized = _resize(image, new_hw)
    top = (new_hw[0] - image_size) // 2
    left = (new_hw[1] - image_size) // 2
    crop = resized[top:top + image_size, left:left + image_size, :]
    crop.set_shape([image_size, image_size, 3])
    return preprocess_input(crop)


def segmentation_eval_image(image: tf.Tensor, image_size: int,
                            pad_multiple: int = 8) -> tuple[tf.Tensor, tf.Tensor]:
    """uint8 ``[H, W, 3]`` → (normalised padded canvas, ``image_info``).

    The longer side is resized to ``image_size``; the image sits at the top-left of a canvas
    whose sides are multiples of ``pad_multiple``; padding is 0 after normalisation (= the
    ImageNet mean, paper spec §3.3).

    Returns:
      ``canvas`` float32 ``[Hp, Wp, 3]`` and ``image_info`` int32 ``[2, 2]``: original
      (height, width) and scaled (height, width).
    """
    size = tf.shape(image)[:2]
    hw = tf.cast(size, tf.float32)
    scale = image_size / tf.reduce_max(hw)
    scaled = tf.maximum(tf.cast(tf.math.round(hw * scale), tf.int32), 1)
    resized = preprocess_input(_resize(image, scaled))
    padded = (scaled + pad_multiple - 1) // pad_multiple * pad_multiple
    canvas = tf.pad(resized, [[0, padded[0] - scaled[0]], [0, padded[1] - scaled[1]], [0, 0]])
    return canvas, tf.stack([size, scaled])


def invert_segmentation_preprocessing(probs: tf.Tensor, image_info: tf.Tensor) -> tf.Tensor:
    """Canvas probabilities ``[Hp, Wp, C]`` → ``[H, W, C]`` at the original image size."""
    scaled = image_info[1]
    crop = probs[:scaled[0], :scaled[1], :]
    return tf.image.resize(crop, image_info[0], method="bilinear")
