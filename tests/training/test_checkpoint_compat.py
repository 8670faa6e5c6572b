"""Checkpoints written by an earlier version restore and give the scores they were written with."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(REPO, "tests", "fixtures", "checkpoints")


@pytest.mark.parametrize("name,step", [("digits", 60), ("shapes", 200)])
def test_an_earlier_checkpoint_restores_with_its_scores(tmp_path, name, step):
    model_dir = tmp_path / name
    shutil.copytree(os.path.join(FIXTURES, name), model_dir)  # the run writes into its model_dir
    with open(os.path.join(FIXTURES, name, f"metrics_{step}.json")) as f:
        expected = json.load(f)
    cmd = [sys.executable, os.path.join(REPO, "tools", "train.py"), f"--model_dir={model_dir}",
           f"--gin_file={model_dir / 'config.gin'}", "--mode=eval"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # The trainer's full restore: step, model and optimizer objects all matched.
    assert f"resumed from {model_dir}/ckpt-{step} at step {step}" in proc.stdout
    with open(model_dir / f"metrics_{step}.json") as f:
        got = json.load(f)
    if name == "digits":
        # float32 logits differ in the last bits between CPU kernels; an image whose top two
        # logits are that close may change class, so one image of 299 may differ.
        assert got["num_examples"] == expected["num_examples"] == 299
        assert abs(got["top1"] - expected["top1"]) * 299 <= 1 + 1e-9
        assert abs(got["top5"] - expected["top5"]) * 299 <= 1 + 1e-9
    else:
        # The same argument per pixel: at most 0.1 % of the pixels may change class.
        cm_got, cm_exp = np.array(got["confusion_matrix"]), np.array(expected["confusion_matrix"])
        assert cm_got.sum() == cm_exp.sum() == expected["num_pixels"]
        assert np.abs(cm_got - cm_exp).sum() / 2 <= 1e-3 * cm_exp.sum()
        assert got["mean_iou"] == pytest.approx(expected["mean_iou"], abs=5e-3)
