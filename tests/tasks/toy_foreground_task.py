"""A toy task added the way a user adds one: one module, one registration.

"One-class foreground" segmentation on the shapes quickstart: every shape is foreground. It
reuses the segmentation task and changes only what differs, the labels its loss and its eval
counts see. Train it with ``--imports=tests.tasks.toy_foreground_task`` and
``Experiment.task = 'toy_foreground'``.
"""

import tensorflow as tf

from keras_wideresnet.tasks import SegmentationTask, register_task


def to_foreground(labels: tf.Tensor, ignore_label: int) -> tf.Tensor:
    """Class 0 stays background, every other class becomes 1; void stays void."""
    labels = tf.cast(labels, tf.int32)
    return tf.where(labels == ignore_label, labels, tf.minimum(labels, 1))


@register_task
class ForegroundTask(SegmentationTask):
    name = "toy_foreground"

    def loss_fn(self, experiment):
        base, ignore = super().loss_fn(experiment), experiment.loss.ignore_label

        def loss(labels, logits):
            return base(to_foreground(labels, ignore), logits)
        return loss

    def eval_counts_fn(self, model, experiment):
        base, ignore = super().eval_counts_fn(model, experiment), experiment.loss.ignore_label

        def counts(images, targets):
            return base(images, dict(targets, label=to_foreground(targets["label"], ignore)))
        return counts
