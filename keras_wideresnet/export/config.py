"""What an exported model does: task, preprocessing and output settings.

A :class:`ServingConfig` holds exactly the evaluation settings of an
:class:`~keras_wideresnet.training.experiment.Experiment` (the classification test
protocol and the segmentation testing of the paper's §4–5), so the serving graph reproduces ``keras-wideresnet-evaluate``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

from keras_wideresnet.tasks import get_task

# The output formats the signatures serve (a task's record kind), and whether the image the
# model sees is a padded canvas (segmentation) or the crop itself (classification).
PADDED_INPUT = {"classification": False, "segmentation": True}
TASKS = tuple(PADDED_INPUT)


@dataclasses.dataclass(frozen=True)
class ServingConfig:
    """Settings baked into the exported signatures.

    Attributes:
      task: ``"classification"`` (top-k classes per image) or ``"segmentation"`` (a class map
        per image): the ``record_kind`` of the experiment's task.
      class_names: One name per class (written as the ``labels.txt`` asset).
      image_size: Classification: centre-crop side. Segmentation: the longer side every
        image is resized to.
      resize_shorter: Classification: shorter side before the crop (default ``image_size``).
      top_k: Classification: how many top classes (ids, names, scores) to return.
      flip: Average with the mirrored image.
      scales: Segmentation test scales (multi-scale averaging).
      tile_size: Segmentation sliding-window tile (``None``: whole image).
      pad_multiple: Segmentation canvas multiple (8: the network's output stride).
      include_probabilities: Segmentation: also return per-pixel class probabilities.
    """

    task: str
    class_names: tuple[str, ...]
    image_size: int
    resize_shorter: int | None = None
    top_k: int = 5
    flip: bool = False
    scales: tuple[float, ...] = (1.0,)
    tile_size: int | None = None
    pad_multiple: int = 8
    include_probabilities: bool = False

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"ServingConfig.task must be one of {TASKS}. Received: task={self.task!r}")
        names = tuple(str(n) for n in self.class_names)
        object.__setattr__(self, "class_names", names)
        object.__setattr__(self, "scales", tuple(float(s) for s in self.scales))
        if not names:
            raise ValueError("ServingConfig.class_names is empty: pass one name per class "
                             "(Experiment.class_names, or the ids '0'..'C-1').")
        bad = [n for n in names if "\n" in n or "\r" in n or not n]
        if bad:
            raise ValueError("Class names must be non-empty single-line strings (they are written "
                             f"one per line to labels.txt). Received: {bad[:3]}")
        if not isinstance(self.image_size, int) or self.image_size < 32:
            raise ValueError("ServingConfig.image_size must be an integer >= 32 (the model's "
                             f"minimum input). Received: image_size={self.image_size!r}")
        if self.resize_shorter is not None and self.resize_shorter < self.image_size:
            raise ValueError("ServingConfig.resize_shorter must be >= image_size (the crop is "
                             f"taken from the resized image). Received: resize_shorter="
                             f"{self.resize_shorter}, image_size={self.image_size}")
        if self.top_k < 1:
            raise ValueError(f"ServingConfig.top_k must be >= 1. Received: top_k={self.top_k}")
        if not self.scales or min(self.scales) <= 0:
            raise ValueError("ServingConfig.scales must be positive test scales, e.g. (1.0,). "
                             f"Received: scales={self.scales}")
        if self.pad_multiple < 1:
            raise ValueError(f"ServingConfig.pad_multiple must be >= 1. Received: {self.pad_multiple}")
        if self.tile_size is not None and self.tile_size < 32:
            raise ValueError(f"ServingConfig.tile_size must be None or >= 32. Received: {self.tile_size}")

    @property
    def input_side(self) -> int:
        """Side of the square image the model sees: the classification crop, or the
        segmentation canvas (``image_size`` rounded up to ``pad_multiple``)."""
        multiple = self.pad_multiple if PADDED_INPUT[self.task] else 1
        return -(-self.image_size // multiple) * multiple

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def effective_top_k(self) -> int:
        """``top_k`` capped at the number of classes."""
        return min(self.top_k, self.num_classes)

    def to_json_dict(self) -> dict[str, Any]:
        """A JSON-serialisable description (written to ``assets.extra/serving_config.json``)."""
        return dataclasses.asdict(self)


def from_experiment(experiment: Any, top_k: int = 5, include_probabilities: bool = False,
                    class_names: Sequence[str] | None = None) -> ServingConfig:
    """The serving settings that reproduce ``experiment``'s evaluation.

    Args:
      experiment: A :class:`keras_wideresnet.training.experiment.Experiment`.
      top_k: Classification top-k.
      include_probabilities: Segmentation: also return per-pixel probabilities.
      class_names: Overrides ``experiment.label_names()``.
    """
    names = tuple(class_names) if class_names is not None else tuple(experiment.label_names())
    if len(names) != experiment.num_classes:
        raise ValueError(f"{len(names)} class names were given but the experiment has "
                         f"num_classes={experiment.num_classes}.")
    task = get_task(experiment.task)
    settings = task.serving_settings(experiment, top_k=top_k,
                                     include_probabilities=include_probabilities)
    return ServingConfig(task=task.record_kind, class_names=names, **settings)
