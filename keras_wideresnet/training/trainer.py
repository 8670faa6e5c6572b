"""The distributed custom training loop.

* Resume is implicit: the newest checkpoint in ``model_dir`` is restored (step, model,
  optimizer and hence the schedule); otherwise ``init_checkpoint`` is loaded.
* Checkpoints every ``checkpoint_interval`` steps keep the last ``max_to_keep``. A newest
  checkpoint that cannot be read (cut short by a full disk or a crash) is passed over, with a
  warning, for the previous good one.
* A non-finite loss, weight or momentum stops training with an error and leaves the last good
  checkpoint in place; with ``Experiment.recovery_max_trials`` (and ``loss_upper_bound``) it
  reloads that checkpoint and goes on instead, as Model Garden's trainer does.
* A :class:`~keras_wideresnet.training.faults.StopSignal` (SIGTERM, in the CLI) saves a
  checkpoint at the step reached and raises
  :class:`~keras_wideresnet.training.faults.TrainingPreempted`.
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
from keras_wideresnet.training.distribute import is_chief, num_workers
from keras_wideresnet.training.faults import StopSignal, TrainingPreempted, WorkerLostError, \
    lost_worker_message
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
      stop: A :class:`StopSignal`; when set, training saves and raises ``TrainingPreempted``.
    """

    def __init__(self, experiment: Experiment, model_dir: str,
                 strategy: tf.distribute.Strategy | None = None,
                 actions: Sequence[StepAction] = (), stop: StopSignal | None = None):
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
        self.stop = stop or StopSignal()
        # One worker stops inside a compiled loop, at the step it is on; several workers stop at
        # the end of a loop, where they agree on it (a worker leaving a loop alone would leave
        # its peers waiting in a collective).
        self._stops_within_loop = num_workers(self.strategy) == 1
        self._stop_flag = tf.Variable(False, trainable=False, name="stop_requested")
        if self._stops_within_loop:
            self.stop.subscribe(lambda: self._stop_flag.assign(True))
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
        restored = self._restore_newest_readable()
        if restored:
            return f"resumed from {restored} at step {int(self.step.numpy())}"
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

    def _checkpoints_newest_first(self) -> list[str]:
        """The checkpoints of ``model_dir`` (the chief's, also on other workers), newest first."""
        state = tf.train.get_checkpoint_state(self.model_dir)
        paths = list(state.all_model_checkpoint_paths) if state else []
        latest = tf.train.latest_checkpoint(self.model_dir)
        if latest and latest not in paths:
            paths.append(latest)
        return [p if os.path.isabs(p) else os.path.join(self.model_dir, p) for p in reversed(paths)]

    def _restore_newest_readable(self) -> str | None:
        """Restores the newest checkpoint that reads back whole; returns its path, or None when
        ``model_dir`` has none. One that cannot be read is left in place, with a warning (it is
        overwritten when training reaches its step again); if none can be read, it raises
        rather than start from step 0."""
        candidates = self._checkpoints_newest_first()
        unreadable = []
        for path in candidates:
            try:
                # Shapes are checked first, so an incompatible checkpoint gets a clear message.
                restore_model(self.model, path)
                self.checkpoint.restore(path).assert_existing_objects_matched()
            except (tf.errors.OpError, IndexError) as e:  # a truncated or missing data file
                unreadable.append(f"{path} ({str(e).strip().splitlines()[0][:200]})")
                continue
            if unreadable:
                message = (f"checkpoint {unreadable[0]} cannot be read; resuming from the "
                           f"previous good one, {path}")
                logging.warning(message)
                print(f"[keras_wideresnet] warning: {message}", flush=True)
            return path
        if unreadable:
            raise OSError(f"No checkpoint in {self.model_dir!r} can be read: {'; '.join(unreadable)}. "
                          "Move them aside to start from step 0.")
        return None

    # --- Training ---------------------------------------------------------------------------
    def _make_train_fn(self):
        strategy = self.strategy
        replica_step = build_replica_step(
            self.model, self.optimizer, self._loss, optimizer_config=self.experiment.optimizer,
            num_replicas=strategy.num_replicas_in_sync, jit_compile=self.experiment.jit_compile)

        stops_within_loop, stop_flag = self._stops_within_loop, self._stop_flag

        def train_loop(iterator, num_steps):
            total, images_seen, done = tf.constant(0.0), tf.constant(0), tf.constant(0)
            finite = tf.constant(True)
            for _ in tf.range(num_steps):
                if stops_within_loop and stop_flag:
                    break
                images, labels = next(iterator)
                per_replica = strategy.run(replica_step, args=(images, labels))
                loss, count = (strategy.reduce(tf.distribute.ReduceOp.SUM, t, axis=None)
                               for t in per_replica)
                finite = tf.logical_and(finite, tf.math.is_finite(loss))
                total += loss
                images_seen += count
                done += 1
                self.step.assign_add(1)
            # A finite loss can still come with an update that overflowed the weights or the
            # momentum; such a state must not be checkpointed as "good".
            finite = tf.logical_and(finite, self._state_is_finite())
            return total / tf.cast(tf.maximum(done, 1), tf.float32), finite, images_seen, done

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
        recoveries = 0
        self.stop.training = True
        try:
            while int(self.step.numpy()) < exp.train_steps:
                step = int(self.step.numpy())
                n = self._steps_until_boundary(step)
                (loss, finite, images_seen, done), took = self._run_loop(iterator, n, step)
                self.stop.step_ran()
                loss = float(loss)
                if self._blew_up(loss, bool(finite)):
                    recoveries += 1
                    self._recover_or_raise(loss, bool(finite), step, step + int(done), recoveries)
                    continue
                step += int(done)
                lr = self._learning_rate()
                images_per_s = int(images_seen) / max(took.wall_s, 1e-9)
                history.append({"step": step, "loss": loss, "lr": lr})
                progbar.update(step, [("loss", loss), ("lr", lr), ("img/s", images_per_s)])
                with writer.as_default(step=step):
                    tf.summary.scalar("loss", loss)
                    tf.summary.scalar("learning_rate", lr)
                    tf.summary.scalar("images_per_second", images_per_s)
                if self._stop_agreed():
                    writer.flush()
                    raise TrainingPreempted(step, self.manager.save(checkpoint_number=step,
                                                                    check_interval=False))
                self._after_loop(step)
        finally:
            self.stop.training = False
        final, latest = int(self.step.numpy()), self.manager.latest_checkpoint
        if latest is None or int(latest.rsplit("-", 1)[-1]) != final:  # not saved at a multiple
            self.manager.save(checkpoint_number=final, check_interval=False)
        writer.flush()
        return {"step": int(self.step.numpy()), "loss": history[-1]["loss"] if history else None,
                "history": history}

    def _run_loop(self, iterator, n: int, step: int):
        """One compiled loop of up to ``n`` steps; a collective aborted by a lost peer becomes
        a :class:`WorkerLostError` that says which peer and what to do."""
        try:
            return timed_call(lambda: self._train_fn(iterator, tf.constant(n, tf.int32)))
        except (tf.errors.UnavailableError, tf.errors.CancelledError, tf.errors.AbortedError,
                tf.errors.InternalError, tf.errors.DeadlineExceededError) as e:
            if num_workers(self.strategy) == 1:
                raise
            detail = str(e).strip().splitlines()[0][:300]
            raise WorkerLostError(lost_worker_message(step, self.manager.latest_checkpoint
                                                      or tf.train.latest_checkpoint(self.model_dir),
                                                      detail)) from e

    def _blew_up(self, loss: float, finite: bool) -> bool:
        bound = self.experiment.loss_upper_bound
        return not finite or not math.isfinite(loss) or (bound is not None and loss > bound)

    def _recover_or_raise(self, loss: float, finite: bool, step: int, end: int, trial: int) -> None:
        """Reloads the last good checkpoint (``Experiment.recovery_max_trials`` times at most),
        or raises :class:`NonFiniteLossError`, leaving that checkpoint in place."""
        exp = self.experiment
        what = ("Loss or weights became NaN/Inf" if not finite else
                f"Loss {loss:.4g} exceeded Experiment.loss_upper_bound={exp.loss_upper_bound:g}")
        last = self.manager.latest_checkpoint
        if trial <= exp.recovery_max_trials and last:
            restored = self._restore_newest_readable()
            message = (f"{what} between steps {step} and {end}: recovery {trial} of "
                       f"{exp.recovery_max_trials}, reloaded {restored} (step "
                       f"{int(self.step.numpy())})")
            logging.warning(message)
            print(f"\n[keras_wideresnet] {message}", flush=True)
            return
        tried = f" after {exp.recovery_max_trials} recoveries" if exp.recovery_max_trials else ""
        raise NonFiniteLossError(
            f"{what} between steps {step} and {end}{tried}. The last good checkpoint ({last}) "
            "is kept; lower the learning rate, enable loss scaling (mixed_float16) or check the "
            "labels, then re-run the same command to resume.")

    def _stop_agreed(self) -> bool:
        """Whether any worker was asked to stop: the local request, or under several workers
        the sum of every worker's request (one scalar all-reduce), so that all stop at
        the same step."""
        if self._stops_within_loop:
            return self.stop.is_set()
        flag = tf.constant(1 if self.stop.is_set() else 0, tf.int32)
        per_replica = self.strategy.run(lambda: tf.identity(flag))
        return int(self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)) > 0

    def _after_loop(self, step: int) -> None:
        """The checkpoint, actions and evaluation that fall on ``step``."""
        exp = self.experiment
        if exp.checkpoint_interval and step % exp.checkpoint_interval == 0:
            self.manager.save(checkpoint_number=step, check_interval=False)
        for action in self.actions:
            if step % action.interval == 0:
                action(self, step)
        if exp.eval_interval and exp.eval_data is not None and step % exp.eval_interval == 0 \
                and step < exp.train_steps:
            self.evaluate()

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
        actions: Sequence[StepAction] = (), stop: StopSignal | None = None) -> dict[str, Any]:
    """Runs ``train``, ``eval`` or ``train_and_eval`` (the body of ``keras-wideresnet-train``)."""
    if mode not in ("train", "eval", "train_and_eval"):
        raise ValueError(f"--mode must be train, eval or train_and_eval. Received: {mode!r}")
    trainer = Trainer(experiment, model_dir, strategy, actions, stop)
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
