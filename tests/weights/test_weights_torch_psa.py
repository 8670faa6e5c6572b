"""Optional: the psa / 1-stage-wseg PyTorch ``.pth`` of Model A1."""

import os
import re

import numpy as np
import pytest

from keras_wideresnet.applications import ResNet38
from keras_wideresnet.weights import (
    convert,
    load_ademxapp,
    psa_to_ademxapp_key,
    read_params,
    read_psa_pth,
)

torch = pytest.importorskip("torch")  # an optional dependency (extras "test" installs it)

CLS_PARAMS = os.path.join(os.path.dirname(__file__), "fixtures", "cls_rna-a1_cls10.params")
WM = 1 / 32


def _psa_key(key: str) -> str | None:
    """psa's ``convert_mxnet_to_torch`` naming, written out as the inverse mapping."""
    kind, name = key.split(":")
    if name.startswith("linear"):
        return None  # psa drops the classifier
    m = re.match(r"^(bn|res)(\d)(a|b\d+)_(branch\w+?)_(weight|gamma|beta|moving_mean|moving_var)$",
                 name)
    if m:
        op, level, unit, tag, suffix = m.groups()
        block = f"b{level}" if unit == "a" else f"b{level}_{unit[1:]}"
        torch_suffix = {"weight": "weight", "gamma": "weight", "beta": "bias",
                        "moving_mean": "running_mean", "moving_var": "running_var"}[suffix]
        return f"{block}.{'conv' if op == 'res' else 'bn'}_{tag}.{torch_suffix}"
    layer, suffix = name.split("_", 1)
    return f"{layer}." + {"weight": "weight", "gamma": "weight", "beta": "bias",
                          "moving_mean": "running_mean", "moving_var": "running_var"}[suffix]


def test_psa_pth_gives_the_same_backbone_as_the_params_file(tmp_path):
    params = read_params(CLS_PARAMS)
    state = {k2: torch.from_numpy(v.astype(np.float32)) for k, v in params.items()
             if (k2 := _psa_key(k)) is not None}
    state["b2.bn_branch2a.num_batches_tracked"] = torch.tensor(0)
    assert "b4_5.conv_branch2b1.weight" in state and "bn7.running_var" in state
    path = tmp_path / "ilsvrc-cls_rna-a1_cls1000_ep-0001.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, path)

    backbone = ResNet38(variant="a1", include_top=False, width_multiplier=WM,
                        input_shape=(None, None, 3))
    report = convert(read_psa_pth(path), backbone)
    assert report.num_arrays == 193 - 2  # everything but linear{C}
    reference = load_ademxapp(CLS_PARAMS, width_multiplier=WM)
    for layer in backbone.layers:
        if layer.weights:
            for a, b in zip(layer.get_weights(), reference.get_layer(layer.name).get_weights()):
                np.testing.assert_array_equal(a, b)


def test_unknown_psa_keys_are_rejected():
    assert psa_to_ademxapp_key("b6.conv_branch2b2.weight") == "arg:res6a_branch2b2_weight"
    assert psa_to_ademxapp_key("b5_2.bn_branch2a.running_mean") == "aux:bn5b2_branch2a_moving_mean"
    assert psa_to_ademxapp_key("bn7.bias") == "arg:bn7_beta"
    with pytest.raises(ValueError, match="Unknown key 'fc8.weight'"):
        psa_to_ademxapp_key("fc8.weight")
