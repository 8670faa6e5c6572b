"""Optimizer, learning-rate schedules, weight decay and lr multipliers."""

from __future__ import annotations

from typing import Sequence

import keras
import tensorflow as tf

from keras_wideresnet.training.experiment import OptimizerConfig

SCHEDULES = ("linear", "poly", "step", "cosine", "constant")


@keras.saving.register_keras_serializable(package="keras_wideresnet")
class WarmUp(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to the wrapped schedule's value at ``warmup_steps``."""

    def __init__(self, schedule, warmup_steps: int):
        self.schedule = schedule
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        target = self.schedule(step)
        ramp = target * step / float(max(self.warmup_steps, 1))
        return tf.where(step < self.warmup_steps, ramp, target)

    def get_config(self):
        return {"schedule": keras.optimizers.schedules.serialize(self.schedule),
                "warmup_steps": self.warmup_steps}


def build_schedule(config: OptimizerConfig, total_steps: int):
    """ademxapp's ``LinearScheduler`` is ``poly`` with power 1 down to ``end_learning_rate``."""
    lr = config.learning_rate
    if config.schedule not in SCHEDULES:
        raise ValueError(f"OptimizerConfig.schedule must be one of {SCHEDULES}. "
                         f"Received: {config.schedule!r}")
    if config.schedule in ("linear", "poly"):
        power = 1.0 if config.schedule == "linear" else config.power
        schedule = keras.optimizers.schedules.PolynomialDecay(
            lr, decay_steps=max(1, total_steps), end_learning_rate=config.end_learning_rate,
            power=power)
    elif config.schedule == "step":
        if len(config.step_values) != len(config.boundaries) + 1:
            raise ValueError("OptimizerConfig.step_values needs one more entry than boundaries. "
                             f"Received: boundaries={config.boundaries}, "
                             f"step_values={config.step_values}")
        schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
            list(config.boundaries), [lr * v for v in config.step_values])
    elif config.schedule == "cosine":
        schedule = keras.optimizers.schedules.CosineDecay(lr, decay_steps=max(1, total_steps))
    else:
        schedule = keras.optimizers.schedules.PiecewiseConstantDecay([1], [lr, lr])
    if config.warmup_steps:
        schedule = WarmUp(schedule, config.warmup_steps)
    return schedule


@keras.saving.register_keras_serializable(package="keras_wideresnet")
class FusedSGD(keras.optimizers.SGD):
    """Keras SGD whose momentum update is TF's fused ``ResourceApplyKerasMomentum`` kernel.

    Same update as :class:`keras.optimizers.SGD` (``m ← μm − ηg``; ``w ← w + m``, or
    ``w ← w + μm − ηg`` with Nesterov), in one kernel per variable instead of six elementwise
    ops. In a ``tf.function`` the unfused form's gradient-independent ``μ·m`` runs as soon as
    the step starts and holds a weight-sized temporary per variable until that variable's
    gradient arrives (≈ the size of all weights at the step's peak); the fused kernel needs
    nothing before the gradient, so each gradient is consumed and freed as backprop makes it
    (``tools/benchmark.py`` measures both: the ``keras_sgd`` rows).
    Other cases (no momentum, sparse gradients) fall back to Keras' own update.
    """

    def update_step(self, gradient, variable, learning_rate):
        if self.momentum == 0 or isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable, learning_rate)
        var = variable.value if isinstance(variable, keras.Variable) else variable
        accum = self.momentums[self._get_variable_index(variable)]
        dtype = var.dtype
        tf.raw_ops.ResourceApplyKerasMomentum(
            var=var.handle, accum=accum.value.handle, lr=tf.cast(learning_rate, dtype),
            grad=tf.cast(gradient, dtype), momentum=tf.cast(self.momentum, dtype),
            use_nesterov=self.nesterov)


def build_optimizer(config: OptimizerConfig, total_steps: int, mixed_precision: str | None = None,
                    fused: bool = True):
    """SGD with momentum (Nesterov optional); a loss-scale wrapper for ``mixed_float16``.
    ``fused=False`` gives Keras' own SGD (the same update), for comparisons."""
    optimizer = (FusedSGD if fused else keras.optimizers.SGD)(
        learning_rate=build_schedule(config, total_steps), momentum=config.momentum,
        nesterov=config.nesterov, global_clipnorm=config.clipnorm)
    if mixed_precision == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def is_decayed(var) -> bool:
    """Coupled L2 decay on conv/FC kernels and BN γ only (MXNet ``_weight``/``_gamma``)."""
    name = var.path.rsplit("/", 1)[-1]
    return name in ("kernel", "gamma")


def is_bias_like(var) -> bool:
    """Biases and BN β: lr × ``bias_lr_multiplier``, no decay (``lr_type='alex'``)."""
    name = var.path.rsplit("/", 1)[-1]
    return name in ("bias", "beta")


def adjust_gradients(grads: Sequence[tf.Tensor], variables: Sequence, config: OptimizerConfig,
                     loss_scale: tf.Tensor | float = 1.0) -> list[tf.Tensor]:
    """Adds ``weight_decay · w`` (kernels, γ) and scales bias/β gradients by the lr multiplier.

    With SGD (+ momentum), scaling a variable's gradient is exactly scaling its learning rate.
    ``loss_scale`` keeps the decay term right when gradients are still loss-scaled (fp16).
    """
    out = []
    for g, v in zip(grads, variables):
        if g is None:
            out.append(g)
            continue
        if config.weight_decay and is_decayed(v):
            g = g + tf.cast(config.weight_decay * loss_scale, g.dtype) * tf.cast(v.value, g.dtype)
        elif config.bias_lr_multiplier != 1.0 and is_bias_like(v):
            g = g * tf.cast(config.bias_lr_multiplier, g.dtype)
        out.append(g)
    return out
