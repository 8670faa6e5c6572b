"""Prediction agreement between a trained model in float32 and a faster inference form
(mixed precision, folded BN) on the experiment's eval data: the share of
images whose top-1 class (or pixels whose class) agrees with float32."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from keras_wideresnet.models import fold_batch_norm
from keras_wideresnet.tasks import get_task
from keras_wideresnet.tasks.eval_loop import eval_dataset
from keras_wideresnet.training.checkpoints import restore_model


def _build(experiment, weights: str, precision: str, fold_bn: bool) -> keras.Model:
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        model = experiment.build_model(input_shape=(None, None, 3))
    finally:
        keras.config.set_dtype_policy(previous)
    restore_model(model, weights)
    return fold_batch_norm(model) if fold_bn else model


def precision_agreement(experiment: Any, weights: str, *, precision: str = "mixed_bfloat16",
                        fold_bn: bool = True, max_batches: int | None = None) -> dict[str, Any]:
    """Runs the eval data through the float32 model and through the ``precision`` (optionally
    BN-folded) model with the same weights, and compares their predictions.

    Args:
      experiment: The :class:`~keras_wideresnet.training.experiment.Experiment` the weights were
        trained with (its eval data and preprocessing are used).
      weights: A training ``model_dir``, checkpoint prefix or ``.weights.h5`` file.
      precision: Keras dtype policy of the candidate, e.g. ``"mixed_bfloat16"``.
      fold_bn: Fold the candidate's batch norm (:func:`keras_wideresnet.models.fold_batch_norm`).
      max_batches: Stop after this many eval batches (``None``: the whole eval split).

    Returns:
      ``agreement`` (classification: share of images with the same top-1 class; segmentation:
      share of logit positions, at the network's output stride, with the same argmax), ``reference_top1``/``candidate_top1``
      (classification), ``num_examples``, ``max_abs_logit_difference``, ``max_abs_logit``
      (the float32 reference's largest logit, the scale of that difference) and the settings.
    """
    reference = _build(experiment, weights, "float32", fold_bn=False)
    candidate = _build(experiment, weights, precision, fold_bn)
    task = get_task(experiment.task)
    data = eval_dataset(task, experiment)
    same = total = ref_hits = cand_hits = examples = 0
    has_labels = False
    max_diff = max_logit = 0.0
    for i, (images, targets) in enumerate(data):
        if max_batches is not None and i >= max_batches:
            break
        ref = keras.ops.convert_to_numpy(reference(images, training=False)).astype("float32")
        cand = keras.ops.convert_to_numpy(candidate(images, training=False)).astype("float32")
        max_diff = max(max_diff, float(np.abs(ref - cand).max()))
        max_logit = max(max_logit, float(np.abs(ref).max()))
        ref_cls, cand_cls = ref.argmax(-1), cand.argmax(-1)
        same += int((ref_cls == cand_cls).sum())
        total += ref_cls.size
        examples += ref.shape[0]
        labels = task.eval_labels(targets)
        if labels is not None:
            has_labels = True
            ref_hits += int((ref_cls == labels).sum())
            cand_hits += int((cand_cls == labels).sum())
    if total == 0:
        raise ValueError("The evaluation data is empty: check the experiment's eval_data file_pattern.")
    out = {"agreement": same / total, "num_examples": examples, "num_compared": total,
           "max_abs_logit_difference": max_diff, "max_abs_logit": max_logit, "precision": precision, "fold_bn": fold_bn,
           "task": experiment.task}
    if has_labels:
        out.update(reference_top1=ref_hits / examples, candidate_top1=cand_hits / examples)
    return out
