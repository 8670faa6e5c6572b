"""Test-time inference (spec §3.3): plain inference equivalence, flip, scales, sliding tiles."""

import numpy as np
import pytest
import tensorflow as tf

from keras_wideresnet import applications as A
from keras_wideresnet.evaluation import classification_probs, num_tiles, segmentation_probs


@pytest.fixture(scope="module")
def seg_model():
    return A.ResNet38Segmenter(3, width_multiplier=1 / 32, dropout=(0.0, 0.0))


def _images(h=40, w=56, seed=0):
    return tf.constant(np.random.default_rng(seed).normal(size=(2, h, w, 3)).astype("float32"))


def test_scale_one_without_flip_is_plain_inference(seg_model):
    x = _images()
    plain = tf.nn.softmax(tf.image.resize(seg_model(x, training=False), [40, 56]), -1)
    np.testing.assert_allclose(segmentation_probs(seg_model, x), plain, atol=1e-6)


def test_flip_averages_the_mirrored_prediction(seg_model):
    x = _images()
    one = segmentation_probs(seg_model, x)
    mirrored = tf.reverse(segmentation_probs(seg_model, tf.reverse(x, [2])), [2])
    np.testing.assert_allclose(segmentation_probs(seg_model, x, flip=True),
                               (one + mirrored) / 2, atol=1e-6)


def test_multi_scale_is_the_mean_over_scales(seg_model):
    x = _images()
    half = tf.image.resize(segmentation_probs(seg_model, tf.image.resize(x, [20, 28])), [40, 56])
    want = (segmentation_probs(seg_model, x) + half) / 2
    got = segmentation_probs(seg_model, x, scales=(1.0, 0.5))
    np.testing.assert_allclose(got, want, atol=1e-5)
    np.testing.assert_allclose(tf.reduce_sum(got, -1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="scales"):
        segmentation_probs(seg_model, x, scales=())


def test_tiles_cover_the_image_and_equal_whole_image_when_one_tile(seg_model):
    x = _images(48, 80)
    whole = segmentation_probs(seg_model, x)
    np.testing.assert_allclose(segmentation_probs(seg_model, x, tile_size=96), whole, atol=1e-6)
    tiled = segmentation_probs(seg_model, x, tile_size=32)
    assert tiled.shape == whole.shape
    np.testing.assert_allclose(tf.reduce_sum(tiled, -1), 1.0, atol=1e-5)
    # A tile's own prediction is reproduced exactly where only that tile covers the image.
    corner = segmentation_probs(seg_model, x[:, :32, :32])
    np.testing.assert_allclose(tiled[:, :10, :10], corner[:, :10, :10], atol=1e-5)
    assert num_tiles(48, 80, 32) == 2 * 4


def test_classification_flip():
    model = A.ResNet16(classes=4, classifier_activation=None, input_shape=(32, 32, 3),
                       width_multiplier=1 / 32)
    x = _images(32, 32)
    plain = tf.nn.softmax(model(x), -1)
    np.testing.assert_allclose(classification_probs(model, x), plain, atol=1e-6)
    both = (plain + tf.nn.softmax(model(tf.reverse(x, [2])), -1)) / 2
    np.testing.assert_allclose(classification_probs(model, x, flip=True), both, atol=1e-6)
