"""Residual units against a NumPy reference of the authors' ademxapp ``util/symbol/resnet_v2.py``
units (pre-activation, shared BN-ReLU, stride on the first conv, MXNet padding, dilation rule,
dropout position)."""

import numpy as np
import pytest
import tensorflow as tf

import keras
from keras_wideresnet.layers import (
    BN_EPSILON,
    FrozenStatsBatchNormalization,
    PathGate,
    PreActResidualUnit,
    conv_padding,
)
from tests.tolerances import conv_depth_and_reduction, gamma, net_rtol


def _unit_atol(unit, want) -> float:
    """float32 unit against the float64 reference: the network bound of the unit's convolutions,
    against the output's scale."""
    class _Weights:  # conv_depth_and_reduction reads ``.weights``
        weights = unit.weights
    return net_rtol(*conv_depth_and_reduction(_Weights)) * float(np.abs(want).max())


def _np_conv(x, kernel, stride, dilation):
    """Direct NCHW-free conv with MXNet symmetric padding, no bias."""
    k = kernel.shape[0]
    p = conv_padding(k, dilation)
    x = np.pad(x, [(0, 0), (p, p), (p, p), (0, 0)])
    n, h, w, _ = x.shape
    span = (k - 1) * dilation + 1
    oh, ow = (h - span) // stride + 1, (w - span) // stride + 1
    out = np.zeros((n, oh, ow, kernel.shape[-1]))
    for i in range(k):
        for j in range(k):
            patch = x[:, i * dilation: i * dilation + stride * (oh - 1) + 1: stride,
                      j * dilation: j * dilation + stride * (ow - 1) + 1: stride, :]
            out += patch @ kernel[i, j]
    return out


def _np_bn_relu(x, gamma, beta, mean, var):
    return np.maximum((x - mean) / np.sqrt(var + BN_EPSILON) * gamma + beta, 0.0)


def _randomize(unit, rng):
    for w in unit.weights:
        if "moving_variance" in w.path:
            w.assign(rng.uniform(0.5, 2.0, w.shape))
        else:
            w.assign(rng.normal(0, 0.3, w.shape))


def _reference(unit, x):
    subs = unit.named_sublayers
    u = unit.unit_id
    tags = ["branch2a", "branch2b1", "branch2b2"][: len(unit.filters)]
    h = x
    shortcut = x
    for i, tag in enumerate(tags):
        bn = subs[f"bn{u}_{tag}"]
        h = _np_bn_relu(h, *[w.numpy() for w in bn.weights])
        if i == 0 and unit.projection:
            shortcut = _np_conv(h, subs[f"res{u}_branch1"].kernel.numpy(), unit.strides, 1)
        conv = subs[f"res{u}_{tag}"]
        kernel = conv.kernel.numpy()
        dil = 1 if kernel.shape[0] == 1 else (unit.first_dilation if i == 0 else unit.dilation)
        h = _np_conv(h, kernel, unit.strides if i == 0 else 1, dil)
    return shortcut + h


@pytest.mark.parametrize(
    "unit_type,filters,strides,dilation,first_dilation,size",
    [
        ("basic", (6, 6), 1, 1, 1, 9),
        ("basic", (6, 8), 2, 1, 1, 10),   # even input, stride 2: MXNet pads (1, 1)
        ("basic", (6, 8), 2, 1, 1, 9),
        ("basic", (6, 8), 1, 2, 1, 11),   # the unit that lost its stride: d1 then d2
        ("bottleneck", (4, 6, 8), 2, 1, 1, 10),
        ("bottleneck", (4, 6, 8), 1, 4, 2, 12),
    ],
)
def test_unit_matches_numpy_reference(unit_type, filters, strides, dilation, first_dilation, size):
    rng = np.random.default_rng(0)
    unit = PreActResidualUnit("3a", unit_type, filters, strides=strides, dilation=dilation,
                              first_dilation=first_dilation, projection=True)
    x = rng.normal(size=(2, size, size, 5)).astype("float32")
    unit(x)
    _randomize(unit, rng)
    got = unit(x, training=False).numpy()
    want = _reference(unit, x)
    assert got.shape == want.shape == (2, (size - 1) // strides + 1, (size - 1) // strides + 1,
                                       filters[-1])
    np.testing.assert_allclose(got, want, atol=_unit_atol(unit, want))


def test_identity_unit_adds_raw_input_and_names_follow_ademxapp():
    rng = np.random.default_rng(1)
    unit = PreActResidualUnit("4b2", "basic", (8, 8))
    x = rng.normal(size=(1, 6, 6, 8)).astype("float32")
    unit(x)
    _randomize(unit, rng)
    want = _reference(unit, x)
    np.testing.assert_allclose(unit(x).numpy(), want, atol=_unit_atol(unit, want))
    assert unit.name == "res4b2"
    assert sorted(unit.named_sublayers) == ["bn4b2_branch2a", "bn4b2_branch2b1",
                                            "res4b2_branch2a", "res4b2_branch2b1"]


def test_identity_unit_rejects_channel_change():
    with pytest.raises(ValueError, match="identity shortcut"):
        PreActResidualUnit("2b1", "basic", (8, 8))(np.zeros((1, 8, 8, 4), "float32"))


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="unit_type"):
        PreActResidualUnit("2a", "triple", (4, 4))
    with pytest.raises(ValueError, match="filter sizes"):
        PreActResidualUnit("2a", "bottleneck", (4, 4))
    with pytest.raises(ValueError, match="dropout"):
        PreActResidualUnit("2a", "basic", (4, 4), dropout=1.5)


def test_dropout_sits_before_the_last_conv_only():
    unit = PreActResidualUnit("6a", "bottleneck", (4, 4, 8), projection=True, dropout=0.5)
    x = np.random.default_rng(2).normal(size=(1, 5, 5, 3)).astype("float32")
    unit(x)
    # Inference is deterministic; training differs only through dropout.
    np.testing.assert_allclose(unit(x, training=False), unit(x, training=False))
    calls = []
    original = unit.dropout_layer.call
    unit.dropout_layer.call = lambda t, training=None: calls.append(t.shape) or original(t, training)
    unit(x, training=True)
    assert calls == [(1, 5, 5, 4)]  # input of the last 1x1 conv (width of branch2b1)


def test_bn_constants_and_frozen_stats():
    unit = PreActResidualUnit("2a", "basic", (4, 4), projection=True, bn_mode="frozen_stats")
    x = np.random.default_rng(3).normal(3.0, 2.0, size=(4, 6, 6, 3)).astype("float32")
    unit(x)
    bn = unit.named_sublayers["bn2a_branch2a"]
    assert isinstance(bn, FrozenStatsBatchNormalization)
    assert bn.epsilon == pytest.approx(1.001e-5) and bn.momentum == pytest.approx(0.9)
    # Frozen statistics: training=True output equals inference output; gamma still trainable.
    want = unit(x, training=False).numpy()
    np.testing.assert_allclose(unit(x, training=True), want, atol=_unit_atol(unit, want))
    assert bn.gamma.trainable


def test_recompute_gives_same_values_and_gradients():
    rng = np.random.default_rng(4)
    x = tf.constant(rng.normal(size=(2, 8, 8, 3)).astype("float32"))
    plain = PreActResidualUnit("5a", "basic", (4, 6), strides=2, projection=True)
    remat = PreActResidualUnit("5a", "basic", (4, 6), strides=2, projection=True, recompute=True)
    plain(x), remat(x)
    remat.set_weights(plain.get_weights())
    grads = []
    for unit in (plain, remat):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(unit(x, training=True)))
        grads.append(tape.gradient(loss, unit.trainable_variables))
    for a, b in zip(*grads):  # recomputation may round the forward pass differently
        np.testing.assert_allclose(a, b, atol=_unit_atol(plain, b.numpy()))


def test_path_gate_changes_gradient_not_value():
    rng = np.random.default_rng(5)
    x = tf.constant(rng.normal(size=(1, 6, 6, 4)).astype("float32"))
    unit = PreActResidualUnit("3b1", "basic", (4, 4))
    unit(x)
    gate = keras.Variable(1.0, trainable=False)
    grads, values = {}, {}
    for mode in (None, 1.0, 0.0):
        unit.set_path_gate(None if mode is None else PathGate(gate))
        if mode is not None:
            gate.assign(mode)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = unit(x)
            loss = tf.reduce_sum(y * y)
        values[mode], grads[mode] = y.numpy(), tape.gradient(loss, x).numpy()
    unit.set_path_gate(None)
    np.testing.assert_allclose(values[1.0], values[None])
    np.testing.assert_allclose(values[0.0], values[None])
    # Identity shortcut: gradient through the skip alone is dL/dy; both paths add up to the total.
    # d(y.y)/dy = 2y: one rounding of the doubled product at most.
    np.testing.assert_allclose(grads[0.0], 2 * values[None], rtol=gamma(2))
    atol = _unit_atol(unit, grads[None]) * 2  # two backward passes summed, against the whole
    np.testing.assert_allclose(grads[0.0] + grads[1.0], grads[None], atol=atol)
    assert unit.weights == unit.weights and not any("gate" in w.path for w in unit.weights)


def test_unit_config_round_trip():
    unit = PreActResidualUnit("6a", "bottleneck", (4, 6, 8), strides=2, dilation=2,
                              first_dilation=1, projection=True, dropout=0.3, bn_mode="frozen")
    clone = PreActResidualUnit.from_config(unit.get_config())
    assert clone.get_config() == unit.get_config()
