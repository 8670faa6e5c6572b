"""Bootstrapping loss, label sub-sampling and metrics against NumPy references (paper §5; the
authors' ademxapp ``util/symbol/layer.py`` ``OhemSoftmax`` and ``issegm/voc.py``)."""

import numpy as np
import pytest
import tensorflow as tf

from keras_wideresnet.tasks import losses, metrics
from keras_wideresnet.training.experiment import OptimizerConfig
from keras_wideresnet.training.optimization import adjust_gradients, build_schedule
from tests.tolerances import dot_rtol, gamma


def _np_softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _np_bootstrap_loss(labels, logits, ignore=255, thresh=0.6, min_kept=256):
    """ademxapp's ``OhemSoftmax`` (``util/symbol/layer.py``) written out in NumPy."""
    p = _np_softmax(logits.astype(np.float64)).reshape(-1, logits.shape[-1])
    y = labels.reshape(-1)
    valid = y != ignore
    py = np.zeros(len(y))
    py[valid] = p[valid, y[valid]]
    if valid.sum() <= min_kept:
        keep = valid
    else:
        v = np.sort(py[valid])[min_kept - 1]
        thr = max(thresh, v)
        keep = valid & (py <= thr)
    ce = -np.log(py[keep])
    return ce.mean()


@pytest.mark.parametrize("min_kept,scale", [(5, 3.0), (40, 3.0), (500, 1.0), (10, 0.1)])
def test_bootstrap_loss_matches_numpy(min_kept, scale):
    rng = np.random.default_rng(min_kept)
    logits = (rng.normal(size=(2, 9, 11, 4)) * scale).astype("float32")
    labels = rng.integers(0, 4, size=(2, 9, 11))
    labels[0, :2] = 255
    got = losses.segmentation_loss(labels, logits, label_resolution="upsample", bootstrap=True,
                                   bootstrap_min_kept=min_kept).numpy()
    # float32 against float64: each kept pixel's log-softmax over 4 classes rounds a few times
    # on the logits' scale (gamma(8) |logits|, against a cross-entropy of at least -log 0.6
    # for the kept, hard pixels), and their mean is a sum of up to 198 terms (dot_rtol).
    rtol = dot_rtol(labels.size) + gamma(8) * float(np.abs(logits).max()) / -np.log(0.6)
    np.testing.assert_allclose(got, _np_bootstrap_loss(labels, logits, min_kept=min_kept),
                               rtol=rtol)


def test_bootstrap_selection_is_not_differentiated():
    rng = np.random.default_rng(0)
    logits = tf.Variable(rng.normal(size=(1, 6, 6, 3)).astype("float32") * 3)
    labels = rng.integers(0, 3, size=(1, 6, 6))
    with tf.GradientTape() as tape:
        loss = losses.segmentation_loss(labels, logits, label_resolution="upsample",
                                        bootstrap=True, bootstrap_min_kept=5)
    grad = tape.gradient(loss, logits).numpy().reshape(-1, 3)
    p = _np_softmax(logits.numpy().astype(np.float64)).reshape(-1, 3)
    py = p[np.arange(36), labels.reshape(-1)]
    thr = max(0.6, np.sort(py)[4])
    keep = py <= thr
    onehot = np.eye(3)[labels.reshape(-1)]
    want = np.where(keep[:, None], (p - onehot) / keep.sum(), 0.0)  # OhemSoftmax's backward: kept pixels only
    # Softmax of 3 classes minus the one-hot, over the kept count (>= 5): at most 8 roundings
    # of values in [0, 1].
    np.testing.assert_allclose(grad, want, atol=gamma(8))


def test_plain_loss_ignores_void_and_subsamples_like_the_paper():
    labels = np.full((1, 504, 504), 255, np.int32)
    labels[0, 4::8, 4::8] = 1  # only the sub-sampled grid carries labels
    logits = np.zeros((1, 63, 63, 3), np.float32)
    logits[..., 1] = 5.0
    sub = losses.subsample_labels(tf.constant(labels), tf.constant([63, 63]), 8).numpy()
    assert sub.shape == (1, 63, 63) and (sub == 1).all()
    loss = losses.segmentation_loss(labels, logits).numpy()
    # float32 mean of 63 x 63 equal terms: the summation bound of that many terms.
    np.testing.assert_allclose(loss, -np.log(_np_softmax(np.array([0, 5.0, 0]))[1]),
                               rtol=dot_rtol(63 * 63) + gamma(8))
    # Odd sizes: the label grid is padded with the ignore label to the logits size.
    sub = losses.subsample_labels(tf.zeros((1, 505, 505), tf.int32), tf.constant([64, 64]), 8)
    assert sub.shape == (1, 64, 64) and (sub.numpy()[0, -1] == 255).all()
    with pytest.raises(ValueError, match="label_resolution"):
        losses.segmentation_loss(labels, logits, label_resolution="nearest")


def test_confusion_matrix_and_scores_match_numpy():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, size=(3, 20, 20))
    labels[0, :5] = 255
    preds = np.where(rng.random((3, 20, 20)) < 0.7, labels, rng.integers(0, 4, (3, 20, 20)))
    preds[labels == 255] = 0
    cm = metrics.confusion_matrix(labels, preds, 4).numpy()
    valid = labels != 255
    want = np.zeros((4, 4), np.int64)
    np.add.at(want, (labels[valid], preds[valid]), 1)
    np.testing.assert_array_equal(cm, want)
    scores = metrics.segmentation_scores(cm, ["a", "b", "c", "d"])
    ious = [((labels == c) & (preds == c) & valid).sum() /
            (((labels == c) | (preds == c)) & valid).sum() for c in range(4)]
    assert scores["mean_iou"] == pytest.approx(np.mean(ious))
    assert scores["per_class_iou"]["c"] == pytest.approx(ious[2])
    assert scores["pixel_accuracy"] == pytest.approx((labels == preds)[valid].mean())
    table = metrics.format_segmentation_table(scores)
    assert "mIoU" in table and "d" in table


def test_absent_class_is_left_out_of_the_mean():
    cm = np.array([[5, 0, 0], [0, 5, 0], [0, 0, 0]])
    scores = metrics.segmentation_scores(cm)
    assert scores["mean_iou"] == 1.0 and scores["per_class_iou"]["2"] is None


def test_topk_hits():
    logits = np.array([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.2, 0.3, 0.5]], np.float32)
    counts = metrics.topk_hits(np.array([1, 1, 0]), logits, ks=(1, 2)).numpy()
    np.testing.assert_array_equal(counts, [1, 2, 3])
    assert metrics.classification_scores(counts, ks=(1, 2))["top2"] == pytest.approx(2 / 3)


def test_schedules_and_gradient_adjustments():
    # Schedules evaluate a handful of float32 operations: gamma(8) relative.
    f32 = gamma(8)
    lin = build_schedule(OptimizerConfig(learning_rate=0.1, schedule="linear"), 100)
    end = OptimizerConfig().end_learning_rate  # the decay ends here, not at 0
    assert float(lin(0)) == pytest.approx(0.1, rel=f32)
    assert float(lin(50)) == pytest.approx(0.1 - (0.1 - end) * 0.5, rel=f32)
    assert float(lin(100)) == pytest.approx(end, rel=f32)
    warm = build_schedule(OptimizerConfig(learning_rate=0.1, warmup_steps=10), 100)
    assert float(warm(5)) == pytest.approx(5 / 10 * (0.1 - (0.1 - end) * 5 / 100), rel=f32)
    step = build_schedule(OptimizerConfig(learning_rate=1.0, schedule="step",
                                          boundaries=[10], step_values=[1.0, 0.1]), 100)
    assert float(step(5)) == 1.0 and float(step(20)) == pytest.approx(0.1, rel=f32)
    with pytest.raises(ValueError, match="step_values"):
        build_schedule(OptimizerConfig(schedule="step", boundaries=[1], step_values=[1.0]), 10)

    import keras
    dense = keras.layers.Dense(2)
    dense.build((None, 3))
    bn = keras.layers.BatchNormalization()
    bn.build((None, 2))
    variables = [dense.kernel, dense.bias, bn.gamma, bn.beta]
    grads = [tf.ones_like(v.value) for v in variables]
    cfg = OptimizerConfig(weight_decay=0.5, bias_lr_multiplier=2.0)
    out = adjust_gradients(grads, variables, cfg)
    np.testing.assert_allclose(out[0], 1 + 0.5 * dense.kernel.numpy())
    np.testing.assert_allclose(out[1], 2.0)   # bias: lr x2, no decay
    np.testing.assert_allclose(out[2], 1 + 0.5 * bn.gamma.numpy())
    np.testing.assert_allclose(out[3], 2.0)   # beta: lr x2, no decay
