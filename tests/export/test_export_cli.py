"""tools/export.py end to end: model_dir/config.gin + converted weights → TF Serving layout."""

from __future__ import annotations

import os
import sys

import keras
import numpy as np
import tensorflow as tf

from keras_wideresnet import applications
from keras_wideresnet.export import ServingConfig
from keras_wideresnet.export.serving import ServingFunctions
from tests.tolerances import conv_depth_and_reduction, prob_rtol

GIN = """
Experiment.task = 'classification'
Experiment.model_fn = @ResNet16
Experiment.num_classes = 3
Experiment.class_names = ['cat', 'dog', 'cow']
Experiment.eval_image_size = 32
Experiment.eval_resize_shorter = 36
ResNet16.width_multiplier = 0.03125
ResNet16.input_shape = (32, 32, 3)
"""
TOOL = os.path.join("tools", "export.py")


def test_export_tool_from_model_dir(tmp_path, photos, calibrate_head, run_tool):
    model_dir = tmp_path / "run"
    model_dir.mkdir()
    (model_dir / "config.gin").write_text(GIN)  # what tools/train.py leaves in model_dir
    keras.utils.set_random_seed(5)
    model = applications.ResNet16(weights=None, width_multiplier=1 / 32, classes=3,
                                  classifier_activation=None, input_shape=(32, 32, 3))
    calibrate_head(model, "linear3", np.random.default_rng(5).normal(size=(2, 32, 32, 3)))
    weights = str(tmp_path / "converted.weights.h5")
    model.save_weights(weights)

    base = tmp_path / "serving"
    proc = run_tool([TOOL, f"--model_dir={model_dir}", f"--checkpoint={weights}",
                     f"--export_dir={base}", "--top_k=2"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"exported {base / '1'}" in proc.stdout
    assert (base / "1" / "assets" / "labels.txt").read_text().split() == ["cat", "dog", "cow"]

    loaded = tf.saved_model.load(str(base / "1"))
    out = loaded.signatures["serving_default"](image_bytes=tf.constant([photos["china"]]))
    # The same graph run eagerly on the in-memory model: equal only if the tool restored the
    # weights and carried the experiment's eval settings (crop 32 from shorter side 36).
    config = ServingConfig("classification", ("cat", "dog", "cow"), image_size=32,
                           resize_shorter=36, top_k=2)
    expected = ServingFunctions(model, config).from_image_bytes(tf.constant([photos["china"]]))
    want = expected["probabilities"].numpy()  # graph vs eager kernels: the probability bound
    np.testing.assert_allclose(out["probabilities"].numpy(), want,
                               rtol=prob_rtol(want, *conv_depth_and_reduction(model)))
    assert out["top_k_names"].shape == (1, 2)
    assert [n.decode() for n in out["top_k_names"].numpy()[0]] == [
        n.decode() for n in expected["top_k_names"].numpy()[0]]


def test_export_tool_usage_errors(tmp_path, run_tool):
    proc = run_tool([TOOL, f"--export_dir={tmp_path / 'x'}"])
    assert proc.returncode != 0
    assert "Pass --model_dir (a training run) or --checkpoint" in proc.stderr
    assert not (tmp_path / "x").exists()


# Kills its own process when the SavedModel's files are all written, at the rename that would
# put them in place: the worst moment for a kill -9 during tools/export.py.
_KILLED_EXPORT = """
import os, signal
import tensorflow as tf
def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
tf.io.gfile.rename = die
from keras_wideresnet.cli.export import run
run()
"""


def test_export_killed_mid_write_leaves_no_version_and_a_rerun_finishes(tmp_path, run_tool):
    model_dir = tmp_path / "run"
    model_dir.mkdir()
    (model_dir / "config.gin").write_text(GIN)
    model = applications.ResNet16(weights=None, width_multiplier=1 / 32, classes=3,
                                  classifier_activation=None, input_shape=(32, 32, 3))
    weights = str(tmp_path / "converted.weights.h5")
    model.save_weights(weights)
    base = tmp_path / "serving"
    args = [f"--model_dir={model_dir}", f"--checkpoint={weights}", f"--export_dir={base}"]
    killed = run_tool(["-c", _KILLED_EXPORT] + args)
    assert killed.returncode == -9
    assert not [p.name for p in base.iterdir() if p.name.isdigit()]  # nothing TF Serving would load
    proc = run_tool([TOOL] + args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "serving_default" in tf.saved_model.load(str(base / "1")).signatures
