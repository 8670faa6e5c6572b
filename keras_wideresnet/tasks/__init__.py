"""Tasks: what differs between classification and segmentation, behind one interface
(docs/architecture.md §7). ``get_task(Experiment.task)`` returns the registered task."""

from keras_wideresnet.tasks.base import LossFn, Task, get_task, register_task, registered_tasks
from keras_wideresnet.tasks.classification import ClassificationTask
from keras_wideresnet.tasks.segmentation import SegmentationTask

__all__ = ["ClassificationTask", "LossFn", "SegmentationTask", "Task", "get_task", "register_task",
           "registered_tasks"]
