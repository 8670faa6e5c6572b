"""The distributed eval loop any task runs: exact across replicas and workers
(docs/architecture.md §7.5). The trainer's periodic evaluation and the evaluator share it."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_wideresnet.tasks.base import Task


def eval_dataset(task: Task, experiment: Any, input_context: tf.distribute.InputContext | None = None
                 ) -> tf.data.Dataset:
    """The experiment's eval pipeline with the task's eval preprocessing sizes."""
    if experiment.eval_data is None:
        raise ValueError("Experiment.eval_data is not set: bind it in gin, e.g. "
                         "`Experiment.eval_data = @eval/segmentation_dataset`.")
    return experiment.eval_data(input_context=input_context, is_training=False,
                                **task.eval_input_kwargs(experiment))


def _num_batches(task: Task, experiment: Any) -> int | None:
    """Global eval batches, when the eval stream knows its length (``None`` otherwise). Building
    the unsharded stream reads no record."""
    n = int(eval_dataset(task, experiment).cardinality())
    return n if n > 0 else None


def run_eval(model: keras.Model, task: Task, experiment: Any,
             strategy: tf.distribute.Strategy | None = None, verbose: int = 1) -> dict[str, Any]:
    """Runs the eval data through ``model``: each replica returns the task's integer counts,
    they are summed with ``strategy.reduce(SUM)`` and the task turns the total into scores."""
    exp = experiment
    strategy = strategy or tf.distribute.get_strategy()
    dataset = strategy.distribute_datasets_from_function(
        lambda ctx: eval_dataset(task, exp, ctx))
    iterator = iter(dataset)
    replica_fn = task.eval_counts_fn(model, exp)
    zeros = tf.zeros(task.eval_counts_shape(exp), tf.int64)

    @tf.function
    def step():
        # get_next_as_optional keeps every worker in step when shards differ in length.
        optional = iterator.get_next_as_optional()
        if optional.has_value():
            counts = strategy.run(replica_fn, args=optional.get_value())
            return True, strategy.reduce(tf.distribute.ReduceOp.SUM, counts, axis=None)
        return False, zeros

    total = np.zeros(zeros.shape, np.int64)
    progbar = keras.utils.Progbar(exp.eval_steps or _num_batches(task, exp), unit_name="batch",
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
    return task.scores(total, exp)
