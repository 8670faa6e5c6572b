"""The task interface and its registry, in the spirit of Model Garden's ``base_task.Task``.

A task is what differs between classification and segmentation: how the model is called, the
training loss, the eval inputs, the eval step's integer counts and the scores made from them,
the serving settings and the loss the path analysis differentiates. The trainer, the evaluator,
the exporter, the agreement check and the path analysis take a task and never branch on its
name; ``Experiment.task`` names a registered class.

A new task is one module with a :class:`Task` subclass and :func:`register_task`; pass the
module to the CLIs with ``--imports=my_package.my_task``.
"""

from __future__ import annotations

import abc
from typing import Any, Callable

import numpy as np
import tensorflow as tf

LossFn = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]
CountsFn = Callable[[tf.Tensor, Any], tf.Tensor]

_REGISTRY: dict[str, type["Task"]] = {}


class Task(abc.ABC):
    """One task's behaviour; every method reads its settings from the ``experiment``.

    Attributes:
      name: the ``Experiment.task`` value that selects this class.
      record_kind: the TFRecord schema the pipelines read and the exported signatures serve,
        ``"classification"`` (a class label per image) or ``"segmentation"`` (a mask per image).
    """

    name: str = ""
    record_kind: str = ""

    def build_model(self, experiment: Any, **overrides: Any):
        """The model as trained: logits out, float32 head."""
        kwargs = self.model_kwargs(experiment)
        kwargs.update(overrides)
        return experiment.model_fn(**kwargs)

    @abc.abstractmethod
    def model_kwargs(self, experiment: Any) -> dict[str, Any]:
        """Arguments ``Experiment.model_fn`` gets besides the gin bindings."""

    @abc.abstractmethod
    def loss_fn(self, experiment: Any) -> LossFn:
        """``loss(labels, logits)``: the mean training loss of one replica's batch."""

    @abc.abstractmethod
    def eval_input_kwargs(self, experiment: Any) -> dict[str, Any]:
        """The eval pipeline's preprocessing sizes (shared with the exported SavedModel)."""

    @abc.abstractmethod
    def eval_counts_shape(self, experiment: Any) -> tuple[int, ...]:
        """Shape of the int64 counts one eval step returns."""

    @abc.abstractmethod
    def eval_counts_fn(self, model: Any, experiment: Any) -> CountsFn:
        """``counts(images, targets)`` for one replica: integer counts that sum exactly across
        replicas and workers (docs/architecture.md §7.5)."""

    @abc.abstractmethod
    def scores(self, counts: np.ndarray, experiment: Any) -> dict[str, Any]:
        """The scores from the summed counts of the whole eval set."""

    @abc.abstractmethod
    def format_scores(self, scores: dict[str, Any]) -> str:
        """The scores as the CLIs print them."""

    @abc.abstractmethod
    def serving_settings(self, experiment: Any, *, top_k: int = 5,
                         include_probabilities: bool = False) -> dict[str, Any]:
        """The eval settings the exported SavedModel reproduces (``ServingConfig`` fields),
        with the export options that apply to this task (``top_k`` for classes,
        ``include_probabilities`` for class maps)."""

    def eval_labels(self, targets: Any) -> np.ndarray | None:
        """Per-example class labels of an eval batch, when the task has them (agreement's
        accuracy), else None."""
        return None

    def analysis_loss_fn(self, experiment: Any) -> LossFn:
        """The loss the path analysis differentiates: the training loss."""
        return self.loss_fn(experiment)


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: makes ``cls`` available as ``Experiment.task = cls.name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__}.name is empty: set the name Experiment.task selects it by.")
    if cls.record_kind not in ("classification", "segmentation"):
        raise ValueError(f"{cls.__name__}.record_kind must be 'classification' or 'segmentation'. "
                         f"Received: {cls.record_kind!r}")
    _REGISTRY[cls.name] = cls
    return cls


def registered_tasks() -> tuple[str, ...]:
    return tuple(sorted(_REGISTRY))


def get_task(name: str) -> Task:
    """A new instance of the task registered as ``name``."""
    if name not in _REGISTRY:
        raise ValueError(f"Experiment.task={name!r} is not a registered task; registered: "
                         f"{registered_tasks()}. A task of your own is registered with "
                         "keras_wideresnet.tasks.register_task, in a module passed with --imports.")
    return _REGISTRY[name]()
