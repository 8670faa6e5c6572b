"""iter_layers reaches every layer Keras tracks, through public accessors only."""

import keras
import pytest

from keras_wideresnet.applications import ResNet38, ResNet38Segmenter
from keras_wideresnet.layers import PreActResidualUnit, iter_layers
from keras_wideresnet.models import fold_batch_norm


def _tracked(model):
    # Keras' own (private) tracking is the oracle the public walk must agree with.
    return {id(layer): layer for layer in model._flatten_layers(include_self=False, recursive=True)}


@pytest.mark.parametrize("build", [
    lambda: ResNet38(weights=None, input_shape=(32, 32, 3), classes=3, width_multiplier=1 / 32),
    lambda: ResNet38(weights=None, input_shape=(32, 32, 3), classes=3, width_multiplier=1 / 32,
                     variant="a1"),
    lambda: ResNet38Segmenter(4, input_shape=(32, 32, 3), width_multiplier=1 / 32),
    lambda: fold_batch_norm(ResNet38Segmenter(4, input_shape=(32, 32, 3), width_multiplier=1 / 32)),
    lambda: keras.applications.ResNet50V2(weights=None, input_shape=(32, 32, 3), classes=3),
], ids=["resnet38_a", "resnet38_a1", "segmenter", "segmenter_folded", "keras_resnet50v2"])
def test_iter_layers_finds_every_tracked_layer_once(build):
    model = build()
    walked = list(iter_layers(model))
    assert len({id(layer) for layer in walked}) == len(walked)  # each once
    assert {id(layer) for layer in walked} == set(_tracked(model))
    assert list(iter_layers(model, include_self=True))[0] is model


def test_unit_sublayers_cover_its_tracked_layers():
    unit = PreActResidualUnit("2a", "bottleneck", (4, 4, 8), strides=2, projection=True, dropout=0.3)
    unit.build((None, 8, 8, 4))
    names = [layer.name for layer in unit.sublayers()]
    assert names == ["bn2a_branch2a", "res2a_branch2a", "bn2a_branch2b1", "res2a_branch2b1",
                     "bn2a_branch2b2", "res2a_branch2b2", "res2a_branch1", "drop2a"]
    assert {id(layer) for layer in unit.sublayers()} == set(_tracked(unit))
