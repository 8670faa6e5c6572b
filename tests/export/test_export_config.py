"""Fast checks of the export settings, versioning and bad arguments (no tracing)."""

from __future__ import annotations

import os
import sys

import keras
import pytest

from keras_wideresnet.export import (ServingConfig, existing_versions, export_saved_model,
                                     from_experiment, next_version)
from keras_wideresnet.export import formats
from keras_wideresnet.training.experiment import Experiment


def _tiny_dense(classes=3):
    inputs = keras.Input((None, None, 3))
    outputs = keras.layers.Dense(classes)(keras.layers.GlobalAveragePooling2D()(inputs))
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("kwargs, match", [
    (dict(task="detection"), "task must be one of"),
    (dict(class_names=()), "class_names is empty"),
    (dict(class_names=("a", "b\nc")), "single-line"),
    (dict(image_size=16), "image_size must be an integer >= 32"),
    (dict(resize_shorter=40, image_size=64), "resize_shorter must be >= image_size"),
    (dict(top_k=0), "top_k must be >= 1"),
    (dict(scales=(1.0, -0.5)), "scales must be positive"),
    (dict(tile_size=8), "tile_size must be None or >= 32"),
])
def test_bad_config_names_the_setting(kwargs, match):
    base = dict(task="classification", class_names=("a", "b"), image_size=32)
    with pytest.raises(ValueError, match=match):
        ServingConfig(**{**base, **kwargs})


def test_top_k_is_capped_and_experiment_settings_carry_over():
    cfg = ServingConfig("classification", ("a", "b"), image_size=32, top_k=5)
    assert cfg.effective_top_k == 2
    exp = Experiment(task="segmentation", model_fn=lambda **kw: None, num_classes=3,
                     class_names=("x", "y", "z"), eval_image_size=500, eval_scales=(0.75, 1.0),
                     eval_flip=True, eval_tile_size=None)
    seg = from_experiment(exp, include_probabilities=True)
    assert (seg.task, seg.image_size, seg.scales, seg.flip, seg.include_probabilities) == (
        "segmentation", 500, (0.75, 1.0), True, True)
    exp = Experiment(task="classification", model_fn=lambda **kw: None, num_classes=4,
                     eval_image_size=320, eval_resize_shorter=352)
    cls = from_experiment(exp, top_k=3)
    assert cls.class_names == ("0", "1", "2", "3")
    assert (cls.image_size, cls.resize_shorter, cls.top_k) == (320, 352, 3)
    with pytest.raises(ValueError, match="2 class names were given"):
        from_experiment(exp, class_names=("a", "b"))


def test_versions_and_refusal_to_overwrite(tmp_path):
    base = str(tmp_path / "serving")
    assert next_version(base) == 1
    for d in ("1", "3", "tmp", ".tmp-4-abc"):
        os.makedirs(os.path.join(base, d))
    assert existing_versions(base) == [1, 3]
    assert next_version(base) == 4
    cfg = ServingConfig("classification", ("a", "b", "c"), image_size=32)
    with pytest.raises(FileExistsError, match=r"already exists.*--overwrite"):
        export_saved_model(_tiny_dense(), cfg, base, version=3)
    with pytest.raises(ValueError, match="non-negative integer"):
        export_saved_model(_tiny_dense(), cfg, base, version=-2)
    with pytest.raises(ValueError, match="has 4 outputs but 3 class names"):
        export_saved_model(_tiny_dense(4), cfg, base, version=9)
    assert existing_versions(base) == [1, 3]


def test_onnx_without_its_dependencies_says_what_to_install(tmp_path, monkeypatch):
    # A None entry in sys.modules makes the import fail as if the package were not installed
    # (the "test" extra installs it, so it is hidden here rather than absent).
    monkeypatch.setitem(sys.modules, "onnx", None)
    monkeypatch.setitem(sys.modules, "tf2onnx", None)
    cfg = ServingConfig("classification", ("a", "b", "c"), image_size=32)
    with pytest.raises(ImportError, match=r"pip install 'keras_wideresnet\[onnx\]'"):
        formats.export_onnx(_tiny_dense(), cfg, str(tmp_path))
    assert not os.listdir(tmp_path)
