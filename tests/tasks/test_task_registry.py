"""The task registry: the built-in tasks, a task of one's own through the CLI, clear errors."""

import os
import subprocess
import sys

import pytest

from keras_wideresnet.tasks import ClassificationTask, SegmentationTask, get_task, registered_tasks

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_builtin_tasks_and_an_unknown_name():
    assert {"classification", "segmentation"} <= set(registered_tasks())
    assert isinstance(get_task("classification"), ClassificationTask)
    assert isinstance(get_task("segmentation"), SegmentationTask)
    with pytest.raises(ValueError, match="'detection' is not a registered task.*--imports"):
        get_task("detection")


def test_a_task_of_ones_own_trains_through_the_cli(tmp_path):
    env = dict(os.environ, PYTHONPATH=REPO)
    cmd = [sys.executable, os.path.join(REPO, "tools", "train.py"),
           "--imports=tests.tasks.toy_foreground_task", "--gin_file=quickstart/shapes.gin",
           f"--model_dir={tmp_path / 'fg'}"] + [f"--gin_bindings={b}" for b in (
               "Experiment.task = 'toy_foreground'", "Experiment.num_classes = 2",
               "Experiment.class_names = ('background', 'foreground')",
               "ResNet38Segmenter.width_multiplier = 0.03125", "Experiment.train_steps = 4",
               "Experiment.steps_per_loop = 2", "Experiment.checkpoint_interval = 4",
               "Experiment.eval_steps = 2", "train/segmentation_dataset.global_batch_size = 4",
               "eval/segmentation_dataset.global_batch_size = 2")]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line.split()[0] for line in proc.stdout.splitlines() if line.strip()]
    assert "foreground" in rows and "background" in rows and "disc" not in rows  # two classes
    assert os.path.exists(tmp_path / "fg" / "ckpt-4.index")
    # Without the module the name is unknown: one message that says what to do.
    proc = subprocess.run([c for c in cmd if not c.startswith("--imports")], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1 and "not a registered task" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = subprocess.run(cmd[:2] + ["--imports=no_such_module"] + cmd[3:], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1 and "--imports: cannot import 'no_such_module'" in proc.stderr
