"""Family specs and the backbone builder: strides, dilation, pooling modes, endpoints."""

import numpy as np
import pytest

import keras
from keras_wideresnet.layers import PreActResidualUnit
from keras_wideresnet.models import (
    BlockSpec,
    FamilySpec,
    WideResNetBackbone,
    build_features,
    get_spec,
    list_specs,
    make_spec,
    register_spec,
)

TINY = 1 / 32


def _down(n, times, pad=1):
    for _ in range(times):
        n = (n + 2 * pad - 3) // 2 + 1
    return n


def test_presets_and_depths():
    assert {"resnet38_a", "resnet38_a1", "resnet38_a2", "resnet16_a1", "resnet20_a"} <= set(list_specs())
    assert get_spec("resnet38_a").depth == 38
    assert get_spec("resnet20_a1").depth == 20
    assert get_spec("resnet16_a2").depth == 16
    a2 = get_spec("resnet38_a2")
    assert [b.downsample for b in a2.blocks] == ["pool", "pool", "conv", "conv", "conv", "none"]
    assert [b.num_units for b in get_spec("resnet38_a1").blocks] == [3, 3, 6, 3, 1, 1]


@pytest.mark.parametrize("variant", ["a", "a1", "a2"])
@pytest.mark.parametrize("size", [321, 513])
@pytest.mark.parametrize("output_stride", [32, 16, 8])
def test_feature_sizes_at_odd_inputs(variant, size, output_stride):
    inputs = keras.Input((size, size, 3))
    ends = build_features(inputs, get_spec(f"resnet38_{variant}").scaled(TINY), output_stride)
    kept = int(np.log2(output_stride))
    expected = _down(size, kept)
    assert ends["features"].shape[1:3] == (expected, expected)
    assert ends["block7"].shape[1:3] == (expected, expected)
    # Each block's endpoint has the resolution after the reductions before it.
    spec = get_spec(f"resnet38_{variant}")
    seen = 0
    for block in spec.blocks:
        seen += block.downsample != "none"
        n = _down(size, min(seen, kept))
        assert ends[f"block{block.level}"].shape[1:3] == (n, n), block.level


def test_caffe_pooling_matches_released_model_a_sizes():
    inputs = keras.Input((320, 320, 3))
    spec = get_spec("resnet38_a").scaled(TINY).replace(pool_padding="caffe")
    ends = build_features(inputs, spec)
    assert [ends[f"block{i}"].shape[1] for i in range(2, 8)] == [159, 79, 39, 19, 9, 9]


def test_dilation_rule_at_output_stride_8_and_16():
    inputs = keras.Input((64, 64, 3))
    model = keras.Model(inputs, build_features(inputs, get_spec("resnet38_a1").scaled(TINY), 8))
    units = {l.name: l for l in model.layers if isinstance(l, PreActResidualUnit)}
    assert (units["res4a"].strides, units["res4a"].first_dilation, units["res4a"].dilation) == (2, 1, 1)
    assert (units["res5a"].strides, units["res5a"].first_dilation, units["res5a"].dilation) == (1, 1, 2)
    assert (units["res5b2"].first_dilation, units["res5b2"].dilation) == (2, 2)
    assert (units["res6a"].strides, units["res6a"].first_dilation, units["res6a"].dilation) == (1, 2, 4)
    assert (units["res7a"].first_dilation, units["res7a"].dilation) == (4, 4)
    assert all(units[f"res{u}"].projection for u in ("2a", "3a", "4a", "5a", "6a", "7a"))
    assert not any(units[f"res{u}"].projection for u in ("2b1", "4b5", "5b2"))

    inputs = keras.Input((64, 64, 3))
    model = keras.Model(inputs, build_features(inputs, get_spec("resnet38_a1").scaled(TINY), 16))
    units = {l.name: l for l in model.layers if isinstance(l, PreActResidualUnit)}
    assert (units["res5a"].strides, units["res5a"].dilation) == (2, 1)
    assert (units["res6a"].strides, units["res6a"].dilation) == (1, 2)


def test_model_a_output_stride_16_turns_pool5_into_stride_1():
    inputs = keras.Input((64, 64, 3))
    model = keras.Model(inputs, build_features(inputs, get_spec("resnet38_a").scaled(TINY), 16))
    assert model.get_layer("pool5").strides == (1, 1)
    assert model.get_layer("res6a").dilation == 2 and model.get_layer("res7a").dilation == 2


def test_max_pool_ignores_padding_like_mxnet():
    # All-negative input: zero padding would leak 0 into border maxima; MXNet ignores padding.
    inputs = keras.Input((6, 6, 1))
    from keras_wideresnet.models import max_pool
    model = keras.Model(inputs, max_pool(inputs, "pool1", 2, "pad1"))
    x = -1.0 - np.arange(36, dtype="float32").reshape(1, 6, 6, 1)
    out = model(x).numpy()[0, :, :, 0]
    assert out[0, 0] == -1.0 and (out < 0).all()


def test_bad_output_stride_and_spec_values():
    with pytest.raises(ValueError, match="output_stride"):
        build_features(keras.Input((32, 32, 3)), "resnet38_a1", output_stride=12)
    with pytest.raises(ValueError, match="downsample"):
        BlockSpec(level=2, num_units=1, unit_type="basic", filters=(4, 4), downsample="avg")
    with pytest.raises(ValueError, match="Unknown model spec"):
        get_spec("resnet1000")
    with pytest.raises(ValueError, match="already registered"):
        register_spec(get_spec("resnet38_a"))


def test_new_family_member_is_a_config_change():
    # A deeper-and-thinner member on 56x56 inputs with only 3 reductions: no new code.
    spec = make_spec("test_deeper_thinner", units=(4, 4, 8, 2, 1, 1),
                     downsample=("conv", "conv", "conv", "none", "none", "none"),
                     widths=((16, 16), (32, 32), (64, 64), (64, 128), (64, 128, 256),
                             (128, 256, 512)))
    assert spec.depth == 1 + 2 * 18 + 3 * 2 + 1
    backbone = WideResNetBackbone(spec, input_shape=(56, 56, 3))
    out = backbone(np.zeros((1, 56, 56, 3), "float32"))
    assert out["features"].shape == (1, 7, 7, 512)


def test_backbone_config_round_trip_and_spec_dict():
    backbone = WideResNetBackbone("resnet16_a1", input_shape=(48, 48, 3), output_stride=8,
                                  width_multiplier=TINY)
    clone = WideResNetBackbone.from_config(backbone.get_config())
    assert clone.count_params() == backbone.count_params()
    assert set(backbone.output) == {f"block{i}" for i in range(1, 8)} | {"features"}
    spec = get_spec("resnet38_a2")
    assert FamilySpec.from_dict(spec.to_dict()) == spec
