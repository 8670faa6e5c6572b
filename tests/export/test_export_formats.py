"""LiteRT (no extra dependency) and ONNX (the "onnx" extra: tf2onnx, onnx, onnxruntime) exports."""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import pytest

from keras_wideresnet import applications
from keras_wideresnet.export import ServingConfig, formats
from tests.tolerances import conv_depth_and_reduction, net_rtol


def _assert_logits_close(got, expected, model):
    """LiteRT and ONNX Runtime run the same float32 maths with their own kernels: the network
    bound of the model's architecture, against the logits' scale."""
    rtol = net_rtol(*conv_depth_and_reduction(model))
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * np.abs(expected).max())


def _model():
    keras.utils.set_random_seed(3)
    return applications.ResNet16(weights=None, width_multiplier=1 / 32, classes=3,
                                 classifier_activation=None, input_shape=(None, None, 3))


def test_litert_matches_the_keras_model(tmp_path):
    model = _model()
    cfg = ServingConfig("classification", ("a", "b", "c"), image_size=32)
    path = formats.export_litert(model, cfg, str(tmp_path))
    assert path == os.path.join(str(tmp_path), "model.tflite")
    x = np.random.default_rng(0).normal(size=(1, 32, 32, 3)).astype("float32")
    expected = model(x, training=False).numpy()
    got = formats.run_litert(path, x)
    _assert_logits_close(got, expected, model)
    with open(tmp_path / "labels.txt") as f:
        assert f.read().split() == ["a", "b", "c"]
    meta = json.loads((tmp_path / "serving_config.json").read_text())
    assert meta["input_shape"] == [1, 32, 32, 3] and meta["model_file"] == "model.tflite"
    with pytest.raises(FileExistsError, match="--overwrite"):
        formats.export_litert(model, cfg, str(tmp_path))


def test_fixed_input_shape_for_segmentation_canvas():
    model = applications.ResNet38Segmenter(3, width_multiplier=1 / 32)
    cfg = ServingConfig("segmentation", ("a", "b", "c"), image_size=500)
    assert formats.fixed_input_shape(model, cfg) == (1, 504, 504, 3)
    fixed = applications.ResNet16(weights=None, width_multiplier=1 / 32, classes=3,
                                  input_shape=(64, 64, 3))
    with pytest.raises(ValueError, match="does not match the eval size 32"):
        formats.fixed_input_shape(fixed, ServingConfig("classification", ("a", "b", "c"), 32))


def test_onnx_matches_the_keras_model(tmp_path):
    import onnxruntime as ort  # the "onnx" extra, part of "test": missing, this fails, not skips
    model = _model()
    cfg = ServingConfig("classification", ("a", "b", "c"), image_size=32)
    path = formats.export_onnx(model, cfg, str(tmp_path))
    session = ort.InferenceSession(path)
    x = np.random.default_rng(0).normal(size=(2, 40, 36, 3)).astype("float32")
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    expected = model(x, training=False).numpy()
    _assert_logits_close(got, expected, model)
