"""tools/evaluate.py and tools/predict.py on a tiny trained segmentation run."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from keras_wideresnet.evaluation.predict import pascal_palette
from keras_wideresnet.config import gin_config
from keras_wideresnet.training import trainer
from tests.tolerances import conv_depth_and_reduction, net_rtol

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


@pytest.fixture(scope="module")
def seg_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("seg_run")
    data_dir = str(root / "data")
    gin_config.parse_gin(["quickstart/shapes.gin"], [
        f"quickstart_files.data_dir = '{data_dir}'",
        "ResNet38Segmenter.width_multiplier = 0.03125", "Experiment.train_steps = 2",
        "Experiment.steps_per_loop = 2", "train/segmentation_dataset.global_batch_size = 2"])
    model_dir = str(root / "run")
    trainer.run(gin_config.load_experiment(), model_dir, "train")
    gin_config.write_operative_config(model_dir, "train")
    return model_dir, data_dir


def _run(script, *args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    return subprocess.run([sys.executable, os.path.join(REPO, "tools", script), *args], env=env,
                          capture_output=True, text=True, cwd=REPO, timeout=300)


def test_evaluate_tool_multiscale_flip_writes_json(seg_run, tmp_path):
    model_dir, _ = seg_run
    out = _run("evaluate.py", f"--model_dir={model_dir}", "--scales=0.75,1", "--flip",
               "--eval_steps=2", f"--output_json={tmp_path / 'eval.json'}")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "mIoU" in out.stdout and "triangle" in out.stdout
    with open(tmp_path / "eval.json") as f:
        scores = json.load(f)
    assert scores["num_pixels"] == 2 * 4 * 64 * 64 and scores["checkpoint"].endswith("ckpt-2")


def test_predict_tool_writes_palette_masks_and_overlays(seg_run, tmp_path):
    model_dir, _ = seg_run
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (50, 70, 3), dtype=np.uint8)).save(images / "a.png")
    Image.fromarray(rng.integers(0, 255, (33, 41, 3), dtype=np.uint8)).save(images / "b.jpg")
    (images / "notes.txt").write_text("not an image")
    out = _run("predict.py", f"--model_dir={model_dir}", f"--input={images}",
               f"--output_dir={tmp_path / 'preds'}")
    assert out.returncode == 0, out.stderr[-3000:]
    mask = Image.open(tmp_path / "preds" / "a_mask.png")
    assert mask.mode == "P" and mask.size == (70, 50)
    assert np.asarray(mask).max() < 4
    assert mask.getpalette()[:6] == pascal_palette(2).reshape(-1).tolist()
    assert Image.open(tmp_path / "preds" / "b_overlay.png").size == (41, 33)


def test_predict_tool_errors_name_the_input(seg_run, tmp_path):
    model_dir, _ = seg_run
    out = _run("predict.py", f"--model_dir={model_dir}", f"--input={tmp_path / 'missing.jpg'}")
    assert out.returncode != 0 and "missing.jpg" in out.stderr
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    out = _run("predict.py", f"--model_dir={model_dir}", f"--input={bad}")
    assert out.returncode != 0 and "bad.jpg" in out.stderr and "not a readable image" in out.stderr


def test_precision_agreement_of_folded_and_bf16_forms(seg_run):
    from keras_wideresnet.evaluation.agreement import precision_agreement

    model_dir, data_dir = seg_run
    gin_config.parse_gin([os.path.join(model_dir, "config.gin")], [])
    experiment = gin_config.load_experiment()
    folded = precision_agreement(experiment, model_dir, precision="float32", fold_bn=True, max_batches=2)
    assert folded["task"] == "segmentation" and folded["num_compared"] == folded["num_examples"] * 8 * 8  # OS 8
    # Folding BN into the convolutions only rounds differently: the float32 network bound of
    # the run's own architecture. Argmax ties within it are rare: at most one in a thousand.
    shape = conv_depth_and_reduction(experiment.build_model())
    bound = net_rtol(*shape) * folded["max_abs_logit"]
    assert folded["agreement"] >= 0.999 and folded["max_abs_logit_difference"] <= bound, folded
    bf16 = precision_agreement(experiment, model_dir, precision="mixed_bfloat16", fold_bn=True, max_batches=2)
    assert bf16["agreement"] > 0.9 and bf16["max_abs_logit_difference"] > 0  # really ran in bf16
