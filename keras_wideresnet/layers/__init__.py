"""Building blocks: pre-activation residual units and the family's BN (paper spec §1.1)."""

from keras_wideresnet.layers.residual_units import (
    BN_EPSILON,
    BN_MOMENTUM,
    FrozenStatsBatchNormalization,
    PathGate,
    PreActResidualUnit,
    batch_norm,
    conv_padding,
    gated_residual_sum,
)

__all__ = [
    "BN_EPSILON", "BN_MOMENTUM", "FrozenStatsBatchNormalization", "PathGate",
    "PreActResidualUnit", "batch_norm", "conv_padding", "gated_residual_sum",
]
