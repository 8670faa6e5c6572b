"""Converted ademxapp weights reproduce MXNet's own outputs.

The fixtures (``make_mxnet_fixtures.py``) hold random weights at reduced widths with the exact
ademxapp names, and the logits MXNet 1.9.1 computed from them in inference mode (moving BN
statistics). Tolerance: max abs diff ≤ 1e-4.
"""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from keras_wideresnet.applications import ResNet38, ResNet38Segmenter, preprocess_input
from keras_wideresnet.weights import convert, export_keras_weights, load_ademxapp, read_params

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
CLS_PARAMS = os.path.join(FIXTURES, "cls_rna-a1_cls10.params")
SEG_PARAMS = os.path.join(FIXTURES, "seg_rna-a1_cls5_s8.params")
CLS = np.load(os.path.join(FIXTURES, "cls_rna-a1_cls10.npz"))
SEG = np.load(os.path.join(FIXTURES, "seg_rna-a1_cls5_s8.npz"))
CLS_WM, SEG_WM = float(CLS["width_multiplier"]), float(SEG["width_multiplier"])
REPO = os.path.dirname(os.path.dirname(os.path.dirname(FIXTURES)))
TOL = 1e-4


def _max_diff(model, data, key):
    out = model.predict(preprocess_input(data["image"]), verbose=0)
    assert out.shape == data[key].shape
    return float(np.abs(out - data[key]).max())


def test_classification_a1_matches_mxnet():
    model = ResNet38(variant="a1", classes=10, width_multiplier=CLS_WM,
                     input_shape=(None, None, 3), classifier_activation=None)
    report = convert(CLS_PARAMS, model)
    assert report.num_arrays == 193 and report.md5 is None
    assert _max_diff(model, CLS, "logits_a1") <= TOL


@pytest.mark.parametrize("pool_padding,key,other", [("caffe", "logits_a_caffe", "logits_a_pad1"),
                                                    ("pad1", "logits_a_pad1", "logits_a_caffe")])
def test_model_a_pooling_matches_mxnet(pool_padding, key, other):
    # pool_padding=None must mean "caffe" for Model A files (the released Model A,
    # docs/architecture.md §2.4).
    with pytest.warns(UserWarning, match="named as a Model A1 file but variant='a'"):
        model = load_ademxapp(CLS_PARAMS, variant="a", width_multiplier=CLS_WM,
                              classifier_activation=None,
                              pool_padding=None if pool_padding == "caffe" else pool_padding)
    assert _max_diff(model, CLS, key) <= TOL
    assert _max_diff(model, CLS, other) > 100 * TOL  # the two paddings are distinguishable


def test_segmentation_a1_os8_matches_mxnet():
    model = load_ademxapp(SEG_PARAMS, width_multiplier=SEG_WM)  # a1, 5 classes, OS 8: from name
    assert model.get_layer("linear5").kernel.shape == (3, 3, 8, 5)
    assert _max_diff(model, SEG, "logits") <= TOL


def test_weights_h5_loads_through_applications(tmp_path):
    out = tmp_path / "a1.weights.h5"
    export_keras_weights(CLS_PARAMS, out, model="resnet38_a1", width_multiplier=CLS_WM)
    model = ResNet38(variant="a1", classes=10, width_multiplier=CLS_WM, weights=str(out),
                     input_shape=(None, None, 3), classifier_activation=None)
    assert _max_diff(model, CLS, "logits_a1") <= TOL


def test_cli_converts_segmentation_file(tmp_path):
    out = tmp_path / "seg.weights.h5"
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, os.path.join(REPO, "tools", "convert_weights.py"),
           f"--input={SEG_PARAMS}", "--model=resnet38_a1", "--num_classes=5",
           "--output_stride=8", f"--width_multiplier={SEG_WM}", f"--output={out}"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    model = ResNet38Segmenter(5, width_multiplier=SEG_WM, weights=str(out))
    assert _max_diff(model, SEG, "logits") <= TOL


def test_mismatches_are_all_listed_and_model_untouched():
    model = ResNet38(variant="a1", classes=10, width_multiplier=CLS_WM, input_shape=(64, 64, 3))
    before = [w.copy() for w in model.get_weights()]
    params = read_params(CLS_PARAMS)
    del params["aux:bn4b3_branch2a_moving_var"]
    params["arg:res8a_branch2a_weight"] = np.zeros((1, 1, 1, 1), np.float32)
    params["arg:res3b1_branch2b1_weight"] = params["arg:res3b1_branch2b1_weight"][:, :, :2]
    params["aux:bn7_gamma"] = params.pop("arg:bn7_gamma")
    with pytest.raises(ValueError) as info:
        convert(params, model)
    msg = str(info.value)
    for expected in ("missing from the file: ['bn4b3_branch2a_moving_var']",
                     "not used by the model: ['res8a_branch2a_weight']",
                     "res3b1_branch2b1_weight (8, 8, 2, 3) vs. (8, 8, 3, 3)",
                     "aux:bn7_gamma (expected arg:)"):
        assert expected in msg
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_wrong_model_for_file_is_explained(tmp_path):
    # Segmentation file into a 7-class classifier: head arrays unused / missing.
    model = ResNet38(variant="a1", classes=7, width_multiplier=SEG_WM, input_shape=(64, 64, 3))
    with pytest.raises(ValueError, match=r"missing from the file: \['linear7_bias', "
                       r"'linear7_weight'\]\n.*not used by the model: \['conv6a_bias', "
                       r"'conv6a_weight', 'linear5_bias', 'linear5_weight'\]"):
        convert(SEG_PARAMS, model)
    # Wrong width multiplier: the error says which one the file has.
    with pytest.raises(ValueError, match=r"width_multiplier=0.03125"):
        load_ademxapp(CLS_PARAMS, variant="a1", width_multiplier=SEG_WM)
    with pytest.raises(ValueError, match="num_classes=1000 but .* holds linear10"):
        load_ademxapp(CLS_PARAMS, variant="a1", num_classes=1000, width_multiplier=CLS_WM)
    unnamed = tmp_path / "resnet38.params"
    shutil.copy(CLS_PARAMS, unnamed)
    with pytest.raises(ValueError, match="Pass variant='a' or variant='a1'"):
        load_ademxapp(unnamed, width_multiplier=CLS_WM)
    with pytest.raises(ValueError, match="must end with '.weights.h5'"):
        export_keras_weights(CLS_PARAMS, tmp_path / "out.h5", width_multiplier=CLS_WM)
    released = tmp_path / "ilsvrc-cls_rna-a1_cls1000_ep-0001.params"
    shutil.copy(CLS_PARAMS, released)
    with pytest.raises(ValueError, match="published md5 of ilsvrc-cls_rna-a1_cls1000"):
        load_ademxapp(released, width_multiplier=CLS_WM)
    model = load_ademxapp(released, check_md5=False, width_multiplier=CLS_WM)
    assert model.get_layer("linear10").kernel.shape == (128, 10)


# Kills its own process half-way through writing the weights file.
_KILLED_CONVERT = """
import os, signal, sys
import keras
def half_written_then_die(self, filepath, *args, **kwargs):
    with open(filepath, "wb") as f:
        f.write(b"\\x89HDF\\r\\n\\x1a\\n" + bytes(1000))
    os.kill(os.getpid(), signal.SIGKILL)
keras.Model.save_weights = half_written_then_die
from keras_wideresnet.cli.convert_weights import run
run()
"""


def test_conversion_killed_mid_write_leaves_no_output_and_a_rerun_finishes(tmp_path):
    out = tmp_path / "seg.weights.h5"
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    args = [f"--input={SEG_PARAMS}", "--model=resnet38_a1", "--num_classes=5",
            "--output_stride=8", f"--width_multiplier={SEG_WM}", f"--output={out}"]
    killed = subprocess.run([sys.executable, "-c", _KILLED_CONVERT, *args], env=env,
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert not out.exists()  # only a hidden .partial file, never the output name
    proc = subprocess.run([sys.executable, os.path.join(REPO, "tools", "convert_weights.py"), *args],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    model = ResNet38Segmenter(5, width_multiplier=SEG_WM, weights=str(out))
    assert _max_diff(model, SEG, "logits") <= TOL
