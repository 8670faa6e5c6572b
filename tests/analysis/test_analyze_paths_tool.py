"""tools/analyze_paths.py end to end (subprocesses; tiny models, on-disk fixtures)."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_wideresnet.analysis import analyze_paths
from keras_wideresnet.analysis.sources import build_family_model, npz_batches
from tests.tolerances import conv_depth_and_reduction, net_rtol

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOOL = os.path.join(REPO, "tools", "analyze_paths.py")


def _run(*args, check=True):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO)
    proc = subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture
def npz_file(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "batch.npz"
    np.savez(path, x=rng.normal(size=(8, 32, 32, 3)).astype("float32"),
             y=(np.arange(8) % 4).astype("int32"))
    return str(path)


def test_weights_file_and_npz(tmp_path, npz_file):
    keras.utils.set_random_seed(3)
    model = build_family_model("resnet16_a1", width_multiplier=1 / 32, classes=4)
    weights = str(tmp_path / "member.weights.h5")
    model.save_weights(weights)
    out = tmp_path / "out"
    _run("--model=resnet16_a1", "--width_multiplier=0.03125", "--classes=4",
         f"--weights={weights}", f"--npz={npz_file}", "--batch_size=4", "--num_batches=2",
         "--samples_per_k=3", "--seed=5", f"--output_dir={out}")
    assert sorted(os.listdir(out)) == ["gradient_by_path_length.png", "path_analysis.json",
                                       "path_count_distribution.png", "summary.txt",
                                       "total_gradient_by_path_length.png"]
    with open(out / "path_analysis.json") as f:
        got = json.load(f)
    # Same weights, data and seed in-process: identical numbers (so the weights were loaded).
    expected = analyze_paths(model, npz_batches(npz_file, batch_size=4, num_batches=2),
                             samples_per_k=3, seed=5, verbose=False)
    assert got["num_units"] == 6 and got["counts"] == [1, 6, 15, 20, 15, 6, 1]
    # Another process may pick other kernels: the network's float32 bound.
    assert got["mean"] == pytest.approx(expected.mean, rel=net_rtol(*conv_depth_and_reduction(model)))
    assert got["effective_depth"] == expected.effective_depth
    fresh = build_family_model("resnet16_a1", width_multiplier=1 / 32, classes=4)
    other = analyze_paths(fresh, npz_batches(npz_file, batch_size=4, num_batches=2),
                          samples_per_k=3, seed=5, verbose=False)
    assert other.mean != pytest.approx(got["mean"], rel=1e-3)


def test_keras_file_on_quickstart_tfrecords(tmp_path):
    keras.utils.set_random_seed(0)
    model = build_family_model("resnet16_a1", width_multiplier=1 / 32, classes=10)
    path = str(tmp_path / "m.keras")
    model.save(path)
    out = tmp_path / "out"
    proc = _run(f"--keras_model={path}", f"--quickstart_dir={tmp_path / 'qs'}",
                "--batch_size=4", "--num_batches=1", "--samples_per_k=2",
                "--path_lengths=0,1,2", "--ed_method=cumulative", "--ed_fraction=0.5",
                f"--output_dir={out}")
    with open(out / "path_analysis.json") as f:
        got = json.load(f)
    assert got["path_lengths"] == [0, 1, 2] and got["num_batches"] == 1
    assert got["effective_depth_config"] == {"method": "cumulative", "fraction": 0.5,
                                             "reference_k": 0}
    assert "effective depth" in proc.stdout


def test_compare_mode_default_members(tmp_path, npz_file):
    out = tmp_path / "cmp"
    _run("--mode=compare", "--members=resnet16", "--base_width=0.03125", "--classes=4",
         f"--npz={npz_file}",
         "--batch_size=4", "--num_batches=1", "--samples_per_k=1", "--path_lengths=0,1",
         "--timing_steps=1", f"--output_dir={out}")
    table = (out / "comparison.md").read_text()
    rows = json.loads((out / "comparison.json").read_text())
    assert [r["num_units"] for r in rows] == [6]
    assert rows[0]["member"].startswith("resnet16_w")
    assert table.count("\n| resnet") == 1
    params = [r["params"] for r in rows]
    # Matched to the (unbuilt) ResNet-38 reference at width 1/32: 106,888 parameters.
    assert all(abs(p - 106888) / 106888 < 0.03 for p in params)


def test_bad_inputs_exit_with_clear_errors(tmp_path, npz_file):
    proc = _run("--model=resnet16_a1", f"--keras_model={tmp_path / 'x.keras'}",
                f"--npz={npz_file}", f"--output_dir={tmp_path}", check=False)
    assert proc.returncode != 0 and "exactly one model source" in proc.stderr
    proc = _run("--model=resnet16_a1", "--width_multiplier=0.03125",
                f"--npz={tmp_path / 'missing.npz'}", f"--output_dir={tmp_path}", check=False)
    assert proc.returncode != 0 and "missing.npz" in proc.stderr and "does not exist" in proc.stderr
