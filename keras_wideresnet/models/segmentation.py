"""The atrous FCN head of the segmentation models: "2 conv." (docs/architecture.md §4).

``conv6a``: 3×3, 512 filters, dilation 12, bias, ReLU (no BN, no dropout); then ``linear{C}``:
3×3, C filters, dilation 12, bias. Logits come out at the output stride; optionally resized to
the input size.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_wideresnet")
class ResizeLike(keras.layers.Layer):
    """Bilinearly resizes ``x`` to the spatial size of ``reference`` (dynamic sizes allowed)."""

    def __init__(self, interpolation: str = "bilinear", **kwargs):
        super().__init__(**kwargs)
        self.interpolation = interpolation

    def call(self, x, reference):
        size = ops.shape(reference)[1:3]
        return ops.image.resize(x, size, interpolation=self.interpolation)

    def compute_output_shape(self, x_shape, reference_shape):
        return (x_shape[0], reference_shape[1], reference_shape[2], x_shape[3])

    def get_config(self):
        return dict(super().get_config(), interpolation=self.interpolation)


def segmentation_head(features, num_classes: int, head_filters: int = 512, dilation: int = 12,
                      num_convs: int = 2, kernel_initializer="he_normal"):
    """Builds ``conv6a`` (if ``num_convs == 2``) and ``linear{C}``; returns float32 logits.

    Args:
      features: The backbone's ``features`` endpoint (after ``bn7``/``relu7``).
      num_classes: C, including background where the dataset has one.
      head_filters: Width of ``conv6a``.
      dilation: Dilation of both 3×3 convs (12 at output stride 8).
      num_convs: 2 (the paper's "2 conv.") or 1 (classifier only; an option of this package, not in
        the authors' code).
    """
    if num_convs not in (1, 2):
        raise ValueError(f"`num_convs` must be 1 or 2. Received: num_convs={num_convs}")
    x = features
    if num_convs == 2:
        x = keras.layers.Conv2D(head_filters, 3, dilation_rate=dilation, padding="same",
                                use_bias=True, activation="relu", name="conv6a",
                                kernel_initializer=kernel_initializer)(x)
    # Logits in float32 so that mixed-precision training keeps a float32 loss.
    return keras.layers.Conv2D(num_classes, 3, dilation_rate=dilation, padding="same",
                               use_bias=True, name=f"linear{num_classes}",
                               kernel_initializer=kernel_initializer, dtype="float32")(x)
