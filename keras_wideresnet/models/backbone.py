"""Turns a :class:`FamilySpec` into a functional backbone (docs/architecture.md §1–§3).

``output_stride`` removes the last strides and replaces them with dilation (docs/architecture.md §3):
in the unit that loses its stride, the first conv keeps the old dilation and every later conv uses twice
it; a pool that loses its stride becomes a 3×3/1 pool (pad 1) and the convs after it are dilated.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import keras

from keras_wideresnet.layers import PreActResidualUnit, batch_norm
from keras_wideresnet.models.spec import BlockSpec, FamilySpec, get_spec

ENDPOINT_FEATURES = "features"


@keras.saving.register_keras_serializable(package="keras_wideresnet")
class NegInfPadding2D(keras.layers.Layer):
    """Symmetric spatial padding with the dtype's lowest value, so a following VALID max-pool
    equals MXNet's padded max-pool (docs/architecture.md §2.4)."""

    def __init__(self, padding: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.padding = int(padding)

    def call(self, inputs):
        p = self.padding
        low = keras.ops.convert_to_tensor(-3.0e38 if inputs.dtype == "float32" else -6.0e4,
                                          dtype=inputs.dtype)
        return keras.ops.pad(inputs, [[0, 0], [p, p], [p, p], [0, 0]], constant_values=low)

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        grow = lambda s: None if s is None else s + 2 * self.padding  # noqa: E731
        return (n, grow(h), grow(w), c)

    def get_config(self):
        return dict(super().get_config(), padding=self.padding)


def max_pool(x, name: str, strides: int, pool_padding: str):
    """3×3 max-pool with MXNet padding: pad 1, or pad 0 in "caffe" mode (docs/architecture.md §2.4)."""
    if pool_padding == "pad1" or strides == 1:
        x = NegInfPadding2D(1, name=f"{name}_pad")(x)
    return keras.layers.MaxPooling2D(3, strides=strides, padding="valid", name=name)(x)


def _recompute_levels(recompute: bool | Iterable[int], spec: FamilySpec) -> set[int]:
    if recompute is True:
        return {b.level for b in spec.blocks}
    if not recompute:
        return set()
    return {int(level) for level in recompute}


def _kept_reductions(spec: FamilySpec, output_stride: int | None) -> int:
    """Checks ``output_stride`` against the spec; returns how many reductions keep their stride."""
    natural = 2 ** spec.num_reductions
    if output_stride is None:
        output_stride = natural
    if output_stride not in {2 ** k for k in range(spec.num_reductions + 1)}:
        raise ValueError(f"`output_stride` must be a power of two no larger than {natural} for "
                         f"spec {spec.name!r}. Received: output_stride={output_stride}")
    return int(math.log2(output_stride))  # the first `kept` reductions keep their stride


def _stem(inputs: Any, spec: FamilySpec, kernel_initializer: Any) -> Any:
    """The stem: ``conv1a``, a 3×3 convolution with MXNet's pad 1."""
    x = keras.layers.ZeroPadding2D(1, name="conv1a_pad")(inputs)
    return keras.layers.Conv2D(spec.stem_filters, 3, use_bias=False, name="conv1a",
                               kernel_initializer=kernel_initializer)(x)


def _downsample(x: Any, block: BlockSpec, spec: FamilySpec, keep: bool,
                dilation: int) -> tuple[Any, int, int, int]:
    """A block's reduction (pool, or stride on its first unit, or dilation) as (x, stride, dilation, first_dilation)."""
    stride, first_dilation = 1, dilation
    if block.downsample == "pool":
        x = max_pool(x, f"pool{block.level - 1}", 2 if keep else 1, spec.pool_padding)
        if not keep:
            dilation *= 2
            first_dilation = dilation
    else:
        if keep:
            stride = 2
        else:
            dilation *= 2  # first conv keeps the old dilation (docs/architecture.md §3.1)
    return x, stride, dilation, first_dilation


def _blocks(x: Any, spec: FamilySpec, kept: int, bn_mode: str, sync_bn: bool,
            recompute_levels: set[int], kernel_initializer: Any, endpoints: dict[str, Any]) -> Any:
    """The residual blocks in order, each block's output stored as endpoint ``block{level}``."""
    reductions_seen, dilation = 0, 1
    for block in spec.blocks:
        stride, first_dilation = 1, dilation
        if block.downsample != "none":
            reductions_seen += 1
            x, stride, dilation, first_dilation = _downsample(x, block, spec, reductions_seen <= kept,
                                                              dilation)
        for i, unit_id in enumerate(block.unit_ids()):
            x = PreActResidualUnit(
                unit_id, block.unit_type, block.filters,
                strides=stride if i == 0 else 1,
                dilation=dilation, first_dilation=first_dilation if i == 0 else dilation,
                projection=i == 0, dropout=block.dropout, bn_mode=bn_mode, sync_bn=sync_bn,
                recompute=block.level in recompute_levels,
                kernel_initializer=kernel_initializer)(x)
        endpoints[f"block{block.level}"] = x
    return x


def build_features(inputs, spec: FamilySpec | str, output_stride: int | None = None,
                   bn_mode: str = "train", sync_bn: bool = False,
                   recompute: bool | Iterable[int] = False,
                   kernel_initializer: Any = "he_normal") -> dict[str, Any]:
    """Builds the family's layers on ``inputs`` and returns the named endpoints.

    Args:
      inputs: A Keras tensor ``[B, H, W, C]`` (channels last).
      spec: A :class:`FamilySpec` or its registry name.
      output_stride: 32, 16 or 8 for the paper's models (any power of two the spec allows);
        ``None`` keeps every reduction.
      bn_mode: ``"train"``, ``"frozen_stats"`` or ``"frozen"``.
      sync_bn: Synchronized BN across replicas.
      recompute: ``True`` or a list of block levels whose units recompute activations.
      kernel_initializer: Conv initializer (ademxapp: He normal, ``fan_in``).

    Returns:
      ``{"block1": conv1a, "block2": ..., "block7": last unit, "features": relu7(bn7(.))}``.
    """
    spec = get_spec(spec)
    kept = _kept_reductions(spec, output_stride)
    recompute_levels = _recompute_levels(recompute, spec)

    endpoints = {}
    x = _stem(inputs, spec, kernel_initializer)
    endpoints["block1"] = x
    x = _blocks(x, spec, kept, bn_mode, sync_bn, recompute_levels, kernel_initializer, endpoints)

    last = spec.blocks[-1].level
    x = batch_norm(f"bn{last}", bn_mode, sync_bn)(x)
    x = keras.layers.ReLU(name=f"relu{last}")(x)
    endpoints[ENDPOINT_FEATURES] = x
    return endpoints


@keras.saving.register_keras_serializable(package="keras_wideresnet")
class WideResNetBackbone(keras.Model):
    """Functional backbone with a dict of endpoints ``block1``..``block7`` and ``features``.

    The feature extractor of "Wider or Deeper: Revisiting the ResNet Model for Visual
    Recognition" (Wu, Shen, van den Hengel; arXiv:1611.10080), for Model Garden / keras-hub
    style use (detection, segmentation decoders).

    Args:
      spec: Registry name or :class:`FamilySpec` (``"resnet38_a1"`` ...).
      input_shape: ``(H, W, C)``; ``None`` sizes are allowed.
      output_stride: 32, 16 or 8.
      width_multiplier: Scales every width.
      bn_mode, sync_bn, recompute: See :func:`build_features`.
    """

    def __init__(self, spec: str | dict | FamilySpec = "resnet38_a1",
                 input_shape: tuple = (None, None, 3), output_stride: int | None = None,
                 width_multiplier: float = 1.0, bn_mode: str = "train", sync_bn: bool = False,
                 recompute: bool | list[int] = False, **kwargs):
        family = FamilySpec.from_dict(spec) if isinstance(spec, dict) else get_spec(spec)
        family = family.scaled(width_multiplier)
        inputs = keras.Input(shape=tuple(input_shape), name="image")
        endpoints = build_features(inputs, family, output_stride, bn_mode, sync_bn, recompute)
        kwargs.setdefault("name", family.name)
        super().__init__(inputs=inputs, outputs=endpoints, **kwargs)
        self.spec = family
        self.output_stride = output_stride or 2 ** family.num_reductions
        self._config = dict(spec=family.to_dict(), input_shape=tuple(input_shape),
                            output_stride=output_stride, width_multiplier=1.0, bn_mode=bn_mode,
                            sync_bn=sync_bn, recompute=recompute)

    def get_config(self):
        return dict(self._config, name=self.name)

    @classmethod
    def from_config(cls, config):
        return cls(**config)
