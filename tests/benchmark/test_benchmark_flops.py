"""FLOP counting from layer calls vs hand counts and TF's graph profiler."""

import keras
import pytest

from tools.benchmarking import flops


class _Nested(keras.layers.Layer):
    """A layer whose convolution is only reachable as a sub-layer (like the residual units),
    listed by ``sublayers()`` as keras_wideresnet.layers.iter_layers expects."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.conv = keras.layers.Conv2D(6, 3, strides=2, padding="same", name="inner_conv")
        self.bn = keras.layers.BatchNormalization(name="inner_bn")

    def sublayers(self):
        return [self.bn, self.conv]

    def call(self, x, training=None):
        return self.conv(keras.ops.relu(self.bn(x, training=training)))


def _model():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="c1")(inputs)
    x = _Nested(name="unit")(x)
    x = keras.layers.Conv2D(6, 3, padding="same", dilation_rate=2, use_bias=False, name="dil")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(5, name="fc")(x))


def test_count_matches_hand_count_including_nested_and_dilated_layers():
    count = flops.count_flops(_model(), (8, 8, 3))
    hand = {
        "c1": 2 * 8 * 8 * 4 * 3 * 3 * 3,
        "inner_conv": 2 * 4 * 4 * 6 * 3 * 3 * 4,  # stride 2 → 4×4 outputs
        "dil": 2 * 4 * 4 * 6 * 3 * 3 * 6,
        "fc": 2 * 6 * 5,
    }
    assert count.per_layer == hand
    assert count.conv_dense == sum(hand.values())
    assert count.elementwise == 2 * 8 * 8 * 4  # the BN before inner_conv


def test_count_does_not_leave_hooks_behind():
    model = _model()
    flops.count_flops(model, (8, 8, 3))
    assert all("call" not in vars(layer) for layer in model._flatten_layers())


def test_profiler_cross_check_on_resnet38():
    from keras_wideresnet.applications import ResNet38

    model = ResNet38(width_multiplier=1 / 32, input_shape=(32, 32, 3), classes=10, classifier_activation=None)
    count = flops.count_flops(model, (32, 32, 3))
    assert "res2a_branch2a" in count.per_layer and "linear10" in count.per_layer
    profiled = flops.profiler_flops(model, (32, 32, 3))
    # A count, not rounding: TF's profiler also counts BN, ReLU and the residual adds, which are
    # under 2 % of the convolutions' multiply-adds.
    assert profiled == pytest.approx(count.conv_dense, rel=0.02)


def test_bad_input_shape_is_named():
    with pytest.raises(ValueError, match="input_shape"):
        flops.count_flops(_model(), (8, 8))
