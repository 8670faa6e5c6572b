"""TF's fused BN kernel against Keras' BatchNormalization: same outputs, gradients and moving
statistics; only plain training-mode BN is switched; nothing about the model changes."""

import numpy as np
import pytest
import tensorflow as tf
import keras

from keras_wideresnet import applications
from keras_wideresnet.layers import BN_EPSILON, BN_MOMENTUM, FrozenStatsBatchNormalization
from keras_wideresnet.models.spec import get_spec
from keras_wideresnet.training.fused_batch_norm import use_fused_batch_norm
from tests.tolerances import U16, UBF16, conv_depth_and_reduction, net_rtol

# Inputs of the layer-level test: mean 3, std 2 over 60 values per channel (3 x 5 x 4).
_MEAN, _STD, _PER_CHANNEL = 3.0, 2.0, 60
# float32: BN is a short chain of reductions over the 60 values (mean, variance, then the
# gradient's two means). Off-centre inputs cost digits in the variance: a factor
# (mean^2 + std^2) / std^2.
_F32_TOL = (_MEAN ** 2 + _STD ** 2) / _STD ** 2 * net_rtol(depth=4, reduction=_PER_CHANNEL)


@pytest.fixture
def policy(request):
    keras.config.set_dtype_policy(request.param)
    yield request.param
    keras.config.set_dtype_policy("float32")


def _bn_pair(channels: int):
    rng = np.random.default_rng(1)
    layers = []
    for _ in range(2):
        bn = keras.layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM)
        bn.build((None, None, None, channels))
        layers.append(bn)
    weights = [rng.uniform(0.5, 2.0, channels), rng.normal(size=channels),
               rng.normal(size=channels), rng.uniform(0.5, 2.0, channels)]
    for bn in layers:
        bn.set_weights([w.astype("float32") for w in weights])
    assert use_fused_batch_norm(layers[1]) == 1
    return layers


def _train_call(bn, x, upstream, compiled):
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = bn(x, training=True)
            loss = tf.reduce_sum(tf.cast(y, tf.float32) * upstream)
        return [y, *tape.gradient(loss, [x, bn.gamma.value, bn.beta.value])]

    fn = tf.function(step) if compiled else step
    out = fn(x)
    return [np.asarray(tf.cast(t, tf.float32)) for t in out] + [bn.moving_mean.numpy(),
                                                               bn.moving_variance.numpy()]


@pytest.mark.parametrize("compiled", [False, True])
# 16-bit policies: both implementations compute in float32 and round the output and d input to
# the 16-bit format, where they may differ by one ulp (2u) of a value near a rounding boundary;
# d gamma and d beta sum such terms. 5u (bfloat16) and 4u (float16) of the scale max(1, |ref|)
# cover that, and a wrong formula still misses by far more.
@pytest.mark.parametrize("policy,tol", [("float32", _F32_TOL), ("mixed_bfloat16", 5 * UBF16),
                                        ("mixed_float16", 4 * U16)], indirect=["policy"])
def test_fused_training_matches_keras(policy, tol, compiled):
    keras_bn, fused_bn = _bn_pair(6)
    rng = np.random.default_rng(2)
    # Off-centre inputs: a wrong variance formula or mean would show.
    x = tf.cast(rng.normal(_MEAN, _STD, size=(3, 5, 4, 6)).astype("float32"), keras_bn.compute_dtype)
    upstream = tf.constant(rng.normal(size=(3, 5, 4, 6)).astype("float32"))
    ref = _train_call(keras_bn, x, upstream, compiled)
    got = _train_call(fused_bn, x, upstream, compiled)
    names = ["output", "d input", "d gamma", "d beta", "moving mean", "moving variance"]
    for name, a, b in zip(names, got, ref):
        scale = max(1.0, float(np.abs(b).max()))
        np.testing.assert_allclose(a, b, atol=tol * scale, err_msg=name)
    # The moving statistics carry float32 batch statistics in either precision: the float32
    # tolerance, against each statistic's own scale.
    for a, b in zip(got[4:], ref[4:]):
        np.testing.assert_allclose(a, b, rtol=_F32_TOL, atol=_F32_TOL * float(np.abs(b).max()))
    assert got[0].dtype == ref[0].dtype


def test_inference_and_frozen_layers_use_keras_path():
    keras_bn, fused_bn = _bn_pair(4)
    x = tf.random.normal((2, 3, 3, 4), 1.0, 2.0, seed=3)
    np.testing.assert_array_equal(fused_bn(x, training=False), keras_bn(x, training=False))
    fused_bn.trainable = False  # bn_mode="frozen": moving statistics, nothing updates
    before = fused_bn.moving_mean.numpy()
    np.testing.assert_array_equal(fused_bn(x, training=True), keras_bn(x, training=False))
    np.testing.assert_array_equal(fused_bn.moving_mean.numpy(), before)


def test_only_plain_training_bn_is_switched():
    def make(cls=keras.layers.BatchNormalization, **kwargs):
        bn = cls(epsilon=kwargs.pop("epsilon", BN_EPSILON), **kwargs)
        bn.build((None, 4, 4, 3))
        return bn

    assert use_fused_batch_norm(make()) == 1
    for layer in (make(synchronized=True), make(renorm=True), make(epsilon=1e-6),
                  make(FrozenStatsBatchNormalization), make(axis=1), make(dtype="float64")):
        assert use_fused_batch_norm(layer) == 0, layer.get_config()


def _tiny(**kwargs):
    spec = get_spec("resnet38_a").scaled(1 / 16)
    return applications.WideResNet(spec, input_shape=(64, 64, 3), classes=5,
                                   classifier_activation=None, **kwargs)


def _loss_and_grads(model, x, labels):
    with tf.GradientTape() as tape:
        logits = model(x, training=True)
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))
    grads = tape.gradient(loss, model.trainable_variables)
    return float(loss), [np.asarray(g, np.float64) for g in grads]


def _relative_errors(grads, truth):
    return np.array([np.abs(g - t).max() / np.abs(t).max() for g, t in zip(grads, truth)])


@pytest.mark.parametrize("recompute", [False, True])
def test_model_training_step_against_float64(tmp_path, recompute):
    """A whole model's training step, against Keras' BN in float64 as the truth. In the deep
    stages the batch statistics cover few pixels and BN's backward pass cancels, so both float32
    models lose digits there to the same convolution roundings; the fused kernel is held to
    Keras BN's accuracy, not to a fixed number."""
    keras.utils.set_random_seed(0)
    keras_bn = _tiny(recompute=recompute)
    fused = _tiny(recompute=recompute)
    fused.set_weights(keras_bn.get_weights())
    n_bn = sum(isinstance(layer, keras.layers.BatchNormalization) for layer in fused._flatten_layers())
    assert use_fused_batch_norm(fused) == n_bn == 37
    assert use_fused_batch_norm(fused) == n_bn  # idempotent
    keras.config.set_dtype_policy("float64")
    try:
        truth = _tiny(recompute=recompute)
    finally:
        keras.config.set_dtype_policy("float32")
    truth.set_weights(keras_bn.get_weights())

    x = tf.random.uniform((4, 64, 64, 3), seed=4)
    labels = tf.constant([0, 1, 2, 3])
    true_loss, true_grads = _loss_and_grads(truth, tf.cast(x, tf.float64), labels)
    keras_loss, keras_grads = _loss_and_grads(keras_bn, x, labels)
    loss, grads = _loss_and_grads(fused, x, labels)
    # Both float32 models share every convolution, whose rounding sets the loss's error: the
    # fused model's error is at most twice Keras BN's, or within the float32 bound of the
    # network where both happen to land closer.
    depth, reduction = conv_depth_and_reduction(fused)
    rtol = net_rtol(depth, reduction)
    keras_loss_err = abs(keras_loss - true_loss)
    assert abs(loss - true_loss) <= max(2 * keras_loss_err, rtol * abs(true_loss)), (loss, true_loss)
    # Gradients: the shared convolution roundings, amplified by the cancellation in BN's backward
    # pass, dominate both models' errors; the two differ only by BN's own rounding and may land
    # on either side of each other. So the fused kernel's errors, against float64, are held to at
    # most twice Keras BN's, over the variables and at the worst one. A wrong formula (a missing
    # mean term, a biased variance) costs O(1) relative error and fails.
    fused_err, keras_err = _relative_errors(grads, true_grads), _relative_errors(keras_grads, true_grads)
    assert np.median(fused_err) <= 2 * np.median(keras_err), (fused_err, keras_err)
    assert fused_err.max() <= 2 * keras_err.max(), (fused_err, keras_err)
    # Moving statistics are means of float32 activations: the network's bound, per variable.
    for a, b in zip(fused.non_trainable_weights, truth.non_trainable_weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=rtol,
                                   atol=rtol * float(np.abs(b.numpy()).max()), err_msg=a.path)

    # Class, config and the saved model are Keras' own: a reload runs Keras' BN.
    assert fused.get_config() == keras_bn.get_config()
    path = str(tmp_path / "m.keras")
    fused.save(path)
    loaded = keras.models.load_model(path)
    bn = loaded.get_layer("bn7")
    assert type(bn) is keras.layers.BatchNormalization and "call" not in vars(bn)
    want = fused(x, training=False)
    np.testing.assert_allclose(loaded(x, training=False), want,
                               atol=rtol * float(np.abs(want).max()))
