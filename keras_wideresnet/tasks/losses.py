"""Losses: softmax cross-entropy with an ignore label and online bootstrapping
(docs/architecture.md §7.3–§7.4).

Every loss returns the mean over what it keeps *in this replica's batch*; the trainer divides
by the number of replicas, so summed gradients equal the average over devices (ademxapp:
device gradients summed then × 1/#devices).
"""

from __future__ import annotations

import tensorflow as tf


def subsample_labels(labels: tf.Tensor, logits_size: tf.Tensor, stride: int,
                     ignore_label: int = 255) -> tf.Tensor:
    """Labels at the logits grid: ``label[s//2::s, s//2::s]`` (504 → 63 at s = 8,
    docs/architecture.md §7.3), padded with ``ignore_label`` or cropped to ``logits_size``."""
    offset = stride // 2
    sub = labels[:, offset::stride, offset::stride]
    h, w = logits_size[0], logits_size[1]
    sub = sub[:, :h, :w]
    pad_h, pad_w = h - tf.shape(sub)[1], w - tf.shape(sub)[2]
    return tf.pad(sub, [[0, 0], [0, pad_h], [0, pad_w]], constant_values=ignore_label)


def bootstrap_mask(probs_true: tf.Tensor, valid: tf.Tensor, threshold: float = 0.6,
                   min_kept: int = 256) -> tf.Tensor:
    """ademxapp's ``OhemSoftmax`` selection (docs/architecture.md §7.4), not differentiated.

    Keeps valid pixels whose true-class probability ≤ ``thr``, with ``thr`` = 0.6 raised to the
    ``min_kept``-th smallest probability, so at least the ``min_kept`` hardest pixels stay. With
    at most ``min_kept`` valid pixels, all are kept.
    """
    probs_true = tf.stop_gradient(tf.reshape(probs_true, [-1]))
    valid = tf.reshape(valid, [-1])
    num_valid = tf.reduce_sum(tf.cast(valid, tf.int32))
    masked = tf.where(valid, probs_true, tf.fill(tf.shape(probs_true), 2.0))
    k = tf.minimum(min_kept, tf.size(masked))
    kth_smallest = -tf.math.top_k(-masked, k=k, sorted=True).values[-1]
    thr = tf.maximum(tf.constant(threshold, probs_true.dtype), kth_smallest)
    keep = tf.logical_and(valid, probs_true <= thr)
    return tf.where(num_valid <= min_kept, valid, keep)


def segmentation_loss(labels: tf.Tensor, logits: tf.Tensor, *, ignore_label: int = 255,
                      output_stride: int = 8, label_resolution: str = "subsample",
                      bootstrap: bool = False, bootstrap_threshold: float = 0.6,
                      bootstrap_min_kept: int = 256) -> tf.Tensor:
    """Mean pixel cross-entropy over non-ignored (and, with bootstrapping, kept) pixels.

    Args:
      labels: int ``[B, H, W]`` with ``ignore_label`` for void.
      logits: float ``[B, h, w, C]`` at the output stride (or full size).
      ignore_label: Excluded label value.
      output_stride: Stride of the logits (for ``"subsample"``).
      label_resolution: ``"subsample"`` labels to the logits grid (paper) or ``"upsample"``
        logits bilinearly to the label size.
      bootstrap, bootstrap_threshold, bootstrap_min_kept: See :func:`bootstrap_mask`.

    Returns:
      Scalar float32 loss of this replica's batch.
    """
    if label_resolution not in ("subsample", "upsample"):
        raise ValueError("`label_resolution` must be 'subsample' or 'upsample'. "
                         f"Received: {label_resolution!r}")
    logits = tf.cast(logits, tf.float32)
    labels = tf.cast(labels, tf.int32)
    if label_resolution == "subsample":
        labels = subsample_labels(labels, tf.shape(logits)[1:3], output_stride, ignore_label)
    else:
        logits = tf.image.resize(logits, tf.shape(labels)[1:3], method="bilinear")
    num_classes = tf.shape(logits)[-1]
    valid = tf.logical_and(labels != ignore_label, labels < num_classes)
    valid = tf.logical_and(valid, labels >= 0)
    safe_labels = tf.where(valid, labels, tf.zeros_like(labels))
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=safe_labels, logits=logits)
    if bootstrap:
        probs_true = tf.exp(-ce)  # softmax probability of the true class
        keep = tf.reshape(bootstrap_mask(probs_true, valid, bootstrap_threshold,
                                         bootstrap_min_kept), tf.shape(valid))
    else:
        keep = valid
    keep = tf.stop_gradient(tf.cast(keep, tf.float32))
    return tf.reduce_sum(ce * keep) / tf.maximum(tf.reduce_sum(keep), 1.0)


def classification_loss(labels: tf.Tensor, logits: tf.Tensor, *,
                        label_smoothing: float = 0.0) -> tf.Tensor:
    """Mean softmax cross-entropy of this replica's batch (docs/architecture.md §7.1)."""
    logits = tf.cast(logits, tf.float32)
    labels = tf.cast(labels, tf.int32)
    if label_smoothing:
        onehot = tf.one_hot(labels, tf.shape(logits)[-1])
        num = tf.cast(tf.shape(logits)[-1], tf.float32)
        onehot = onehot * (1.0 - label_smoothing) + label_smoothing / num
        per_example = tf.nn.softmax_cross_entropy_with_logits(labels=onehot, logits=logits)
    else:
        per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    return tf.reduce_mean(per_example)
