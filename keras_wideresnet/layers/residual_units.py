"""Pre-activation residual units of the wide ResNet family (docs/architecture.md §1).

A unit computes ``y = shortcut(x) + F(x)`` with BN→ReLU before every convolution and no
activation after the addition (He et al., "Identity Mappings in Deep Residual Networks").
Sub-layer names follow ademxapp (``bn2a_branch2a`` → ``res2a_branch2a``), so converting the
released MXNet weights is a rename plus a transpose.
"""

from __future__ import annotations

from typing import Any, Sequence

import keras
import numpy as np
from keras import ops

# BN constants of ademxapp (`util/symbol/symbol.py`, commit 2ee50bd): eps 1.001e-5, MXNet
# momentum 0.9 (moving = 0.9 * moving + 0.1 * batch), which is Keras' convention too.
BN_EPSILON = 1.001e-5
BN_MOMENTUM = 0.9

BN_MODES = ("train", "frozen_stats", "frozen")
UNIT_TYPES = {"basic": 2, "bottleneck": 3}


def conv_padding(kernel_size: int, dilation: int = 1) -> int:
    """MXNet's symmetric padding ``((k - 1) * d + 1) // 2`` (docs/architecture.md §1.4)."""
    return ((kernel_size - 1) * dilation + 1) // 2


@keras.saving.register_keras_serializable(package="keras_wideresnet")
class FrozenStatsBatchNormalization(keras.layers.BatchNormalization):
    """BatchNormalization that always normalizes with its moving statistics.

    The segmentation recipe (docs/architecture.md §7.3, ``bn_use_global_stats=True``) freezes the statistics
    while γ and β still train. Keras' ``trainable=False`` would freeze γ/β too.
    """

    def call(self, inputs, training=None, mask=None):
        return super().call(inputs, training=False, mask=mask)


@keras.saving.register_keras_serializable(package="keras_wideresnet")
class ChannelAffine(keras.layers.Layer):
    """``x * scale + offset`` per channel, in the compute dtype: an inference-mode BN folded to
    two vectors (:func:`keras_wideresnet.models.fold_batch_norm`).

    Keras' BatchNormalization upcasts bf16/fp16 inputs to float32 and back, four memory-bound
    passes per BN. Here the scale is a 1×1 depthwise convolution and the offset its bias: on TF
    with oneDNN, grappler fuses depthwise conv + bias (+ the unit's ReLU) into one kernel, one
    pass instead of three (multiply, add, ReLU).
    """

    def build(self, input_shape):
        channels = input_shape[-1]
        self.scale = self.add_weight(shape=(channels,), initializer="ones", name="scale")
        self.offset = self.add_weight(shape=(channels,), initializer="zeros", name="offset")

    def call(self, inputs, training=None, mask=None):  # BN's signature: a drop-in replacement
        scale = ops.reshape(ops.cast(self.scale, inputs.dtype), (1, 1, -1, 1))
        return ops.depthwise_conv(inputs, scale, strides=1, padding="valid") \
            + ops.cast(self.offset, inputs.dtype)


def bn_as_affine(bn: keras.layers.BatchNormalization):
    """(scale, offset) float32 NumPy vectors equal to ``bn`` in inference mode."""
    gamma = np.asarray(bn.gamma.numpy() if bn.scale else 1.0, np.float64)
    beta = np.asarray(bn.beta.numpy() if bn.center else 0.0, np.float64)
    mean = np.asarray(bn.moving_mean.numpy(), np.float64)
    var = np.asarray(bn.moving_variance.numpy(), np.float64)
    scale = gamma / np.sqrt(var + bn.epsilon) * np.ones_like(mean)
    return scale.astype("float32"), (beta - mean * scale).astype("float32")


def batch_norm(name: str, bn_mode: str = "train", synchronized: bool = False,
               dtype: Any = None) -> keras.layers.Layer:
    """Builds the family's BN layer.

    Args:
      name: Layer name (ademxapp style, e.g. ``bn2a_branch2a``).
      bn_mode: ``"train"`` (batch statistics in training), ``"frozen_stats"`` (moving
        statistics always, γ/β trainable) or ``"frozen"`` (moving statistics, nothing trains).
      synchronized: Cross-replica statistics under ``tf.distribute`` (TF backend only).
      dtype: Optional dtype policy.
    """
    if bn_mode not in BN_MODES:
        raise ValueError(f"`bn_mode` must be one of {BN_MODES}. Received: bn_mode={bn_mode!r}")
    cls = FrozenStatsBatchNormalization if bn_mode == "frozen_stats" else keras.layers.BatchNormalization
    kwargs = dict(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=name, dtype=dtype)
    if synchronized:
        kwargs["synchronized"] = True
    layer = cls(**kwargs)
    if bn_mode == "frozen":
        layer.trainable = False
    return layer


class PathGate:
    """Holds a scalar variable that routes a unit's *gradient* (not its value), docs/architecture.md §6.2.

    gate = 1: the gradient flows only through the residual branch F.
    gate = 0: the gradient flows only through the shortcut.
    Not tracked by Keras, so it never appears among a model's weights.
    """

    def __init__(self, variable):
        self.variable = variable


def gated_residual_sum(shortcut, branch, gate=None):
    """``shortcut + branch``; with a gate, blocks the gradient of one path (values unchanged)."""
    if gate is None:
        return ops.add(shortcut, branch)
    g = ops.cast(gate, shortcut.dtype)
    s = g * ops.stop_gradient(shortcut) + (1.0 - g) * shortcut
    b = g * branch + (1.0 - g) * ops.stop_gradient(branch)
    return ops.add(s, b)


def _checked_filters(unit_type: str, filters: Sequence[int], dropout: float) -> tuple[int, ...]:
    """Validates a unit's type, filter count and dropout; returns the filters as a tuple of ints."""
    if unit_type not in UNIT_TYPES:
        raise ValueError(f"`unit_type` must be one of {sorted(UNIT_TYPES)}. "
                         f"Received: unit_type={unit_type!r}")
    filters = tuple(int(f) for f in filters)
    if len(filters) != UNIT_TYPES[unit_type]:
        raise ValueError(f"A {unit_type} unit takes {UNIT_TYPES[unit_type]} filter sizes. "
                         f"Received: filters={filters}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout}")
    return filters


@keras.saving.register_keras_serializable(package="keras_wideresnet")
class PreActResidualUnit(keras.layers.Layer):
    """One pre-activation residual unit, basic ("b33") or bottleneck ("b131").

    Implements docs/architecture.md §1 exactly:

    * ``bn{u}_branch2a`` → ReLU is shared by the branch's first conv and the projection
      shortcut ``res{u}_branch1`` (1×1 conv, no bias, no BN), present only when
      ``projection=True`` (the first unit of a block).
    * The stride sits on the branch's first conv (the 1×1 in a bottleneck) and on the
      shortcut; padding is explicit and symmetric, as in MXNet.
    * The first conv uses ``first_dilation`` (the dilation before a removed stride); every
      later conv uses ``dilation``.
    * Optional dropout goes after the last BN→ReLU, before the branch's last conv.
    * Nothing follows the addition.

    Args:
      unit_id: ademxapp unit id such as ``"2a"`` or ``"4b3"``; the layer is named ``res{unit_id}``.
      unit_type: ``"basic"`` (3×3, 3×3) or ``"bottleneck"`` (1×1, 3×3, 1×1).
      filters: Output channels of each branch conv (2 for basic, 3 for bottleneck).
      strides: Stride of the first branch conv and the shortcut.
      dilation: Dilation of the branch's 3×3 convs after the first.
      first_dilation: Dilation of the first branch conv; defaults to ``dilation``.
      projection: Whether the shortcut is a 1×1 projection (else identity).
      dropout: Drop probability before the last conv (0 disables).
      bn_mode: See :func:`batch_norm`.
      sync_bn: Synchronized BN across replicas.
      recompute: Recompute the unit's activations in the backward pass (gradient
        checkpointing, the analogue of ademxapp's ``--backward-do-mirror``).
      kernel_initializer: Conv kernel initializer; ademxapp uses N(0, sqrt(2 / fan_in)).
      fold_bn: Inference form with BN folded (built by :func:`keras_wideresnet.models.fold_batch_norm`,
        not by hand): the entry BN is a :class:`ChannelAffine` and every later BN is folded into
        the conv before it, which gets a bias.
    """

    def __init__(self, unit_id: str, unit_type: str, filters: Sequence[int], strides: int = 1,
                 dilation: int = 1, first_dilation: int | None = None, projection: bool = False,
                 dropout: float = 0.0, bn_mode: str = "train", sync_bn: bool = False,
                 recompute: bool = False, kernel_initializer: Any = "he_normal", fold_bn: bool = False,
                 **kwargs):
        kwargs.setdefault("name", f"res{unit_id}")
        super().__init__(**kwargs)
        filters = _checked_filters(unit_type, filters, dropout)
        self.unit_id = unit_id
        self.unit_type = unit_type
        self.filters = filters
        self.strides = int(strides)
        self.dilation = int(dilation)
        self.first_dilation = int(first_dilation if first_dilation is not None else dilation)
        self.projection = bool(projection)
        self.dropout_rate = float(dropout)
        self.bn_mode = bn_mode
        self.sync_bn = bool(sync_bn)
        self.recompute = bool(recompute)
        self.fold_bn = bool(fold_bn)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self._create_sublayers()
        self._path_gate: PathGate | None = None

    def _create_sublayers(self) -> None:
        """Creates the branch's (BN, conv) pairs in order, then the projection shortcut and dropout."""
        unit_id, filters = self.unit_id, self.filters
        kernels = (3, 3) if self.unit_type == "basic" else (1, 3, 1)
        tags = ["branch2a", "branch2b1", "branch2b2"][: len(kernels)]
        self._convs = []  # (bn, conv, kernel, stride, dilation)
        for i, (tag, kernel, width) in enumerate(zip(tags, kernels, filters)):
            stride = self.strides if i == 0 else 1
            dil = 1 if kernel == 1 else (self.first_dilation if i == 0 else self.dilation)
            if not self.fold_bn:
                bn = batch_norm(f"bn{unit_id}_{tag}", self.bn_mode, self.sync_bn, dtype=self.dtype_policy)
            elif i == 0:
                bn = ChannelAffine(name=f"bn{unit_id}_{tag}", dtype=self.dtype_policy)
            else:
                bn = None  # folded into the previous conv
            conv = keras.layers.Conv2D(
                # Stride 1 (odd kernels): MXNet's symmetric padding equals "same", which oneDNN
                # pads inside the conv kernel; an explicit pad would copy the activation first.
                # Strided 1×1 convs run as subsample + stride-1 conv (see `_subsample`).
                width, kernel, strides=1 if kernel == 1 else stride, dilation_rate=dil,
                padding="same" if stride == 1 or kernel == 1 else "valid",
                use_bias=self.fold_bn and i < len(kernels) - 1,
                kernel_initializer=self.kernel_initializer, name=f"res{unit_id}_{tag}",
                dtype=self.dtype_policy)
            self._convs.append((bn, conv, kernel, stride, dil))
        self.shortcut_conv = None
        if self.projection:
            self.shortcut_conv = keras.layers.Conv2D(
                filters[-1], 1, use_bias=False,  # stride via `_subsample`
                kernel_initializer=self.kernel_initializer, name=f"res{unit_id}_branch1",
                dtype=self.dtype_policy)
        self.dropout_layer = (keras.layers.Dropout(self.dropout_rate, name=f"drop{unit_id}",
                                                   dtype=self.dtype_policy)
                              if self.dropout_rate > 0 else None)

    # --- Analysis hook (docs/architecture.md §6.2) -------------------------------------------
    def set_path_gate(self, gate: PathGate | None) -> None:
        """Routes the backward pass through one path only; ``None`` restores normal backprop."""
        object.__setattr__(self, "_path_gate", gate)

    # --- Keras ------------------------------------------------------------------------------
    def build(self, input_shape):
        shape = tuple(input_shape)
        if self.shortcut_conv is None and shape[-1] is not None and shape[-1] != self.filters[-1]:
            raise ValueError(
                f"Unit res{self.unit_id} has an identity shortcut, so its input needs "
                f"{self.filters[-1]} channels. Received input_shape={shape}. Use projection=True.")
        channels = shape[-1]
        for bn, conv, *_ in self._convs:
            # Spatial sizes are left open: the explicit padding happens in `call`.
            if bn is not None:
                bn.build((None, None, None, channels))
            conv.build((None, None, None, channels))
            channels = conv.filters
        if self.shortcut_conv is not None:
            self.shortcut_conv.build((None, None, None, shape[-1]))

    def _subsample(self, x, stride: int):
        """A strided 1×1 conv equals a stride-1 1×1 conv of ``x[:, ::s, ::s]`` (same output
        size for odd and even inputs). TF 2.21's oneDNN backprop-filter kernel corrupts the heap
        on strided 1×1 convs with few input channels (README "Known issues")."""
        return x[:, ::stride, ::stride, :] if stride > 1 else x

    def _conv(self, conv, kernel, stride, dilation, x):
        if kernel == 1:
            return conv(self._subsample(x, stride))
        pad = conv_padding(kernel, dilation)
        if pad and conv.padding == "valid":  # strided: MXNet pads symmetrically, TF "same" not
            x = ops.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
        return conv(x)

    def _forward(self, x, training=None):
        shortcut = x
        h = x
        last = len(self._convs) - 1
        for i, (bn, conv, kernel, stride, dil) in enumerate(self._convs):
            if bn is None:
                h = ops.relu(h)
            elif self.fold_bn:
                h = ops.relu(bn(h))
            else:
                h = ops.relu(bn(h, training=training))
            if i == 0 and self.shortcut_conv is not None:
                # Shared pre-activation (docs/architecture.md §1.3).
                shortcut = self.shortcut_conv(self._subsample(h, stride))
            if i == last and self.dropout_layer is not None:
                h = self.dropout_layer(h, training=training)
            h = self._conv(conv, kernel, stride, dil, h)
        gate = self._path_gate.variable if self._path_gate is not None else None
        return gated_residual_sum(shortcut, h, gate)

    def call(self, inputs, training=None):
        if self.recompute and training and self.bn_mode == "train" \
                and keras.backend.backend() == "jax":
            raise NotImplementedError(
                f"Unit res{self.unit_id}: recompute=True with bn_mode='train' is not supported on "
                "the JAX backend (BN moving-average updates inside jax.checkpoint leak tracers). "
                "Use bn_mode='frozen_stats', or the TensorFlow backend.")
        if self.recompute:
            return keras.remat(lambda t: self._forward(t, training=training))(inputs)
        return self._forward(inputs, training=training)

    def compute_output_shape(self, input_shape):
        n, h, w, _ = input_shape
        out = []
        for size in (h, w):
            if size is None:
                out.append(None)
                continue
            k, d = self._convs[0][2], self._convs[0][4]
            p = conv_padding(k, d)
            out.append((size + 2 * p - ((k - 1) * d + 1)) // self.strides + 1)
        return (n, out[0], out[1], self.filters[-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            unit_id=self.unit_id, unit_type=self.unit_type, filters=list(self.filters),
            strides=self.strides, dilation=self.dilation, first_dilation=self.first_dilation,
            projection=self.projection, dropout=self.dropout_rate, bn_mode=self.bn_mode,
            sync_bn=self.sync_bn, recompute=self.recompute, fold_bn=self.fold_bn,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer))
        return config

    # --- Convenience for weight conversion and inspection -----------------------------------
    def bn_conv_pairs(self) -> list[tuple[keras.layers.Layer | None, keras.layers.Layer]]:
        """The residual branch in order: ``(bn, conv)`` per convolution, where ``bn`` is the
        pre-activation BN before that conv (docs/architecture.md §1.1). BN folding reads this.

        A method, not a property: Keras' weight files walk a layer's attributes, and a property
        holding the sub-layers would save them a second time under another path."""
        return [(bn, conv) for bn, conv, *_ in self._convs]

    def sublayers(self) -> list[keras.layers.Layer]:
        """Every layer this unit owns, in creation order (branch BN/conv pairs, the projection
        shortcut, dropout): what :func:`keras_wideresnet.layers.iter_layers` walks into."""
        out = [layer for bn, conv, *_ in self._convs for layer in (bn, conv) if layer is not None]
        return out + [layer for layer in (self.shortcut_conv, self.dropout_layer) if layer is not None]

    @property
    def named_sublayers(self) -> dict[str, keras.layers.Layer]:
        """ademxapp name → sub-layer (``bn2a_branch2a``, ``res2a_branch2a``, ``res2a_branch1``...)."""
        out = {}
        for bn, conv, *_ in self._convs:
            if bn is not None:
                out[bn.name] = bn
            out[conv.name] = conv
        if self.shortcut_conv is not None:
            out[self.shortcut_conv.name] = self.shortcut_conv
        return out
