"""Train and/or evaluate a keras_wideresnet experiment described in gin.

    keras-wideresnet-train --gin_file=gin_configs/quickstart/digits.gin --model_dir=runs/digits

Re-running the same command resumes from the newest checkpoint in --model_dir. With
--export_dir, the trained model is exported for TF Serving at the end.
"""

from __future__ import annotations

import json
import os
import sys

from absl import app, flags, logging

from keras_wideresnet.cli import _app  # first: it sets TF's C++ log level before TF loads

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("gin_file", [], "gin config file(s); later files override earlier.")
flags.DEFINE_multi_string("gin_bindings", [], "Extra bindings, e.g. 'Experiment.train_steps=10'.")
flags.DEFINE_multi_string("gin_search_paths", [], "Folders to resolve gin files and includes.")
flags.DEFINE_string("model_dir", None, "Checkpoints, summaries, configs and metrics go here.")
flags.DEFINE_enum("mode", "train_and_eval", ["train", "eval", "train_and_eval"], "What to run.")
flags.DEFINE_enum("strategy", "default",
                  ["default", "one_device", "mirrored", "multi_worker_mirrored", "tpu"],
                  "tf.distribute strategy (multi_worker_mirrored reads TF_CONFIG).")
flags.DEFINE_string("tpu", None, "TPU name or address for --strategy=tpu.")
flags.DEFINE_integer("num_cpu_devices", 0,
                     "Split the CPU into this many logical devices (testing --strategy=mirrored "
                     "without GPUs).")
flags.DEFINE_string("export_dir", None, "If set, export a TF Serving SavedModel here at the end.")
flags.DEFINE_float("worker_timeout", 600.0,
                   "--strategy=multi_worker_mirrored: seconds to wait for every task of TF_CONFIG "
                   "to come up and run the first step; past it the run is ended (status 137).")


def main(argv):
    del argv
    from keras_wideresnet.training import faults  # no TensorFlow: SIGTERM is blocked before TF starts

    stop = faults.StopSignal()
    faults.watch_sigterm(stop, "keras-wideresnet-train")
    if not FLAGS.model_dir:
        raise app.UsageError("--model_dir is required (checkpoints and configs are written there).")
    if not FLAGS.gin_file and not os.path.exists(os.path.join(FLAGS.model_dir, "config.gin")):
        raise app.UsageError("Pass --gin_file (see gin_configs/), or a --model_dir that already "
                             "holds a config.gin from an earlier run.")
    import tensorflow as tf

    if FLAGS.num_cpu_devices > 1:
        cpus = tf.config.list_physical_devices("CPU")
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration()] * FLAGS.num_cpu_devices)

    from keras_wideresnet.config import gin_config
    from keras_wideresnet.training import trainer
    from keras_wideresnet.training.distribute import get_strategy

    experiment = gin_config.experiment_from_flags(FLAGS.gin_file, FLAGS.gin_bindings, FLAGS.model_dir,
                                                  FLAGS.gin_search_paths)
    devices = None
    if FLAGS.strategy == "mirrored" and FLAGS.num_cpu_devices > 1:
        devices = [f"/cpu:{i}" for i in range(FLAGS.num_cpu_devices)]
    watchdog = None
    if FLAGS.strategy == "multi_worker_mirrored":
        watchdog = faults.StartupWatchdog(FLAGS.worker_timeout, "keras-wideresnet-train").arm()
        stop.subscribe_first_step(watchdog.disarm)
    strategy = get_strategy(FLAGS.strategy, FLAGS.tpu, devices)
    if FLAGS.strategy != "default":
        print(f"[keras_wideresnet] {type(strategy).__name__} with {strategy.num_replicas_in_sync} "
              "replicas", flush=True)
    actions = []
    if experiment.path_analysis_interval:  # the analysis side room is imported only then
        from keras_wideresnet.analysis.callback import path_analysis_action

        actions.append(path_analysis_action(experiment))
    try:
        result = trainer.run(experiment, FLAGS.model_dir, FLAGS.mode, strategy, actions, stop)
    except faults.TrainingPreempted as e:
        print(f"[keras_wideresnet] {e}", flush=True)
        sys.exit(faults.PREEMPTED_EXIT_CODE)
    except faults.WorkerLostError as e:
        print(f"keras-wideresnet-train: error: {e}", file=sys.stderr, flush=True)
        sys.exit(faults.WORKER_LOST_EXIT_CODE)
    except trainer.NonFiniteLossError as e:
        print(f"keras-wideresnet-train: error: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
    if watchdog is not None:
        watchdog.disarm()  # --mode=eval runs no step
    if trainer.is_chief(strategy):
        gin_config.write_operative_config(FLAGS.model_dir, FLAGS.mode)
    if "eval" in result:
        _print_scores(result["trainer"].task, result["eval"])
    if FLAGS.export_dir and trainer.is_chief(strategy):
        from keras_wideresnet.export import export_experiment
        from keras_wideresnet.export.saved_model import version_exported_from

        latest = result["trainer"].manager.latest_checkpoint
        done = latest and version_exported_from(FLAGS.export_dir, latest)
        if done:  # a re-run of a finished run: that checkpoint is already served
            print(f"[keras_wideresnet] {done} already holds {latest}; nothing to export")
        else:
            path = export_experiment(experiment, FLAGS.model_dir, FLAGS.export_dir)
            print(f"[keras_wideresnet] exported SavedModel for TF Serving: {path}")


def _print_scores(task, scores: dict) -> None:
    print(task.format_scores(scores))
    print(json.dumps({k: v for k, v in scores.items()
                      if k not in ("confusion_matrix", "per_class_iou")}))


def run() -> None:
    """Console entry point (``keras-wideresnet-train``)."""
    flags.mark_flag_as_required("model_dir")
    _app.run(main, "keras-wideresnet-train")


if __name__ == "__main__":
    run()
