"""Fixtures of the path-analysis tests: tiny models built from PreActResidualUnit layers."""

import keras
import numpy as np
import pytest

from keras_wideresnet.layers import PreActResidualUnit


def tiny_residual_model(bn_mode: str = "train", classes: int = 3, size: int = 16) -> keras.Model:
    """Stem conv + 4 residual units (projection/identity, basic/bottleneck, strided) + head."""
    inputs = keras.Input((size, size, 3), name="image")
    x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False, name="conv1a")(inputs)
    x = PreActResidualUnit("2a", "basic", (6, 6), strides=2, projection=True, bn_mode=bn_mode)(x)
    x = PreActResidualUnit("2b1", "basic", (6, 6), bn_mode=bn_mode)(x)
    x = PreActResidualUnit("3a", "bottleneck", (4, 6, 8), strides=2, projection=True,
                           bn_mode=bn_mode)(x)
    x = PreActResidualUnit("3b1", "bottleneck", (4, 6, 8), dilation=2, bn_mode=bn_mode)(x)
    x = keras.layers.BatchNormalization(name="bn7")(x)
    x = keras.layers.Activation("relu", name="relu7")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool7")(x)
    outputs = keras.layers.Dense(classes, name=f"linear{classes}")(x)
    return keras.Model(inputs, outputs, name="tiny_resnet")


def randomize_bn_statistics(model: keras.Model, seed: int = 0) -> None:
    """Non-trivial BN moving statistics, γ and β, so inference-mode BN is not an identity."""
    rng = np.random.default_rng(seed)
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.gamma.assign(rng.uniform(0.5, 1.5, c).astype("float32"))
            layer.beta.assign(rng.normal(0, 0.2, c).astype("float32"))
            layer.moving_mean.assign(rng.normal(0, 0.2, c).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 1.5, c).astype("float32"))


@pytest.fixture
def tiny_model():
    keras.utils.set_random_seed(1)
    model = tiny_residual_model()
    randomize_bn_statistics(model)
    return model


@pytest.fixture
def tiny_batch():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 16, 16, 3)).astype("float32")
    y = np.array([0, 1, 2, 1], dtype="int32")
    return x, y


@pytest.fixture
def tiny_model_factory():
    """The builder itself (for variants: BN mode, nesting)."""
    def build(bn_mode: str = "train", seed: int = 1) -> keras.Model:
        keras.utils.set_random_seed(seed)
        model = tiny_residual_model(bn_mode=bn_mode)
        randomize_bn_statistics(model, seed)
        return model
    return build
