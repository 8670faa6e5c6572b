"""Metrics that stay exact across replicas and workers (docs/architecture.md §7.5).

Each replica returns integer counts (a confusion matrix, top-k hits); the trainer sums them with
``strategy.reduce(SUM)`` and accumulates on the host, so the result does not depend on how
the data was split.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf


def confusion_matrix(labels: tf.Tensor, predictions: tf.Tensor, num_classes: int,
                     ignore_label: int = 255) -> tf.Tensor:
    """int64 ``[C, C]`` counts (rows: ground truth, columns: prediction), void pixels dropped."""
    labels = tf.reshape(tf.cast(labels, tf.int64), [-1])
    predictions = tf.reshape(tf.cast(predictions, tf.int64), [-1])
    valid = tf.logical_and(labels != ignore_label, labels < num_classes)
    valid = tf.logical_and(valid, labels >= 0)
    index = tf.boolean_mask(labels * num_classes + predictions, valid)
    counts = tf.math.bincount(index, minlength=num_classes * num_classes,
                              maxlength=num_classes * num_classes, dtype=tf.int64)
    return tf.reshape(counts, [num_classes, num_classes])


def segmentation_scores(cm: np.ndarray, class_names: Sequence[str] | None = None) -> dict:
    """mIoU, per-class IoU, pixel accuracy and mean class accuracy from a confusion matrix.

    IoU_c = TP / (GT + Pred − TP); classes absent from both ground truth and predictions are
    left out of the means (NaN per class), as in ademxapp's dataset-level evaluation.
    """
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    gt = cm.sum(axis=1)
    pred = cm.sum(axis=0)
    union = gt + pred - tp
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
        class_acc = np.where(gt > 0, tp / gt, np.nan)
    total = cm.sum()
    names = list(class_names) if class_names else [str(i) for i in range(len(tp))]
    return {
        "mean_iou": float(np.nanmean(iou)) if np.isfinite(iou).any() else 0.0,
        "pixel_accuracy": float(tp.sum() / total) if total else 0.0,
        "mean_class_accuracy": float(np.nanmean(class_acc)) if np.isfinite(class_acc).any() else 0.0,
        "per_class_iou": {n: (None if np.isnan(v) else float(v)) for n, v in zip(names, iou)},
        "num_pixels": int(total),
    }


def topk_hits(labels: tf.Tensor, logits: tf.Tensor, ks: Sequence[int] = (1, 5)) -> tf.Tensor:
    """int64 ``[len(ks) + 1]``: hits at each k, then the number of examples."""
    labels = tf.cast(tf.reshape(labels, [-1]), tf.int32)
    logits = tf.cast(logits, tf.float32)
    num_classes = tf.shape(logits)[-1]
    hits = [tf.reduce_sum(tf.cast(tf.nn.in_top_k(labels, logits, tf.minimum(k, num_classes)),
                                  tf.int64)) for k in ks]
    return tf.stack(hits + [tf.cast(tf.size(labels), tf.int64)])


def classification_scores(counts: np.ndarray, ks: Sequence[int] = (1, 5)) -> dict:
    counts = np.asarray(counts)
    n = int(counts[-1])
    out = {f"top{k}": (float(counts[i]) / n if n else 0.0) for i, k in enumerate(ks)}
    out["num_examples"] = n
    return out


def format_segmentation_table(scores: dict) -> str:
    """A per-class IoU table plus the summary lines, for the CLI."""
    names = list(scores["per_class_iou"])
    width = max([len(n) for n in names] + [5])
    lines = [f"{'class':<{width}}  IoU"]
    for n in names:
        v = scores["per_class_iou"][n]
        lines.append(f"{n:<{width}}  {'  n/a' if v is None else f'{100 * v:5.2f}'}")
    lines.append(f"{'mIoU':<{width}}  {100 * scores['mean_iou']:5.2f}")
    lines.append(f"{'pixel acc':<{width}}  {100 * scores['pixel_accuracy']:5.2f}")
    lines.append(f"{'mean acc':<{width}}  {100 * scores['mean_class_accuracy']:5.2f}")
    return "\n".join(lines)
