"""Image classification (paper §4): softmax cross-entropy, top-1/top-5 at the eval crop."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from keras_wideresnet.tasks import losses, metrics
from keras_wideresnet.tasks.base import LossFn, Task, register_task
from keras_wideresnet.tasks.inference import classification_probs


@register_task
class ClassificationTask(Task):
    """ImageNet-style classification; the model ends in ``classes`` logits."""

    name = "classification"
    record_kind = "classification"

    def model_kwargs(self, experiment: Any) -> dict[str, Any]:
        return dict(classes=experiment.num_classes, classifier_activation=None)

    def loss_fn(self, experiment: Any) -> LossFn:
        fn = functools.partial(losses.classification_loss,
                               label_smoothing=experiment.loss.label_smoothing)
        fn.__name__ = "classification_loss"  # type: ignore[attr-defined]
        return fn

    def eval_input_kwargs(self, experiment: Any) -> dict[str, Any]:
        return dict(image_size=experiment.eval_image_size,
                    eval_resize_shorter=experiment.eval_resize_shorter)

    def eval_counts_shape(self, experiment: Any) -> tuple[int, ...]:
        return (3,)

    def eval_counts_fn(self, model, experiment: Any):
        def counts(images, labels):
            return metrics.topk_hits(labels, classification_probs(model, images,
                                                                  flip=experiment.eval_flip))
        return counts

    def scores(self, counts: np.ndarray, experiment: Any) -> dict[str, Any]:
        return metrics.classification_scores(counts)

    def format_scores(self, scores: dict[str, Any]) -> str:
        return (f"top-1 accuracy: {100 * scores['top1']:.2f}%   top-5 accuracy: "
                f"{100 * scores['top5']:.2f}%   ({scores['num_examples']} images)")

    def serving_settings(self, experiment: Any, *, top_k: int = 5,
                         include_probabilities: bool = False) -> dict[str, Any]:
        return dict(image_size=experiment.eval_image_size, top_k=top_k,
                    resize_shorter=experiment.eval_resize_shorter, flip=experiment.eval_flip)

    def eval_labels(self, targets: Any) -> np.ndarray:
        return np.asarray(targets)
