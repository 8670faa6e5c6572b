"""Evaluation: test-time inference (multi-scale, flip, tiles) and the evaluation loops."""

from keras_wideresnet.evaluation.inference import (
    classification_probs,
    num_tiles,
    segmentation_probs,
)

__all__ = ["classification_probs", "num_tiles", "segmentation_probs"]
