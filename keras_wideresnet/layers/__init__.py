"""Building blocks: pre-activation residual units and the family's BN (docs/architecture.md §1)."""

from keras_wideresnet.layers.residual_units import (
    BN_EPSILON,
    BN_MOMENTUM,
    ChannelAffine,
    FrozenStatsBatchNormalization,
    PathGate,
    PreActResidualUnit,
    batch_norm,
    bn_as_affine,
    conv_padding,
    gated_residual_sum,
)
from keras_wideresnet.layers.walk import iter_layers

__all__ = [
    "BN_EPSILON", "BN_MOMENTUM", "ChannelAffine", "FrozenStatsBatchNormalization", "PathGate",
    "PreActResidualUnit", "batch_norm", "bn_as_affine", "conv_padding", "gated_residual_sum",
    "iter_layers",
]
