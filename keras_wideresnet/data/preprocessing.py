"""Evaluation preprocessing for one serving image, taken from the input pipelines
(the paper's classification test protocol and segmentation testing, §4–5).

Serving must see the same pixels as ``keras-wideresnet-evaluate``, so these functions call the eval
transforms of :mod:`keras_wideresnet.data.classification` / :mod:`keras_wideresnet.data.segmentation`
(including their JPEG fused decode-and-crop and resize filters) instead of re-implementing them.
"""

from __future__ import annotations

import tensorflow as tf

from keras_wideresnet.data import augment
from keras_wideresnet.data import classification as classification_data
from keras_wideresnet.data import segmentation as segmentation_data


def classification_from_bytes(encoded: tf.Tensor, image_size: int,
                              resize_shorter: int | None = None) -> tf.Tensor:
    """Encoded image → normalised float32 ``[S, S, 3]``: exactly the eval pipeline's transform."""
    image = classification_data.eval_image(encoded, image_size, resize_shorter or image_size)
    return tf.ensure_shape(image, [image_size, image_size, 3])


def classification_from_image(image: tf.Tensor, image_size: int,
                              resize_shorter: int | None = None) -> tf.Tensor:
    """uint8 ``[H, W, 3]`` → normalised float32 ``[S, S, 3]``.

    The eval transform without its decoder: the same centre-crop window, bicubic antialiased
    resize, clip and normalisation (tests check it equals :func:`classification_from_bytes` on
    lossless PNG bytes of the same pixels).
    """
    window = augment.center_crop_window(tf.shape(image), image_size, resize_shorter or image_size)
    crop = tf.slice(image, tf.stack([window[0], window[1], 0]), tf.stack([window[2], window[3], 3]))
    crop = tf.image.resize(crop, [image_size, image_size], method="bicubic", antialias=True)
    crop = augment.normalize(tf.clip_by_value(crop, 0.0, 255.0))
    return tf.ensure_shape(crop, [image_size, image_size, 3])


def segmentation_eval_image(image: tf.Tensor, image_size: int,
                            pad_multiple: int = 8) -> tuple[tf.Tensor, tf.Tensor]:
    """uint8 ``[H, W, 3]`` → (normalised top-left padded canvas ``[Hp, Wp, 3]``, ``image_info``).

    ``image_info`` is the eval pipeline's ``[4, 2]`` (original size, scaled size, scale, offset).
    """
    dummy_label = tf.zeros_like(image[:, :, :1], dtype=tf.int32)
    canvas, extras = segmentation_data.eval_pair(image, dummy_label, image_size, pad_multiple)
    return canvas, extras["image_info"]


def invert_segmentation_preprocessing(probs: tf.Tensor, image_info: tf.Tensor) -> tf.Tensor:
    """Canvas-resolution probabilities ``[Hp, Wp, C]`` → ``[H, W, C]`` at the original size."""
    return segmentation_data.invert_eval_preprocessing(probs, image_info, output_stride=1)
