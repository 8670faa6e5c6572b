"""The batched colour augmentation against a per-image NumPy reading of the authors' ademxapp
``util/transformer.py`` (``ColorJitter`` in random order, then ``Lighting``)."""

import numpy as np
import tensorflow as tf

from keras_wideresnet.data import augment
from keras_wideresnet.applications import IMAGENET_STD
from tests.tolerances import gamma

# float32 against float64: three blends (about 3 roundings each per pixel), the gray mean (a sum
# over at most 42 pixels), the lighting offset and / 1.1: under 64 roundings, of values that
# the alphas (<= 1.4 each) keep below 1.4^3 times the image's range.
_RANGE = 1.4 ** 3


def _colour_atol(scale: float = 1.0) -> float:
    return gamma(64) * _RANGE * scale


def _np_reference(image, alphas, order, lighting):
    gray = lambda x: (x * np.array(augment.GRAY)).sum(-1, keepdims=True)  # noqa: E731
    ops = [lambda x, a: x * a,                                   # brightness: blend with 0
           lambda x, a: x * a + gray(x).mean() * (1 - a),        # contrast: with gray mean
           lambda x, a: x * a + gray(x) * (1 - a)]               # saturation: with gray
    x = image.astype(np.float64)
    for op in order:
        x = ops[op](x, alphas[op])
    return (x + lighting) / 1.1


def test_batched_colour_augment_matches_per_image_reference():
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, size=(5, 6, 7, 3)).astype("float32")
    params = [augment.colour_params(tf.constant([i, 7], tf.int64)) for i in range(5)]
    stacked = {k: tf.stack([p[k] for p in params]) for k in params[0]}
    orders = {tuple(p["order"].numpy()) for p in params}
    assert len(orders) > 1  # the random order really varies between images
    got = augment.batch_colour_augment(tf.constant(images), stacked).numpy()
    for i, p in enumerate(params):
        want = _np_reference(images[i], p["alphas"].numpy(), p["order"].numpy(),
                             p["lighting"].numpy())
        np.testing.assert_allclose(got[i], want, atol=_colour_atol())
    alphas = stacked["alphas"].numpy()
    assert ((alphas >= 0.6) & (alphas <= 1.4)).all()


def test_pixel_range_only_scales_the_lighting_offset():
    rng = np.random.default_rng(1)
    images = rng.uniform(0, 1, size=(3, 4, 5, 3)).astype("float32")
    params = [augment.colour_params(tf.constant([i, 3], tf.int64)) for i in range(3)]
    stacked = {k: tf.stack([p[k] for p in params]) for k in params[0]}
    unit = augment.batch_colour_augment(tf.constant(images), stacked).numpy()
    full = augment.batch_colour_augment(tf.constant(images * 255), stacked, scale=255.0).numpy()
    np.testing.assert_allclose(full, unit * 255, atol=2 * _colour_atol(255.0))  # two evaluations


def test_batched_flip_and_colour_equal_per_image_application():
    """The pipeline's batched XLA step (classification._batch_augment) draws each image's flip
    and colour parameters from that image's own seeds and equals applying them image by image."""
    from keras_wideresnet.data import classification

    rng = np.random.default_rng(2)
    images = rng.uniform(0, 255, size=(6, 5, 7, 3)).astype("float32")
    seeds = tf.constant(rng.integers(0, 2**31, size=(6, 4, 2)), tf.int64)
    means = tf.reduce_mean(images, axis=[1, 2])
    got = classification._batch_augment(tf.constant(images), seeds, means, True, True).numpy()
    flips = classification._batch_augment(tf.constant(images), seeds, means, False, True).numpy()
    # Normalising 0-255 pixels: (x / 255 - mean) / std, a few roundings of values below
    # 255 / 255 / std; a flip changes values by far more.
    norm_atol = gamma(8) / min(IMAGENET_STD)
    flipped = [not np.allclose(flips[i], augment.normalize(images[i]).numpy(), atol=norm_atol)
               for i in range(6)]
    assert 0 < sum(flipped) < 6  # some images flipped, some not
    for i in range(6):
        # Parameters as the XLA step draws them (XLA's RNG bits differ from eager TF's).
        params = tf.function(lambda s: augment.colour_params(s), jit_compile=True)(seeds[i, 1])
        image = images[i, :, ::-1] if flipped[i] else images[i]
        np.testing.assert_allclose(flips[i], augment.normalize(image).numpy(), atol=norm_atol)
        want = _np_reference(image / 255, params["alphas"].numpy(), params["order"].numpy(),
                             params["lighting"].numpy())
        want = augment.normalize(np.clip(want, 0, 1) * 255).numpy()
        # Colour maths on the 0-1 scale, then normalisation: both bounds, scaled by / std.
        np.testing.assert_allclose(got[i], want, atol=(_colour_atol() + gamma(8)) / min(IMAGENET_STD))
