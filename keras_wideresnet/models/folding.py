"""Batch-norm folding for inference (docs/architecture.md §1.5).

In inference every BN is a per-channel affine map. In a pre-activation unit (docs/architecture.md §1.1)

* the BN *after* a branch conv (``bn{u}_branch2b1``, ``bn{u}_branch2b2``) folds into that conv:
  kernel × scale, plus a bias = offset;
* the unit's entry BN (``bn{u}_branch2a``, after the previous residual sum) and ``bn7`` cannot fold
  into a conv (the sum and the shortcut sit in between): they become :class:`ChannelAffine`, one
  multiply-add in the compute dtype instead of Keras BN's float32 round trip.

The folded model computes the same function (float32: equal to rounding error) with the same
layer names, so it is a drop-in replacement for serving and benchmarks; it is not for training.
Under a mixed policy (``mixed_bfloat16``) the folded weights are stored in the compute dtype: the
mixed model rounds its float32 weights to bfloat16 on every call anyway, so the outputs are the
same, without one cast per kernel per call.
"""

from __future__ import annotations

import copy

import keras

from keras_wideresnet.layers.residual_units import ChannelAffine, PreActResidualUnit, bn_as_affine

_BN_CLASSES = ("BatchNormalization", "FrozenStatsBatchNormalization")


def fold_batch_norm(model: keras.Model, weights_in_compute_dtype: bool = True) -> keras.Model:
    """A copy of a functional family model (classifier, backbone or segmenter) with every
    BatchNormalization folded for inference; ``model`` is left untouched.

    Args:
      model: The model to fold.
      weights_in_compute_dtype: Layers under a mixed policy (``mixed_bfloat16``,
        ``mixed_float16``) get the plain compute-dtype policy (``bfloat16``), so their folded
        weights are stored rounded once instead of cast on every call. Layers with another policy
        (the float32 logits) keep it.

    Raises:
      ValueError: ``model`` is not a functional model, or a BN sits where it cannot be folded.
    """
    if type(model).__name__ != "Functional":
        raise ValueError(
            f"fold_batch_norm needs a functional model such as applications.ResNet38(); got "
            f"{type(model).__name__}. Build the model through keras_wideresnet.applications.")
    config = copy.deepcopy(model.get_config())
    for layer in config["layers"]:
        if weights_in_compute_dtype:
            _policy_to_compute_dtype(layer["config"])
        names = (layer["class_name"], (layer.get("registered_name") or "").split(">")[-1])
        if "PreActResidualUnit" in names:
            layer["config"]["fold_bn"] = True
            layer["config"]["recompute"] = False
        elif any(name in _BN_CLASSES for name in names):
            axis = layer["config"].get("axis", -1)
            if axis not in (-1, 3, [3], [-1]):
                raise ValueError(f"BN layer {layer['config']['name']!r} normalises axis {axis}; "
                                 "only channels_last BN can be folded.")
            layer.update(module="keras_wideresnet.layers.residual_units", class_name="ChannelAffine",
                         registered_name="keras_wideresnet>ChannelAffine",
                         config={"name": layer["config"]["name"], "dtype": layer["config"]["dtype"],
                                 "trainable": False})
    folded = keras.Model.from_config(config, custom_objects={"ChannelAffine": ChannelAffine})
    for layer in folded.layers:
        source = model.get_layer(layer.name)
        if isinstance(layer, PreActResidualUnit):
            _fold_unit(source, layer)
        elif isinstance(layer, ChannelAffine):
            layer.set_weights(list(bn_as_affine(source)))
        else:
            layer.set_weights(source.get_weights())
    folded.trainable = False
    return folded


def _policy_to_compute_dtype(layer_config: dict) -> None:
    """``mixed_bfloat16`` → ``bfloat16`` (and fp16 alike) in a layer's serialized config."""
    policy = layer_config.get("dtype")
    if isinstance(policy, dict) and policy.get("config", {}).get("name", "").startswith("mixed_"):
        policy["config"]["name"] = policy["config"]["name"][len("mixed_"):]


def _fold_unit(source: PreActResidualUnit, target: PreActResidualUnit) -> None:
    pairs, targets = source.bn_conv_pairs(), target.bn_conv_pairs()
    entry_scale, entry_offset = bn_as_affine(pairs[0][0])
    targets[0][0].set_weights([entry_scale, entry_offset])
    last = len(pairs) - 1
    for i, (_, conv) in enumerate(pairs):
        kernel = conv.get_weights()[0]
        if i < last:  # fold the next BN into this conv
            scale, offset = bn_as_affine(pairs[i + 1][0])
            targets[i][1].set_weights([(kernel * scale).astype(kernel.dtype), offset])
        else:
            targets[i][1].set_weights([kernel])
    if source.shortcut_conv is not None:
        target.shortcut_conv.set_weights(source.shortcut_conv.get_weights())

