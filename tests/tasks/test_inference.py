"""Test-time inference as the authors' ademxapp ``issegm/voc.py`` (``_val_impl``) runs it: plain
inference equivalence, flip averaging of softmax, scales, sliding tiles."""

import numpy as np
import pytest
import tensorflow as tf

from keras_wideresnet import applications as A
from keras_wideresnet.evaluation import classification_probs, num_tiles, segmentation_probs
from tests.tolerances import conv_depth_and_reduction, gamma, prob_rtol


def _assert_probs_close(got, want, model):
    """Two float32 evaluations of ``model`` (other shapes, graph or eager: other kernels): the
    probability bound of ``prob_rtol``."""
    want = np.asarray(want)
    np.testing.assert_allclose(got, want, rtol=prob_rtol(want, *conv_depth_and_reduction(model)))


def _assert_sums_to_one(probs):
    """Softmax rounds each exp, the C-term sum and each quotient; averaging and bilinear resizing
    (convex combinations of at most 4 values) add a few roundings more: within gamma(4 (C + 2))."""
    classes = probs.shape[-1]
    np.testing.assert_allclose(tf.reduce_sum(probs, -1), 1.0, atol=gamma(4 * (classes + 2)))


@pytest.fixture(scope="module")
def seg_model():
    return A.ResNet38Segmenter(3, width_multiplier=1 / 32, dropout=(0.0, 0.0))


def _images(h=40, w=56, seed=0):
    return tf.constant(np.random.default_rng(seed).normal(size=(2, h, w, 3)).astype("float32"))


def test_scale_one_without_flip_is_plain_inference(seg_model):
    x = _images()
    plain = tf.nn.softmax(tf.image.resize(seg_model(x, training=False), [40, 56]), -1)
    _assert_probs_close(segmentation_probs(seg_model, x), plain, seg_model)


def test_flip_averages_the_mirrored_prediction(seg_model):
    x = _images()
    one = segmentation_probs(seg_model, x)
    mirrored = tf.reverse(segmentation_probs(seg_model, tf.reverse(x, [2])), [2])
    _assert_probs_close(segmentation_probs(seg_model, x, flip=True), (one + mirrored) / 2, seg_model)


def test_multi_scale_is_the_mean_over_scales(seg_model):
    x = _images()
    half = tf.image.resize(segmentation_probs(seg_model, tf.image.resize(x, [20, 28])), [40, 56])
    want = (segmentation_probs(seg_model, x) + half) / 2
    got = segmentation_probs(seg_model, x, scales=(1.0, 0.5))
    _assert_probs_close(got, want, seg_model)
    _assert_sums_to_one(got)
    with pytest.raises(ValueError, match="scales"):
        segmentation_probs(seg_model, x, scales=())


def test_tiles_cover_the_image_and_equal_whole_image_when_one_tile(seg_model):
    x = _images(48, 80)
    whole = segmentation_probs(seg_model, x)
    _assert_probs_close(segmentation_probs(seg_model, x, tile_size=96), whole, seg_model)
    tiled = segmentation_probs(seg_model, x, tile_size=32)
    assert tiled.shape == whole.shape
    _assert_sums_to_one(tiled)
    # A tile's own prediction is reproduced exactly where only that tile covers the image.
    corner = segmentation_probs(seg_model, x[:, :32, :32])
    _assert_probs_close(tiled[:, :10, :10], corner[:, :10, :10], seg_model)
    assert num_tiles(48, 80, 32) == 2 * 4


def test_classification_flip():
    model = A.ResNet16(classes=4, classifier_activation=None, input_shape=(32, 32, 3),
                       width_multiplier=1 / 32)
    x = _images(32, 32)
    plain = tf.nn.softmax(model(x), -1)
    _assert_probs_close(classification_probs(model, x), plain, model)
    both = (plain + tf.nn.softmax(model(tf.reverse(x, [2])), -1)) / 2
    _assert_probs_close(classification_probs(model, x, flip=True), both, model)
