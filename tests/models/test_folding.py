"""BN folding for inference (keras_wideresnet.models.folding)."""

import keras
import numpy as np
import pytest

from keras_wideresnet.applications import ResNet38, ResNet38Segmenter
from keras_wideresnet.layers import ChannelAffine, PreActResidualUnit
from keras_wideresnet.models import fold_batch_norm
from tests.tolerances import conv_depth_and_reduction, net_rtol


def max_abs_difference(a, b, inputs) -> float:
    """Largest absolute difference of two models' outputs on ``inputs`` (inference mode)."""
    out_a = keras.ops.convert_to_numpy(a(inputs, training=False)).astype("float64")
    return float(np.max(np.abs(out_a - keras.ops.convert_to_numpy(b(inputs, training=False)))))


def _randomise_bn(model, seed=0):
    """Non-trivial BN statistics and affine parameters, so that folding has work to do."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        if any(k in w.path for k in ("moving_variance", "gamma")):
            w.assign(rng.uniform(0.5, 2.0, w.shape))
        elif any(k in w.path for k in ("moving_mean", "beta")):
            w.assign(rng.normal(0.0, 0.5, w.shape))


def _bn_layers(model):
    out = [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]
    for unit in (l for l in model.layers if isinstance(l, PreActResidualUnit)):
        out += [l for l in unit.named_sublayers.values() if isinstance(l, keras.layers.BatchNormalization)]
    return out


def test_folded_classifier_equals_the_original():
    keras.utils.set_random_seed(0)
    model = ResNet38(weights=None, input_shape=(48, 48, 3), width_multiplier=1 / 16, classes=7,
                     classifier_activation=None, variant="a1")
    _randomise_bn(model)
    x = np.random.default_rng(1).normal(size=(2, 48, 48, 3)).astype("float32")
    before = keras.ops.convert_to_numpy(model(x, training=False))
    folded = fold_batch_norm(model)

    # Folding only rounds differently (gamma / sigma multiplied into the kernels): the network
    # bound, against the output's own scale (the BN statistics here are deliberately wild).
    scale = float(np.abs(before).max())
    assert max_abs_difference(model, folded, x) <= net_rtol(*conv_depth_and_reduction(model)) * scale
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model(x, training=False)), before)  # untouched
    assert _bn_layers(model) and not _bn_layers(folded)
    assert [l.name for l in folded.layers] == [l.name for l in model.layers]
    assert isinstance(folded.get_layer("bn7"), ChannelAffine)
    unit = folded.get_layer("res4b1")
    assert set(unit.named_sublayers) == {"bn4b1_branch2a", "res4b1_branch2a", "res4b1_branch2b1"}
    assert unit.named_sublayers["res4b1_branch2a"].use_bias  # bn4b1_branch2b1 folded into it
    assert not unit.named_sublayers["res4b1_branch2b1"].use_bias
    assert not folded.trainable_weights


def test_folded_atrous_segmenter_with_bottlenecks_equals_the_original():
    # Seeded: with random BN statistics some initialisations overflow float32 in 38 layers.
    keras.utils.set_random_seed(0)
    model = ResNet38Segmenter(num_classes=5, input_shape=(64, 64, 3), width_multiplier=1 / 16,
                              head_filters=16)
    _randomise_bn(model, seed=2)
    folded = fold_batch_norm(model)
    x = np.random.default_rng(3).normal(size=(1, 64, 64, 3)).astype("float32")
    out = keras.ops.convert_to_numpy(model(x, training=False))
    assert np.isfinite(out).all()
    bound = net_rtol(*conv_depth_and_reduction(model)) * float(np.abs(out).max())  # as above
    assert max_abs_difference(model, folded, x) <= bound
    b7 = folded.get_layer("res7a").named_sublayers  # bottleneck: two BNs folded into convs
    assert b7["res7a_branch2a"].use_bias and b7["res7a_branch2b1"].use_bias
    assert not b7["res7a_branch2b2"].use_bias and "res7a_branch1" in b7


def test_folded_bfloat16_model_stays_close():
    model = ResNet38(weights=None, input_shape=(32, 32, 3), width_multiplier=1 / 16, classes=5,
                     classifier_activation=None)
    _randomise_bn(model, seed=4)
    keras.mixed_precision.set_dtype_policy("mixed_bfloat16")
    try:
        model_bf16 = ResNet38(weights=None, input_shape=(32, 32, 3), width_multiplier=1 / 16, classes=5,
                              classifier_activation=None)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    model_bf16.set_weights(model.get_weights())
    folded = fold_batch_norm(model_bf16)
    assert folded.get_layer("bn7").compute_dtype == "bfloat16"
    x = np.random.default_rng(5).normal(size=(4, 32, 32, 3)).astype("float32")
    want = keras.ops.convert_to_numpy(model(x, training=False))
    got = keras.ops.convert_to_numpy(folded(x, training=False)).astype("float32")
    assert np.abs(got - want).max() <= 0.05 * np.abs(want).max()

    # Weights stored in bfloat16 (no per-call casts) give what the mixed policy computes by
    # casting float32 weights on every call; the float32 logits layer keeps its policy.
    mixed = fold_batch_norm(model_bf16, weights_in_compute_dtype=False)
    assert mixed.get_layer("res3a").weights[0].dtype == "float32"
    unit = folded.get_layer("res3a")
    assert unit.weights and all(w.dtype == "bfloat16" for w in unit.weights)
    assert folded.get_layer("conv1a").kernel.dtype == "bfloat16"
    head = folded.get_layer("linear5")
    assert head.kernel.dtype == "float32" and head.compute_dtype == "float32"
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(folded(x, training=False)),
                                  keras.ops.convert_to_numpy(mixed(x, training=False)))


def test_fold_rejects_non_functional_models():
    with pytest.raises(ValueError, match="functional model"):
        fold_batch_norm(keras.Sequential([keras.layers.Dense(2)]))
