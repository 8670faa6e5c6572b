"""End-to-end training: train→eval, resume after kill -9, Mirrored and MultiWorkerMirrored runs,
NaN stop, and the clear errors for bad gin, missing data and incompatible checkpoints."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from keras_wideresnet.config import gin_config
from keras_wideresnet.training import trainer
from tests.tolerances import net_rtol

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TRAIN = os.path.join(REPO, "tools", "train.py")

TINY_CLS = [
    "Experiment.model_fn = @ResNet16",
    "ResNet16.width_multiplier = 0.03125",
    "ResNet16.variant = 'a1'",
    "ResNet16.input_shape = (32, 32, 3)",
    "Experiment.train_steps = 4",
    "Experiment.steps_per_loop = 2",
    "Experiment.checkpoint_interval = 2",
    "Experiment.eval_steps = 2",
    "classification_dataset.global_batch_size = 8",
]

TINY_SEG = [
    "ResNet38Segmenter.width_multiplier = 0.03125",
    "Experiment.train_steps = 2",
    "Experiment.steps_per_loop = 2",
    "Experiment.eval_steps = 2",
    "train/segmentation_dataset.global_batch_size = 4",
    "eval/segmentation_dataset.global_batch_size = 2",
]


def _experiment(gin_file, bindings, quickstart_dir):
    gin_config.parse_gin([gin_file], list(bindings) +
                         [f"quickstart_files.data_dir = '{quickstart_dir}'"])
    return gin_config.load_experiment()


def _cli(model_dir, gin_file, bindings, quickstart_dir, *extra, env=None):
    args = [sys.executable, TRAIN, f"--gin_file={gin_file}", f"--model_dir={model_dir}"]
    for b in list(bindings) + [f"quickstart_files.data_dir = '{quickstart_dir}'"]:
        args.append(f"--gin_bindings={b}")
    return args + list(extra)


def _env(**extra):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    env.update(extra)
    return env


def _checkpoint_steps(model_dir):
    state = tf.train.get_checkpoint_state(str(model_dir))
    return [int(p.rsplit("-", 1)[1]) for p in state.all_model_checkpoint_paths]


def test_classification_train_then_eval(tmp_path, quickstart_dir):
    # Loops of 3 steps are cut at each multiple of checkpoint_interval=2 and at the last step.
    bindings = TINY_CLS + ["Experiment.train_steps = 5", "Experiment.steps_per_loop = 3"]
    exp = _experiment("quickstart/digits.gin", bindings, quickstart_dir)
    result = trainer.run(exp, str(tmp_path), "train_and_eval")
    assert result["train"]["step"] == 5
    assert [h["step"] for h in result["train"]["history"]] == [2, 4, 5]
    assert _checkpoint_steps(tmp_path) == [2, 4, 5]
    assert result["eval"]["num_examples"] == 16  # eval_steps=2 batches of 8
    assert 0.0 <= result["eval"]["top1"] <= result["eval"]["top5"] <= 1.0
    with open(tmp_path / "metrics_5.json") as f:
        assert json.load(f)["top1"] == result["eval"]["top1"]
    assert os.listdir(tmp_path / "train")  # TensorBoard events
    # Re-running a finished run trains nothing and writes no new checkpoint.
    final = tmp_path / "ckpt-5.index"
    mtime = final.stat().st_mtime_ns
    again = trainer.run(_experiment("quickstart/digits.gin", bindings, quickstart_dir), str(tmp_path), "train")
    assert again["train"]["history"] == [] and _checkpoint_steps(tmp_path) == [2, 4, 5]
    assert final.stat().st_mtime_ns == mtime


def test_segmentation_train_then_eval_with_bootstrapping(tmp_path, quickstart_dir):
    exp = _experiment("quickstart/shapes.gin", TINY_SEG, quickstart_dir)
    assert exp.loss.bootstrap and exp.task == "segmentation"
    result = trainer.run(exp, str(tmp_path), "train_and_eval")
    scores = result["eval"]
    assert result["train"]["step"] == 2
    assert set(scores["per_class_iou"]) == {"background", "disc", "square", "triangle"}
    # Scored at the original label resolution: 2 batches x 2 images x 64 x 64 pixels.
    assert scores["num_pixels"] == 2 * 2 * 64 * 64
    assert 0.0 <= scores["mean_iou"] <= 1.0


def test_resume_restores_step_optimizer_and_schedule(tmp_path, quickstart_dir):
    exp = _experiment("quickstart/digits.gin", TINY_CLS + ["Experiment.train_steps = 2"],
                      quickstart_dir)
    first = trainer.run(exp, str(tmp_path), "train")["trainer"]
    iterations = int(first.optimizer.iterations.numpy())
    exp = _experiment("quickstart/digits.gin", TINY_CLS, quickstart_dir)
    result = trainer.run(exp, str(tmp_path), "train")
    assert "resumed" in result["status"] and "step 2" in result["status"]
    assert result["train"]["step"] == 4 and len(result["train"]["history"]) == 1
    assert int(result["trainer"].optimizer.iterations.numpy()) == iterations + 2


def test_kill_minus_9_then_rerun_resumes(tmp_path, quickstart_dir):
    model_dir = str(tmp_path / "run")
    slow = TINY_CLS + ["Experiment.train_steps = 100000", "Experiment.steps_per_loop = 1",
                       "Experiment.checkpoint_interval = 1"]
    proc = subprocess.Popen(_cli(model_dir, "quickstart/digits.gin", slow, quickstart_dir),
                            env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            cwd=REPO)
    deadline = time.time() + 240

    def saved_step():
        latest = tf.train.latest_checkpoint(model_dir)
        return int(latest.rsplit("-", 1)[1]) if latest else 0

    while time.time() < deadline and saved_step() < 3:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    last = tf.train.latest_checkpoint(model_dir)
    assert last, "no checkpoint was written before the kill"
    done = int(last.rsplit("-", 1)[1])
    target = done + 2
    out = subprocess.run(
        _cli(model_dir, "quickstart/digits.gin",
             slow + [f"Experiment.train_steps = {target}"], quickstart_dir, "--mode=train"),
        env=_env(), capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"resumed from {last} at step {done}" in out.stdout
    assert tf.train.latest_checkpoint(model_dir).endswith(f"ckpt-{target}")
    assert os.path.exists(os.path.join(model_dir, "operative_config.train.gin"))


def test_mirrored_strategy_on_two_logical_cpus(tmp_path, quickstart_dir):
    out = subprocess.run(
        _cli(str(tmp_path), "quickstart/digits.gin",
             TINY_CLS + ["ResNet16.sync_bn = True"], quickstart_dir,
             "--strategy=mirrored", "--num_cpu_devices=2"),
        env=_env(), capture_output=True, text=True, cwd=REPO, timeout=400)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "MirroredStrategy with 2 replicas" in out.stdout
    assert "top-1 accuracy" in out.stdout
    assert tf.train.latest_checkpoint(str(tmp_path)).endswith("ckpt-4")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_multi_worker_mirrored_two_processes(tmp_path, quickstart_dir):
    workers = [f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"]
    procs = []
    for index in range(2):
        tf_config = json.dumps({"cluster": {"worker": workers},
                                "task": {"type": "worker", "index": index}})
        procs.append(subprocess.Popen(
            _cli(str(tmp_path / "run"), "quickstart/digits.gin", TINY_CLS, quickstart_dir,
                 "--strategy=multi_worker_mirrored"),
            env=_env(TF_CONFIG=tf_config), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, cwd=REPO))
    outs = [p.communicate(timeout=500) for p in procs]
    for p, (stdout, stderr) in zip(procs, outs):
        assert p.returncode == 0, stderr[-3000:]
    assert "with 2 replicas" in outs[0][0]
    # Only the chief (worker 0) writes to model_dir; both evaluated the same exact counts.
    assert tf.train.latest_checkpoint(str(tmp_path / "run")).endswith("ckpt-4")
    assert "top-1 accuracy" in outs[0][0]


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, quickstart_dir):
    exp = _experiment("quickstart/digits.gin", TINY_CLS + ["Experiment.train_steps = 2"],
                      quickstart_dir)
    trainer.run(exp, str(tmp_path), "train")
    exp = _experiment("quickstart/digits.gin", TINY_CLS + [
        "Experiment.train_steps = 8", "OptimizerConfig.learning_rate = 1e30",
        "OptimizerConfig.warmup_steps = 0"], quickstart_dir)
    with pytest.raises(trainer.NonFiniteLossError, match="last good checkpoint") as err:
        trainer.run(exp, str(tmp_path), "train")
    # The checkpoint kept is the one from before the failing loop, and it is good.
    latest = tf.train.latest_checkpoint(str(tmp_path))
    first_bad = re.search(r"between steps (\d+) and", str(err.value)).group(1)
    assert latest.endswith(f"ckpt-{first_bad}") and f"({latest})" in str(err.value)
    reader = tf.train.load_checkpoint(latest)
    for name in reader.get_variable_to_shape_map():
        value = reader.get_tensor(name)
        if np.issubdtype(np.asarray(value).dtype, np.floating):
            assert np.isfinite(value).all(), name


def test_bad_gin_binding_names_the_binding(quickstart_dir):
    with pytest.raises(gin_config.GinConfigError, match="Experiment.trian_steps"):
        _experiment("quickstart/digits.gin", ["Experiment.trian_steps = 3"], quickstart_dir)
    with pytest.raises(gin_config.GinConfigError, match="no_such.gin"):
        gin_config.parse_gin(["no_such.gin"])


def test_missing_data_path_is_a_clear_error(tmp_path, quickstart_dir):
    exp = _experiment("quickstart/digits.gin", TINY_CLS + [
        "train/classification_dataset.file_pattern = '/no/such/dir/train-*.tfrecord'"],
        quickstart_dir)
    with pytest.raises(Exception, match="/no/such/dir/train-"):
        trainer.run(exp, str(tmp_path), "train")


def test_incompatible_checkpoint_in_model_dir(tmp_path, quickstart_dir):
    exp = _experiment("quickstart/digits.gin", TINY_CLS + ["Experiment.train_steps = 2"],
                      quickstart_dir)
    trainer.run(exp, str(tmp_path), "train")
    exp = _experiment("quickstart/digits.gin", TINY_CLS + ["ResNet16.width_multiplier = 0.0625"],
                      quickstart_dir)
    with pytest.raises(ValueError, match="does not match the model"):
        trainer.run(exp, str(tmp_path), "train")


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_training_keeps_float32_logits_and_loss(tmp_path, quickstart_dir, policy):
    exp = _experiment("quickstart/digits.gin", TINY_CLS + [
        "Experiment.train_steps = 2", f"Experiment.mixed_precision = '{policy}'"], quickstart_dir)
    result = trainer.run(exp, str(tmp_path), "train")
    model = result["trainer"].model
    assert model.get_layer("res2a").compute_dtype == policy.split("_")[1]
    assert model.layers[-1].compute_dtype == "float32"
    assert np.isfinite(result["train"]["loss"])
    import keras
    is_scaled = isinstance(result["trainer"].optimizer, keras.optimizers.LossScaleOptimizer)
    assert is_scaled == (policy == "mixed_float16")


def test_path_analysis_during_training_logs_effective_depth(tmp_path, quickstart_dir):
    exp = _experiment("quickstart/digits.gin", TINY_CLS + [
        "Experiment.path_analysis_interval = 2", "Experiment.path_analysis_samples_per_k = 2"],
        quickstart_dir)
    with pytest.raises(ValueError, match="path_analysis_action"):
        trainer.run(exp, str(tmp_path), "train")  # the action is the analysis side room's
    from keras_wideresnet.analysis import path_analysis_action

    trainer.run(exp, str(tmp_path), "train", actions=[path_analysis_action(exp)])
    reports = sorted(f for f in os.listdir(tmp_path) if f.startswith("path_analysis_"))
    assert len(reports) == 2  # after steps 2 and 4
    with open(tmp_path / reports[-1]) as f:
        report = json.load(f)
    assert report["num_units"] == 6 and "effective_depth" in json.dumps(report)
    assert os.listdir(tmp_path / "path_analysis")  # TensorBoard events


def test_init_backbone_from_converted_classification_weights(tmp_path, quickstart_dir):
    import numpy as np
    from keras_wideresnet import applications

    # A classification model's weights file (what tools/convert_weights.py writes) seeds the
    # segmenter's backbone; the new head keeps its fresh initialization.
    cls = applications.ResNet38(variant="a1", width_multiplier=1 / 32, classes=1000,
                                input_shape=(None, None, 3))
    path = str(tmp_path / "a1.weights.h5")
    cls.save_weights(path)
    exp = _experiment("quickstart/shapes.gin", TINY_SEG + [
        f"Experiment.init_checkpoint = '{path}'", "Experiment.init_checkpoint_modules = 'backbone'",
        "Experiment.train_steps = 0"], quickstart_dir)
    result = trainer.run(exp, str(tmp_path / "run"), "train")
    assert "initialized backbone" in result["status"]
    seg = result["trainer"].model
    for name in ("conv1a", "res4b3", "bn7"):
        for a, b in zip(seg.get_layer(name).weights, cls.get_layer(name).weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_init_from_a_weights_file_of_another_width_fails_clearly(tmp_path):
    """A weights file of another architecture must not leave the backbone at its random
    initialization (Keras' skip_mismatch only warns): it stops with the file, the layer count
    and the first layer's shapes, for the backbone and for the whole model."""
    import warnings

    from keras_wideresnet import applications
    from keras_wideresnet.training.checkpoints import restore_model

    wider = applications.ResNet38(variant="a1", width_multiplier=1 / 16, classes=1000,
                                  input_shape=(None, None, 3))
    path = str(tmp_path / "a1_w16.weights.h5")
    wider.save_weights(path)
    seg = applications.ResNet38Segmenter(5, variant="a1", width_multiplier=1 / 32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match=r"a1_w16.weights.h5' into the backbone of model .*: \d+ layers "
                                             r"could not be loaded; first: conv1a, model \(3, 3, 3, 2\) vs file "
                                             r"\(3, 3, 3, 4\)"):
            restore_model(seg, path, modules="backbone")
    assert not [w for w in caught if "Skipping" in str(w.message)]  # the error, not Keras' per-layer noise
    cls = applications.ResNet38(variant="a1", width_multiplier=1 / 32, classes=1000, input_shape=(None, None, 3))
    with pytest.raises(ValueError, match=r"a1_w16.weights.h5' into model .*: \d+ layers .*same architecture"):
        restore_model(cls, path, modules="all")


def test_jit_compile_trains_the_same_as_without(tmp_path, quickstart_dir):
    """Experiment.jit_compile XLA-compiles forward + backward only (the iterator and optimizer
    update stay outside), and the compiled steps match the uncompiled ones."""
    losses = {}
    for jit in (False, True):
        exp = _experiment("quickstart/digits.gin", TINY_CLS + [
            "Experiment.train_steps = 2", "Experiment.seed = 7", "Experiment.checkpoint_interval = 100",
            f"Experiment.jit_compile = {jit}",
            "classification_dataset.deterministic = True", "classification_dataset.seed = 3"], quickstart_dir)
        result = trainer.run(exp, str(tmp_path / f"jit_{jit}"), "train")
        losses[jit] = result["train"]["loss"]
        assert result["train"]["step"] == 2
    # XLA's kernels against oneDNN's: two evaluations of the network (net_rtol, taken at the
    # widest ResNet-20 convolution), and the second step's loss also carries the first
    # update's difference: twice that, for both steps.
    assert losses[True] == pytest.approx(losses[False], rel=4 * net_rtol(depth=20, reduction=3 * 3 * 512))
