"""The training step and its timer, shared by the trainer and the benchmark harness.

:func:`build_replica_step` is the one place a training step is defined: forward, loss,
backward (optionally XLA-compiled), the optimizer's gradient adjustments (paper §6, the
learning-rate multipliers and weight-decay masks of :func:`optimization.adjust_gradients`) and
the update. The trainer runs it inside ``strategy.run``; ``tools/benchmark.py`` and the
wider-or-deeper comparison time the same function, so what they measure is what training runs.

:func:`timed_call` is the one step timer: it synchronises the step by fetching its result.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable

import keras
import numpy as np
import tensorflow as tf

from keras_wideresnet.training import optimization
from keras_wideresnet.training.experiment import OptimizerConfig

LossFn = Callable[[Any, Any], Any]  # (labels, logits) -> scalar loss


def build_replica_step(model: keras.Model, optimizer: keras.optimizers.Optimizer,
                       loss_fn: LossFn, *, optimizer_config: OptimizerConfig | None = None,
                       num_replicas: int = 1, jit_compile: bool = False
                       ) -> Callable[[Any, Any], tuple[Any, Any]]:
    """One replica's training step ``(images, labels) -> (loss / num_replicas, batch size)``.

    The loss is divided by ``num_replicas`` before the backward pass, so gradients summed across
    replicas are the global-batch average. A :class:`keras.optimizers.LossScaleOptimizer` scales
    the loss and unscales the gradients. ``jit_compile`` compiles the forward and backward pass
    with XLA; the update stays outside it (a cross-replica update cannot be compiled).
    ``optimizer_config`` applies its gradient multipliers and weight decay; ``None`` applies the
    raw gradients.
    """
    variables = model.trainable_variables
    scaled_optimizer = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)

    def loss_and_grads(images, labels):
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, model(images, training=True))
            scaled = loss / num_replicas  # summed across replicas = the device average
            if scaled_optimizer:
                scaled = optimizer.scale_loss(scaled)
        return loss, tape.gradient(scaled, [v.value for v in variables])

    grads_fn = tf.function(loss_and_grads, jit_compile=True) if jit_compile else loss_and_grads

    def replica_step(images, labels):
        loss, grads = grads_fn(images, labels)
        if optimizer_config is not None:
            loss_scale = optimizer.dynamic_scale if scaled_optimizer else 1.0
            grads = optimization.adjust_gradients(grads, variables, optimizer_config, loss_scale)
        optimizer.apply_gradients(zip(grads, variables))
        return loss / num_replicas, tf.shape(images)[0]

    return replica_step


@dataclasses.dataclass(frozen=True)
class StepTime:
    """Wall and process CPU seconds (all threads) of one synchronised call."""

    wall_s: float
    cpu_s: float


def timed_call(fn: Callable[[], Any]) -> tuple[Any, StepTime]:
    """Calls ``fn`` and fetches its result to host memory (NumPy), so the time covers the
    device's work; returns the fetched result and the time."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = tf.nest.map_structure(np.asarray, fn())
    return out, StepTime(time.perf_counter() - t0, time.process_time() - c0)


def time_steps(step: Callable[[], Any], warmup: int, iters: int,
               after_warmup: Callable[[], Any] | None = None
               ) -> tuple[list[StepTime], float]:
    """``warmup`` untimed calls (tracing, kernel selection), then ``iters`` timed ones.

    Returns the per-step times and the warm-up's wall seconds. ``after_warmup`` runs between the
    two (e.g. to reset an allocator's peak statistics).
    """
    if iters < 1 or warmup < 0:
        raise ValueError(f"iters must be >= 1 and warmup >= 0. Received: {iters}, {warmup}")
    start = time.perf_counter()
    for _ in range(warmup):
        timed_call(step)
    warmup_s = time.perf_counter() - start
    if after_warmup is not None:
        after_warmup()
    return [timed_call(step)[1] for _ in range(iters)], warmup_s


__all__ = ["StepTime", "build_replica_step", "time_steps", "timed_call"]
