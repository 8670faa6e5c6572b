"""The distributed custom training loop.

* Resume is implicit: the newest checkpoint in ``model_dir`` is restored (step, model,
  optimizer and hence the schedule); otherwise ``init_checkpoint`` is loaded.
* Checkpoints every ``checkpoint_interval`` steps keep the last ``max_to_keep``; a non-finite
  loss, weight or momentum stops training with an error and leaves the last good checkpoint in
  place.
* Summaries go to ``model_dir/train`` and ``model_dir/validation`` (TensorBoard).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from typing import Any, Protocol, Sequence

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from keras_wideresnet.tasks import get_task
from keras_wideresnet.tasks.eval_loop import run_eval
from keras_wideresnet.training import optimization
from keras_wideresnet.training.distribute import is_chief
from keras_wideresnet.training.checkpoints import checkpoint_name, restore_model
from keras_wideresnet.training.experiment import Experiment
from keras_wideresnet.training.fused_batch_norm import use_fused_batch_norm
from keras_wideresnet.training.train_step import build_replica_step, timed_call


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN/Inf loss."""


class StepAction(Protocol):
    """Work the trainer runs every ``interval`` steps, after that step's checkpoint (Orbit's
    "actions"). ``name`` identifies it; ``keras-wideresnet-train`` adds the path analysis this
    way (:func:`keras_wideresnet.analysis.path_analysis_action`)."""

    name: str
    interval: int

    def __call__(self, trainer: "Trainer", step: int) -> None: ...


def set_precision_policy(mixed_precision: str | None) -> None:
    keras.config.set_dtype_policy(mixed_precision or "float32")


class Trainer:
    """Builds the model and optimizer under a strategy and runs train / eval.

    Args:
      experiment: The :class:`Experiment`.
      model_dir: Where checkpoints, summaries and metrics go.
      strategy: A ``tf.distribute.Strategy``.
      actions: :class:`StepAction` s run during training at their intervals.
    """

    def __init__(self, experiment: Experiment, model_dir: str,
                 strategy: tf.distribute.Strategy | None = None,
                 actions: Sequence[StepAction] = ()):
        if experiment.path_analysis_interval and not any(a.name == "path_analysis" for a in actions):
            raise ValueError(
                "Experiment.path_analysis_interval is set but no path-analysis action was given: "
                "pass actions=[keras_wideresnet.analysis.path_analysis_action(experiment)] "
                "(keras-wideresnet-train does).")
        self.actions = tuple(actions)
        self.experiment = experiment
        self.task = get_task(experiment.task)
        self.model_dir = model_dir
        self.strategy = strategy or tf.distribute.get_strategy()
        self.chief = is_chief(self.strategy)
        if experiment.seed is not None:
            keras.utils.set_random_seed(experiment.seed)
        if experiment.deterministic:
            tf.config.experimental.enable_op_determinism()
        set_precision_policy(experiment.mixed_precision)
        with self.strategy.scope():
            self.model = experiment.build_model()
            if experiment.fused_batch_norm:
                logging.info("Training %d BN layers with TF's fused kernel.",
                             use_fused_batch_norm(self.model))
            self.optimizer = optimization.build_optimizer(
                experiment.optimizer, experiment.train_steps, experiment.mixed_precision)
            # Keras 3 creates slots lazily; build them before the tf.function loop.
            self.optimizer.build(self.model.trainable_variables)
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step",
                                    aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        self.checkpoint = tf.train.Checkpoint(
            step=self.step,
            model=tf.train.Checkpoint(**{checkpoint_name(v): v.value for v in self.model.weights}),
            optimizer=tf.train.Checkpoint(
                **{f"v{i}": v.value for i, v in enumerate(self.optimizer.variables)}))
        directory = model_dir if self.chief else tempfile.mkdtemp(prefix="kwr_worker_ckpt_")
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, directory, max_to_keep=experiment.max_to_keep,
            checkpoint_name="ckpt", step_counter=self.step,
            checkpoint_interval=experiment.checkpoint_interval)
        self._train_fn = None
        self._loss = self.task.loss_fn(experiment)

    # --- Checkpoints ------------------------------------------------------------------------
    def restore_or_initialize(self) -> str:
        """Restores the newest checkpoint in ``model_dir``; else loads ``init_checkpoint``."""
        latest = self.manager.latest_checkpoint or tf.train.latest_checkpoint(self.model_dir)
        if latest:
            # Shapes are checked first, so an incompatible checkpoint gets a clear message.
            restore_model(self.model, latest)
            self.checkpoint.restore(latest).assert_existing_objects_matched()
            return f"resumed from {latest} at step {int(self.step.numpy())}"
        init = self.experiment.init_checkpoint
        if init and init.endswith(".h5") and not os.path.exists(init):
            raise FileNotFoundError(
                f"Experiment.init_checkpoint {init!r} does not exist. The paper's recipes start "
                "from the ImageNet weights: convert the released ademxapp file first, e.g.\n"
                "  keras-wideresnet-convert-weights --input=ilsvrc-cls_rna-a1_cls1000_ep-0001.params "
                f"--model=resnet38_a1 --output={init}\n"
                "(docs/weights.md lists the files), or start from random weights with "
                "--gin_bindings=\"Experiment.init_checkpoint=None\".")
        if init:
            what = restore_model(self.model, self.experiment.init_checkpoint,
                                 self.experiment.init_checkpoint_modules)
            return f"initialized {self.experiment.init_checkpoint_modules} from {what}"
        return "initialized from scratch"

    # --- Training ---------------------------------------------------------------------------
    def _make_train_fn(self):
        strategy = self.strategy
        replica_step = build_replica_step(
            self.model, self.optimizer, self._loss, optimizer_config=self.experiment.optimizer,
            num_replicas=strategy.num_replicas_in_sync, jit_compile=self.experiment.jit_compile)

        def train_loop(iterator, num_steps):
            total, images_seen = tf.constant(0.0), tf.constant(0)
            finite = tf.constant(True)
            for _ in tf.range(num_steps):
                images, labels = next(iterator)
                per_replica = strategy.run(replica_step, args=(images, labels))
                loss, count = (strategy.reduce(tf.distribute.ReduceOp.SUM, t, axis=None)
                               for t in per_replica)
                finite = tf.logical_and(finite, tf.math.is_finite(loss))
                total += loss
                images_seen += count
                self.step.assign_add(1)
            # A finite loss can still come with an update that overflowed the weights or the
            # momentum; such a state must not be checkpointed as "good".
            finite = tf.logical_and(finite, self._state_is_finite())
            return total / tf.cast(num_steps, tf.float32), finite, images_seen

        return tf.function(train_loop)

    def _state_is_finite(self):
        """Whether every float weight (BN statistics included) and optimizer slot is finite."""
        state = [v for v in [*self.model.weights, *self.optimizer.variables]
                 if keras.backend.is_float_dtype(v.dtype)]
        return tf.reduce_all(tf.stack([tf.reduce_all(tf.math.is_finite(v.value)) for v in state]))

    def _learning_rate(self) -> float:
        opt = self.optimizer
        inner = getattr(opt, "inner_optimizer", opt)
        lr = inner.learning_rate
        return float(keras.ops.convert_to_numpy(lr))

    def train(self) -> dict[str, Any]:
        """Trains until ``experiment.train_steps`` (resuming), then saves a final checkpoint."""
        exp = self.experiment
        if exp.train_data is None:
            raise ValueError("Experiment.train_data is not set: bind it in gin, e.g. "
                             "`Experiment.train_data = @train/segmentation_dataset`.")
        dataset = self.strategy.distribute_datasets_from_function(
            lambda ctx: exp.train_data(input_context=ctx, is_training=True))
        iterator = iter(dataset)
        if self._train_fn is None:
            self._train_fn = self._make_train_fn()
        writer = tf.summary.create_file_writer(os.path.join(self.model_dir, "train")) \
            if self.chief else tf.summary.create_noop_writer()
        start = int(self.step.numpy())
        progbar = keras.utils.Progbar(exp.train_steps, stateful_metrics=["loss", "lr", "img/s"],
                                      verbose=1 if self.chief else 0)
        progbar.update(start)
        history = []
        eval_every = exp.eval_interval
        while int(self.step.numpy()) < exp.train_steps:
            step = int(self.step.numpy())
            n = self._steps_until_boundary(step)
            (loss, finite, images_seen), took = timed_call(
                lambda: self._train_fn(iterator, tf.constant(n, tf.int32)))
            loss = float(loss)
            if not bool(finite):
                raise NonFiniteLossError(
                    f"Loss or weights became NaN/Inf between steps {step} and {step + n}. The last "
                    f"good checkpoint ({self.manager.latest_checkpoint}) is kept; lower the learning "
                    "rate, enable loss scaling (mixed_float16) or check the labels, then re-run "
                    "the same command to resume.")
            step += n
            lr = self._learning_rate()
            images_per_s = int(images_seen) / max(took.wall_s, 1e-9)
            history.append({"step": step, "loss": loss, "lr": lr})
            progbar.update(step, [("loss", loss), ("lr", lr), ("img/s", images_per_s)])
            with writer.as_default(step=step):
                tf.summary.scalar("loss", loss)
                tf.summary.scalar("learning_rate", lr)
                tf.summary.scalar("images_per_second", images_per_s)
            if exp.checkpoint_interval and step % exp.checkpoint_interval == 0:
                self.manager.save(checkpoint_number=step, check_interval=False)
            for action in self.actions:
                if step % action.interval == 0:
                    action(self, step)
            if eval_every and exp.eval_data is not None and step % eval_every == 0 \
                    and step < exp.train_steps:
                self.evaluate()
        final, latest = int(self.step.numpy()), self.manager.latest_checkpoint
        if latest is None or int(latest.rsplit("-", 1)[-1]) != final:  # not saved at a multiple
            self.manager.save(checkpoint_number=final, check_interval=False)
        writer.flush()
        return {"step": int(self.step.numpy()), "loss": history[-1]["loss"] if history else None,
                "history": history}

    def _steps_until_boundary(self, step: int) -> int:
        """Steps of the next loop: ``steps_per_loop``, cut short at the last step and at the next
        multiple of ``checkpoint_interval`` and ``eval_interval``, so that checkpoints and
        evaluations fall exactly on those multiples."""
        exp = self.experiment
        n = min(exp.steps_per_loop, exp.train_steps - step)
        for interval in (exp.checkpoint_interval, exp.eval_interval,
                         *(a.interval for a in self.actions)):
            if interval:
                n = min(n, interval - step % interval)
        return n

    # --- Evaluation -------------------------------------------------------------------------
    def evaluate(self) -> dict[str, Any]:
        """Evaluates the current weights and writes ``model_dir/metrics_<step>.json``."""
        exp = self.experiment
        scores = run_eval(self.model, self.task, exp, self.strategy)
        step = int(self.step.numpy())
        scores["step"] = step
        if self.chief:
            writer = tf.summary.create_file_writer(os.path.join(self.model_dir, "validation"))
            with writer.as_default(step=step):
                for k, v in scores.items():
                    if isinstance(v, (int, float)) and k != "step":
                        tf.summary.scalar(k, v)
            writer.flush()
            with tf.io.gfile.GFile(os.path.join(self.model_dir, f"metrics_{step}.json"), "w") as f:
                json.dump(scores, f, indent=2, default=_json_default)
        return scores


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return None if math.isnan(o) else float(o)
    raise TypeError(type(o))


def run(experiment: Experiment, model_dir: str, mode: str = "train_and_eval",
        strategy: tf.distribute.Strategy | None = None,
        actions: Sequence[StepAction] = ()) -> dict[str, Any]:
    """Runs ``train``, ``eval`` or ``train_and_eval`` (the body of ``keras-wideresnet-train``)."""
    if mode not in ("train", "eval", "train_and_eval"):
        raise ValueError(f"--mode must be train, eval or train_and_eval. Received: {mode!r}")
    trainer = Trainer(experiment, model_dir, strategy, actions)
    status = trainer.restore_or_initialize()
    logging.info("Model %s: %s parameters; %s", trainer.model.name,
                 f"{trainer.model.count_params():,}", status)
    print(f"[keras_wideresnet] {status}", flush=True)
    result: dict[str, Any] = {"status": status}
    if mode in ("train", "train_and_eval"):
        result["train"] = trainer.train()
    if mode in ("eval", "train_and_eval"):
        if mode == "eval" and not trainer.manager.latest_checkpoint \
                and not experiment.init_checkpoint:
            raise FileNotFoundError(f"--mode=eval needs a checkpoint in {model_dir!r} (or "
                                    "Experiment.init_checkpoint); train first.")
        result["eval"] = trainer.evaluate()
    result["trainer"] = trainer
    return result
