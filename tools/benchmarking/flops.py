"""FLOPs counted from the Keras model's layers, cross-checked with TF's graph profiler.

Convention: one multiply-accumulate = 2 FLOPs; counts are per image of the forward pass. A training
step costs about 3× the forward FLOPs (forward + gradients w.r.t. inputs and weights); with
activation recomputation the forward runs again in the backward pass, which we do *not* count as
useful work (achieved FLOP/s stays comparable across configurations).
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import keras
import numpy as np

from keras_wideresnet.layers import iter_layers

TRAINING_FLOPS_FACTOR = 3.0


@dataclasses.dataclass(frozen=True)
class FlopCount:
    """Forward FLOPs per image.

    Attributes:
      conv_dense: 2 × MACs of every Conv2D/DepthwiseConv2D/Dense call, from the shapes it saw.
      elementwise: 2 FLOPs per output element of each BatchNormalization call (scale + shift);
        ReLUs/adds done with ``keras.ops`` inside layers are not counted (they are memory-bound).
      per_layer: ``{layer name: conv/dense FLOPs}`` (summed over repeated calls).
    """

    conv_dense: int
    elementwise: int
    per_layer: dict[str, int]

    @property
    def total(self) -> int:
        return self.conv_dense + self.elementwise


def _conv_dense_flops(layer: keras.layers.Layer, in_shape: Sequence[int], out_shape: Sequence[int]) -> int:
    if isinstance(layer, keras.layers.Dense):
        return 2 * int(np.prod(out_shape[:-1])) * int(in_shape[-1]) * int(out_shape[-1])
    kh, kw = layer.kernel_size
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return 2 * int(np.prod(out_shape)) * kh * kw
    cin = in_shape[-1] if layer.data_format == "channels_last" else in_shape[1]
    return 2 * int(np.prod(out_shape)) * kh * kw * int(cin) // int(layer.groups)


def count_flops(model: keras.Model, input_shape: Sequence[int]) -> FlopCount:
    """Runs one eager forward pass of a batch of 1 and counts what each layer call computed.

    Nested layers (e.g. the residual units' convolutions) are counted through their own calls, so
    shapes are the real ones (dilation, strides and padding included), not guessed. Layers are
    found with :func:`keras_wideresnet.layers.iter_layers`: a custom layer that owns others lists
    them with a ``sublayers()`` method. Each counted layer's ``call`` is wrapped for this one
    forward pass only and restored afterwards.

    Args:
      model: any Keras model (all inputs must share ``input_shape``; single-input models only).
      input_shape: one image's shape without the batch axis, e.g. ``(224, 224, 3)``.
    """
    if len(input_shape) != 3 or any(int(d) < 1 for d in input_shape):
        raise ValueError(f"input_shape must be (height, width, channels) with sizes >= 1. "
                         f"Received: input_shape={tuple(input_shape)}")
    conv_types = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)
    per_layer: dict[str, int] = {}
    elementwise = [0]
    hooked = []

    def hook(layer, original):
        def call(*args, **kwargs):
            out = original(*args, **kwargs)
            in_shape = tuple(args[0].shape[1:])
            out_shape = tuple(out.shape[1:])
            if isinstance(layer, conv_types):
                per_layer[layer.name] = per_layer.get(layer.name, 0) + _conv_dense_flops(layer, in_shape, out_shape)
            else:
                elementwise[0] += 2 * int(np.prod(out_shape))
            return out
        return call

    for layer in iter_layers(model):
        if isinstance(layer, conv_types + (keras.layers.BatchNormalization,)):
            layer.call = hook(layer, layer.call)  # instance attribute shadows the class method
            hooked.append(layer)
    try:
        model(np.zeros((1, *input_shape), dtype="float32"), training=False)
    finally:
        for layer in hooked:
            del layer.call
    return FlopCount(sum(per_layer.values()), elementwise[0], per_layer)


def profiler_flops(model: keras.Model, input_shape: Sequence[int],
                   op_types: Sequence[str] = ("Conv2D", "DepthwiseConv2dNative", "MatMul")) -> int:
    """Cross-check: ``tf.compat.v1.profiler`` float-op count of the traced forward graph, batch 1.

    Only ops of ``op_types`` are accounted, matching :attr:`FlopCount.conv_dense`. TF's own op
    statistics count 2 FLOPs per MAC. Dilated convolutions traced as SpaceToBatchND + Conv2D are
    counted on the space-to-batch padded tensor, so they may come out slightly higher.
    """
    import tensorflow as tf

    fn = tf.function(lambda x: model(x, training=False))
    graph = fn.get_concrete_function(tf.TensorSpec((1, *input_shape), tf.float32)).graph
    builder = tf.compat.v1.profiler.ProfileOptionBuilder
    options = (builder(builder.float_operation())
               .with_empty_output()
               .account_displayed_op_only(False)
               .build())
    options["account_type_regexes"] = [f"^{t}$" for t in op_types]
    return int(tf.compat.v1.profiler.profile(graph=graph, options=options).total_float_ops)
