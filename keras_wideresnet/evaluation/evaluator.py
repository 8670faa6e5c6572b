"""Evaluation loops (docs/architecture.md §7.2, §7.5): exact across replicas and workers.

Segmentation: test-time inference on the padded eval canvas (scales, flip, tiles), predictions
mapped back to the original label resolution, then a dataset-level confusion matrix.
Classification: top-1/top-5 at the eval crop, optionally flip-averaged.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_wideresnet.data.segmentation import invert_eval_preprocessing
from keras_wideresnet.evaluation.inference import classification_probs, segmentation_probs
from keras_wideresnet.training import metrics


def _replica_fn(model: keras.Model, experiment):
    exp = experiment
    if exp.task == "classification":
        def fn(images, labels):
            probs = classification_probs(model, images, flip=exp.eval_flip)
            return metrics.topk_hits(labels, probs)
    else:
        def fn(images, targets):
            probs = segmentation_probs(model, images, scales=exp.eval_scales, flip=exp.eval_flip,
                                       tile_size=exp.eval_tile_size)
            probs = invert_eval_preprocessing(probs, targets["image_info"], output_stride=1)
            labels = targets["label"]
            preds = tf.argmax(probs, axis=-1, output_type=tf.int32)
            preds = preds[:, :tf.shape(labels)[1], :tf.shape(labels)[2]]
            return metrics.confusion_matrix(labels, preds, exp.num_classes,
                                            exp.loss.ignore_label)
    return fn


def eval_input_kwargs(experiment) -> dict[str, Any]:
    """The eval preprocessing sizes, taken from the Experiment so that evaluation and the
    exported SavedModel can never disagree."""
    if experiment.task == "classification":
        return dict(image_size=experiment.eval_image_size,
                    eval_resize_shorter=experiment.eval_resize_shorter)
    return dict(eval_size=experiment.eval_image_size)


def _num_batches(experiment) -> int | None:
    """Global eval batches, when the eval stream knows its length (``None`` otherwise). Building
    the unsharded stream reads no record."""
    n = int(experiment.eval_data(is_training=False, **eval_input_kwargs(experiment)).cardinality())
    return n if n > 0 else None


def evaluate(model: keras.Model, experiment, strategy: tf.distribute.Strategy | None = None,
             verbose: int = 1) -> dict[str, Any]:
    """Runs the experiment's eval data through ``model`` and returns the scores.

    Returns:
      Segmentation: ``mean_iou``, ``per_class_iou``, ``pixel_accuracy``,
      ``mean_class_accuracy``, ``num_pixels``, ``confusion_matrix``. Classification:
      ``top1``, ``top5``, ``num_examples``.
    """
    exp = experiment
    strategy = strategy or tf.distribute.get_strategy()
    dataset = strategy.distribute_datasets_from_function(
        lambda ctx: exp.eval_data(input_context=ctx, is_training=False, **eval_input_kwargs(exp)))
    iterator = iter(dataset)
    replica_fn = _replica_fn(model, exp)
    if exp.task == "classification":
        zeros = tf.zeros([3], tf.int64)
    else:
        zeros = tf.zeros([exp.num_classes, exp.num_classes], tf.int64)

    @tf.function
    def step():
        # get_next_as_optional keeps every worker in step when shards differ in length.
        optional = iterator.get_next_as_optional()
        if optional.has_value():
            counts = strategy.run(replica_fn, args=optional.get_value())
            return True, strategy.reduce(tf.distribute.ReduceOp.SUM, counts, axis=None)
        return False, zeros

    total = np.zeros(zeros.shape, np.int64)
    progbar = keras.utils.Progbar(exp.eval_steps or _num_batches(exp), unit_name="batch",
                                  verbose=verbose)
    done = 0
    while exp.eval_steps is None or done < exp.eval_steps:
        has_value, counts = step()
        if not bool(has_value):
            break
        total += counts.numpy()
        done += 1
        progbar.update(done)
    if done == 0:
        raise ValueError("The evaluation data is empty: check Experiment.eval_data's "
                         "file_pattern (or split) points at records.")
    if exp.task == "classification":
        return metrics.classification_scores(total)
    scores = metrics.segmentation_scores(total, exp.class_names)
    scores["confusion_matrix"] = total.tolist()
    return scores
