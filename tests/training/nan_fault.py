"""A transient fault for the loss blow-up tests: one training batch of NaN images.

Loaded with ``--imports=tests.training.nan_fault``; bind
``Experiment.train_data = @nan_batch_at`` and ``nan_batch_at.data = @train/classification_dataset``.
"""

import gin
import tensorflow as tf


@gin.configurable
def nan_batch_at(input_context=None, is_training=True, data=gin.REQUIRED, batch=3):
    """``data``'s batches, with batch number ``batch`` (0-based) turned into NaN images."""
    dataset = data(input_context=input_context, is_training=is_training)

    def poison(index, example):
        images, labels = example
        images = tf.cond(index == batch, lambda: images * float("nan"), lambda: images)
        return images, labels

    return dataset.enumerate().map(poison)
