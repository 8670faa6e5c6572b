"""Graph ops that turn serving inputs into uint8 images, rejecting bad input.

Model Garden's three input types (``official/vision/serving/export_base.py``): encoded image bytes, uint8 image
tensors and serialized ``tf.Example`` protos with ``image/encoded``. Bytes that are not an image
fail with an ``InvalidArgument`` error whose message names the input and the accepted formats
(``tf.debugging.Assert``), never a crash of the serving process.
"""

from __future__ import annotations

import tensorflow as tf

from keras_wideresnet.data import augment

IMAGE_ENCODED_KEY = "image/encoded"  # Model Garden / keras_wideresnet.data.schema key.

# File signatures of the formats tf.io.decode_image reads.
_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM")
ACCEPTED_FORMATS = "JPEG, PNG, GIF, BMP or WebP"


def _is_image_bytes(encoded: tf.Tensor) -> tf.Tensor:
    """Whether ``encoded`` starts with the signature of a format ``decode_image`` reads."""
    checks = [tf.equal(tf.strings.substr(encoded, 0, len(m)), m) for m in _MAGIC]
    checks.append(tf.logical_and(tf.equal(tf.strings.substr(encoded, 0, 4), b"RIFF"),
                                 tf.equal(_safe_substr(encoded, 8, 4), b"WEBP")))
    return tf.reduce_any(tf.stack(checks))


def _safe_substr(encoded: tf.Tensor, pos: int, length: int) -> tf.Tensor:
    """``substr`` that yields ``b""`` instead of failing when ``encoded`` is shorter than ``pos``."""
    n = tf.strings.length(encoded)
    return tf.strings.substr(encoded, tf.minimum(pos, n), length)


def check_image_bytes(encoded: tf.Tensor, input_name: str = "image_bytes") -> tf.Tensor:
    """Returns ``encoded`` once it is known to start like an image the decoders read.

    Args:
      encoded: Scalar string tensor.
      input_name: Named in the error message.

    Raises (at run time):
      InvalidArgumentError: ``encoded`` is not a JPEG/PNG/GIF/BMP/WebP image.
    """
    encoded = tf.convert_to_tensor(encoded, tf.string)
    check = tf.debugging.Assert(
        _is_image_bytes(encoded),
        [f"Invalid input `{input_name}`: expected the bytes of an encoded {ACCEPTED_FORMATS} "
         "image (TF Serving REST clients send such bytes base64-encoded in a b64 object). Received",
         tf.strings.length(encoded), "bytes starting with", tf.strings.substr(encoded, 0, 16)],
        summarize=16)
    with tf.control_dependencies([check]):
        return tf.identity(encoded)


def decode_image(encoded: tf.Tensor, input_name: str = "image_bytes") -> tf.Tensor:
    """Checks and decodes one encoded image to uint8 ``[H, W, 3]`` with the input pipeline's
    decoder (grey → RGB, alpha dropped). Corrupt data also fails with ``InvalidArgument``."""
    image = augment.decode_rgb(check_image_bytes(encoded, input_name))
    image.set_shape([None, None, 3])
    return image


def check_image_tensor(images: tf.Tensor, input_name: str = "images") -> tf.Tensor:
    """Checks a uint8 ``[B, H, W, 3]`` batch is non-empty in every dimension."""
    shape = tf.shape(images)
    check = tf.debugging.Assert(
        tf.reduce_all(shape[1:3] > 0),
        [f"Invalid input `{input_name}`: images must have height and width > 0. Received shape",
         shape])
    with tf.control_dependencies([check]):
        return tf.identity(images)


def parse_examples(serialized: tf.Tensor) -> tf.Tensor:
    """The ``image/encoded`` bytes of a batch of serialized ``tf.Example`` protos.

    A proto without the key (or not a tf.Example at all) fails with ``InvalidArgument``.
    """
    features = tf.io.parse_example(
        serialized, {IMAGE_ENCODED_KEY: tf.io.FixedLenFeature((), tf.string)})
    return features[IMAGE_ENCODED_KEY]
