"""Evaluation: the evaluation loop of a trained model, prediction agreement, and the
test-time inference (multi-scale, flip, tiles) that the tasks define."""

from keras_wideresnet.tasks.inference import (
    classification_probs,
    num_tiles,
    segmentation_probs,
)

__all__ = ["classification_probs", "num_tiles", "segmentation_probs"]
