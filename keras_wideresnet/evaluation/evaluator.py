"""Evaluation of a trained model on the experiment's eval data (docs/architecture.md §7.2, §7.5).

The task defines the eval step (segmentation: test-time inference on the padded eval canvas,
mapped back to the label resolution, then a dataset-level confusion matrix; classification:
top-1/top-5 at the eval crop); :func:`keras_wideresnet.tasks.eval_loop.run_eval` runs it exactly
across replicas and workers.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from keras_wideresnet.tasks import get_task
from keras_wideresnet.tasks.eval_loop import run_eval


def evaluate(model: keras.Model, experiment, strategy: tf.distribute.Strategy | None = None,
             verbose: int = 1) -> dict[str, Any]:
    """Runs the experiment's eval data through ``model`` and returns the scores.

    Returns:
      Segmentation: ``mean_iou``, ``per_class_iou``, ``pixel_accuracy``,
      ``mean_class_accuracy``, ``num_pixels``, ``confusion_matrix``. Classification:
      ``top1``, ``top5``, ``num_examples``.
    """
    return run_eval(model, get_task(experiment.task), experiment, strategy, verbose)
