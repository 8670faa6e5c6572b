"""Semantic segmentation (paper §5): pixel cross-entropy with online bootstrapping, multi-scale
and flipped test-time inference mapped back to the label resolution, a dataset-level confusion
matrix (docs/architecture.md §7.3–§7.5)."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import tensorflow as tf

from keras_wideresnet.data.segmentation import invert_eval_preprocessing
from keras_wideresnet.tasks import losses, metrics
from keras_wideresnet.tasks.base import LossFn, Task, register_task
from keras_wideresnet.tasks.inference import segmentation_probs


@register_task
class SegmentationTask(Task):
    """Dense per-pixel classes; the model ends in ``num_classes`` logits at the output stride."""

    name = "segmentation"
    record_kind = "segmentation"

    def model_kwargs(self, experiment: Any) -> dict[str, Any]:
        return dict(num_classes=experiment.num_classes)

    def loss_fn(self, experiment: Any) -> LossFn:
        cfg = experiment.loss
        fn = functools.partial(
            losses.segmentation_loss, ignore_label=cfg.ignore_label,
            output_stride=experiment.output_stride, label_resolution=cfg.label_resolution,
            bootstrap=cfg.bootstrap, bootstrap_threshold=cfg.bootstrap_threshold,
            bootstrap_min_kept=cfg.bootstrap_min_kept)
        fn.__name__ = "segmentation_loss"  # type: ignore[attr-defined]
        return fn

    def eval_input_kwargs(self, experiment: Any) -> dict[str, Any]:
        return dict(eval_size=experiment.eval_image_size)

    def eval_counts_shape(self, experiment: Any) -> tuple[int, ...]:
        return (experiment.num_classes, experiment.num_classes)

    def eval_counts_fn(self, model, experiment: Any):
        exp = experiment

        def counts(images, targets):
            probs = segmentation_probs(model, images, scales=exp.eval_scales, flip=exp.eval_flip,
                                       tile_size=exp.eval_tile_size)
            probs = invert_eval_preprocessing(probs, targets["image_info"], output_stride=1)
            labels = targets["label"]
            preds = tf.argmax(probs, axis=-1, output_type=tf.int32)
            preds = preds[:, :tf.shape(labels)[1], :tf.shape(labels)[2]]
            return metrics.confusion_matrix(labels, preds, exp.num_classes, exp.loss.ignore_label)
        return counts

    def scores(self, counts: np.ndarray, experiment: Any) -> dict[str, Any]:
        scores = metrics.segmentation_scores(counts, experiment.class_names)
        scores["confusion_matrix"] = np.asarray(counts).tolist()
        return scores

    def format_scores(self, scores: dict[str, Any]) -> str:
        return metrics.format_segmentation_table(scores)

    def serving_settings(self, experiment: Any, *, top_k: int = 5,
                         include_probabilities: bool = False) -> dict[str, Any]:
        return dict(image_size=experiment.eval_image_size, flip=experiment.eval_flip,
                    scales=tuple(experiment.eval_scales), tile_size=experiment.eval_tile_size,
                    include_probabilities=include_probabilities)
