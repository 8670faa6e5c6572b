"""Stateless image ops for the paper's augmentation (docs/architecture.md §7.1, §7.3).

All take a seed pair.
"""

from __future__ import annotations

import tensorflow as tf

from keras_wideresnet.constants import IMAGENET_MEAN, IMAGENET_STD

MEAN_RGB_255 = tuple(255.0 * m for m in IMAGENET_MEAN)
STD_RGB_255 = tuple(255.0 * s for s in IMAGENET_STD)
# AlexNet PCA lighting (docs/architecture.md §7.1; ademxapp util/transformer.py).
EIGVAL = (0.2175, 0.0188, 0.0045)
EIGVEC = ((-0.5675, 0.7192, 0.4009), (-0.5808, -0.0045, -0.8140), (-0.5836, -0.6948, 0.4203))
GRAY = (0.299, 0.587, 0.114)


def normalize(image_255: tf.Tensor) -> tf.Tensor:
    """RGB in [0, 255] → ``(x/255 − mean)/std`` (docs/architecture.md §5.5; same as
    applications.preprocess_input)."""
    return (tf.cast(image_255, tf.float32) - MEAN_RGB_255) / STD_RGB_255


def decode_rgb(encoded: tf.Tensor) -> tf.Tensor:
    """JPEG/PNG/BMP/GIF bytes → uint8 [h, w, 3]."""
    return tf.io.decode_image(encoded, channels=3, expand_animations=False)


def decode_and_crop(encoded: tf.Tensor, window_fn) -> tf.Tensor:
    """Decodes the ``window_fn(shape)`` crop of encoded bytes; ``window = [y, x, h, w]``.

    JPEG: the shape comes from the header and the crop is decoded fused
    (``decode_and_crop_jpeg``, no full decode); other formats are decoded once, then sliced.
    One ``tf.cond`` for both steps: in tf.data map functions each cond is a nested function
    call, paid once per image.
    """

    def jpeg():
        window = window_fn(tf.image.extract_jpeg_shape(encoded))
        return tf.image.decode_and_crop_jpeg(encoded, window, channels=3, dct_method="INTEGER_FAST")

    def other():
        image = decode_rgb(encoded)
        window = window_fn(tf.shape(image, out_type=tf.int32))
        return tf.slice(image, tf.stack([window[0], window[1], 0]), tf.stack([window[2], window[3], 3]))

    return tf.cond(tf.io.is_jpeg(encoded), jpeg, other)


def inception_crop_window(shape: tf.Tensor, seed: tf.Tensor,
                          area_range: tuple[float, float] = (0.08, 1.0)) -> tf.Tensor:
    """Inception RandomSizedCrop window (area U(0.08,1), aspect U(3/4,4/3), 10 tries; fallback
    centre square crop), docs/architecture.md §7.1. Returns [y, x, h, w]."""
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        shape,
        bounding_boxes=tf.constant([0.0, 0.0, 1.0, 1.0], shape=[1, 1, 4]),
        seed=seed,
        min_object_covered=0.0,
        aspect_ratio_range=(3.0 / 4.0, 4.0 / 3.0),
        area_range=tuple(area_range),
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    h, w = shape[0], shape[1]
    failed = tf.logical_and(tf.equal(size[0], h), tf.equal(size[1], w))
    side = tf.minimum(h, w)
    center = tf.stack([(h - side) // 2, (w - side) // 2, side, side])
    return tf.where(failed, center, tf.stack([begin[0], begin[1], size[0], size[1]]))


def center_crop_window(shape: tf.Tensor, image_size: int, resize_shorter: int) -> tf.Tensor:
    """Window equal to "resize the shorter side to ``resize_shorter``, centre-crop ``image_size``"."""
    h, w = shape[0], shape[1]
    side = tf.cast(tf.minimum(h, w), tf.float32) * (image_size / resize_shorter)
    side = tf.maximum(1, tf.minimum(tf.cast(tf.round(side), tf.int32), tf.minimum(h, w)))
    return tf.stack([(h - side) // 2, (w - side) // 2, side, side])


def colour_params(seed: tf.Tensor, strength: float = 0.4, alphastd: float = 0.1) -> dict:
    """Per-image random draws of the colour augmentation (docs/architecture.md §7.1), from one seed pair:
    jitter factors ``alphas`` [3] (brightness, contrast, saturation ∈ 1 ± strength), their
    random ``order`` [3], and the PCA lighting offset ``lighting`` [3] (RGB, in [0, 1] units)."""
    seeds = tf.random.experimental.stateless_split(seed, 3)
    alpha = tf.random.stateless_normal([3], seeds[2], stddev=alphastd)
    return {
        "alphas": 1.0 + tf.random.stateless_uniform([3], seeds[0], -strength, strength),
        "order": tf.argsort(tf.random.stateless_uniform([3], seeds[1])),  # XLA-compatible shuffle
        "lighting": tf.linalg.matvec(tf.constant(EIGVEC), alpha * tf.constant(EIGVAL)),
    }


COLOUR_PARAMS_SIGNATURE = {"alphas": tf.TensorSpec([3], tf.float32), "order": tf.TensorSpec([3], tf.int32),
                           "lighting": tf.TensorSpec([3], tf.float32)}


def batch_colour_augment(images01: tf.Tensor, params: dict, scale: float = 1.0) -> tf.Tensor:
    """Colour jitter in random order, then AlexNet PCA lighting, on a batch ``[B, H, W, 3]``.

    Each jitter op is ``x ← a·x + (1 − a)·T(x)``: brightness T = 0, contrast T = mean grayscale of
    the image, saturation T = grayscale (gray = .299R + .587G + .114B); lighting adds the RGB
    offset and divides by 1.1 as ademxapp does (docs/architecture.md §7.1). All of these are affine in the
    pixel's RGB vector (the contrast mean is affine in the image's mean colour), so the whole
    chain is composed per image into one 3×3 matrix and offset, then applied in a single pass.
    ``params["mean"]`` [B, 3], if present, is each image's mean colour (else it is computed).
    ``scale`` is the pixel range (1 for [0, 1], 255 for [0, 255]): only the lighting offset
    depends on it.
    """
    x = tf.convert_to_tensor(images01)
    dtype = x.dtype
    alphas = tf.cast(params["alphas"], dtype)  # [B, 3]
    order = params["order"]  # [B, 3]
    batch = tf.shape(x)[0]
    g = tf.constant(GRAY, dtype)  # [3]
    eye = tf.eye(3, batch_shape=[batch], dtype=dtype)
    to_gray = tf.broadcast_to(tf.ones([3, 1], dtype) * g[None, :], [batch, 3, 3])  # rows = g
    # [B, 3] mean colour of each image; the pipeline computes it per image while the image is
    # still in cache, which saves a pass over the batch.
    mu = tf.cast(params["mean"], dtype) if "mean" in params else tf.reduce_mean(x, axis=[1, 2])
    A, b = eye, tf.zeros([batch, 3], dtype)
    for stage in range(3):
        op = order[:, stage]
        a = tf.gather(alphas, op, axis=1, batch_dims=1)[:, None]  # [B, 1]
        mean_gray = tf.reduce_sum((tf.linalg.matvec(A, mu) + b) * g, axis=-1, keepdims=True)
        # brightness & contrast: A ← aA; saturation: A ← (aI + (1−a)·1gᵀ) A.
        sat = a[:, :, None] * eye + (1.0 - a)[:, :, None] * to_gray
        is_sat = (op == 2)[:, None, None]
        A = tf.where(is_sat, tf.matmul(sat, A), a[:, :, None] * A)
        b = tf.where(is_sat[:, :, 0], tf.linalg.matvec(sat, b),
                     a * b + tf.where((op == 1)[:, None], (1.0 - a) * mean_gray, 0.0))
    b = (b + scale * tf.cast(params["lighting"], dtype)) / 1.1
    A = (A / 1.1)[:, None, None, :, :]  # [B, 1, 1, out, in]
    # Three broadcast multiply-adds rather than an einsum: XLA fuses them (and the clip and
    # normalisation after them) into one loop, which an einsum's K=3 dot would not get.
    return (x[..., 0:1] * A[..., 0] + x[..., 1:2] * A[..., 1] + x[..., 2:3] * A[..., 2]
            + b[:, None, None, :])


def random_flip(seed: tf.Tensor) -> tf.Tensor:
    return tf.random.stateless_uniform([], seed) < 0.5
