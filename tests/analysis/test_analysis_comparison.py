"""The "wider or deeper" comparison: parameter matching, measurements and the table."""

import json

import keras
import numpy as np
import pytest

from keras_wideresnet.analysis import (
    Member,
    compare_members,
    comparison_markdown,
    estimate_training_memory,
    match_width,
    read_accuracy,
    spec_param_count,
    wider_or_deeper_members,
)
from keras_wideresnet.applications import WideResNet
from keras_wideresnet.models import get_spec


@pytest.mark.parametrize("name,width,classes", [("resnet16_a1", 1 / 32, 10),
                                                 ("resnet20_a", 1 / 16, 7),
                                                 ("resnet38_a2", 1 / 32, 3)])
def test_param_count_matches_keras(name, width, classes):
    spec = get_spec(name).scaled(width)
    model = WideResNet(spec, input_shape=(32, 32, 3), classes=classes)
    assert spec_param_count(spec, classes) == model.count_params()
    backbone = WideResNet(spec, include_top=False, input_shape=(32, 32, 3))
    assert spec_param_count(spec, None) == backbone.count_params()


def test_members_have_similar_params_and_different_depths():
    members = wider_or_deeper_members(base_width=1 / 32, classes=10)
    params = [spec_param_count(m, 10) for m in members]
    depths = [m.depth for m in members]
    assert depths == sorted(depths, reverse=True) and len(set(depths)) == 4
    assert max(params) / min(params) < 1.05
    widths = [m.blocks[0].filters[0] for m in members]
    assert widths[0] < widths[1] <= widths[2] <= widths[3]  # shallower members are wider
    assert members[1].name.startswith("resnet38")


def test_match_width_hits_target():
    target = spec_param_count(get_spec("resnet38_a1").scaled(1 / 16), 10)
    spec = match_width((1, 1, 1, 1, 1, 1), target, classes=10, name="wide16")
    assert spec.name == "wide16"
    assert abs(spec_param_count(spec, 10) - target) / target < 0.03
    with pytest.raises(ValueError, match="target_params"):
        match_width((1, 1, 1, 1, 1, 1), 0)


def test_read_accuracy(tmp_path):
    assert read_accuracy(None) is None
    assert read_accuracy({"top1": 0.5, "top5": 0.9}) == 0.5
    assert read_accuracy({"val_accuracy": [0.1, 0.3]}) == 0.3
    (tmp_path / "metrics_10.json").write_text(json.dumps({"top1": 0.25}))
    (tmp_path / "metrics_200.json").write_text(json.dumps({"top1": 0.75}))
    (tmp_path / "metrics_30.json").write_text(json.dumps({"top1": 0.5}))
    assert read_accuracy(str(tmp_path)) == 0.75
    assert read_accuracy(str(tmp_path / "metrics_10.json")) == 0.25
    with pytest.raises(ValueError, match="available keys"):
        read_accuracy({"loss": 1.0})
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="metrics_<step>.json"):
        read_accuracy(str(tmp_path / "empty"))
    with pytest.raises(ValueError, match="does not exist"):
        read_accuracy(str(tmp_path / "missing.json"))


def test_memory_estimate_grows_with_batch_and_depth():
    spec = get_spec("resnet16_a1").scaled(1 / 32)
    model = WideResNet(spec, input_shape=(32, 32, 3), classes=4, classifier_activation=None)
    x = np.zeros((2, 32, 32, 3), "float32")
    y = np.zeros((2,), "int32")
    small = estimate_training_memory(model, x, y)
    big = estimate_training_memory(model, np.zeros((8, 32, 32, 3), "float32"),
                                   np.zeros((8,), "int32"))
    weights_only = 3 * 4 * model.count_params()
    assert weights_only < small < big
    # Activations scale with the batch: 4x the batch, about 4x the activation bytes (a model of
    # memory, not rounding: batch-independent buffers keep the ratio within 10 % of 4).
    assert (big - weights_only) / (small - weights_only) == pytest.approx(4, rel=0.1)


def test_compare_members_table(tmp_path):
    keras.utils.set_random_seed(0)
    shallow = get_spec("resnet16_a1").scaled(1 / 16)
    middle = get_spec("resnet20_a1").scaled(1 / 32)
    x = np.random.default_rng(0).normal(size=(4, 32, 32, 3)).astype("float32")
    y = np.array([0, 1, 2, 3], "int32")
    trained = WideResNet(shallow, input_shape=(32, 32, 3), classes=4, classifier_activation=None)
    before = [w.numpy().copy() for w in trained.weights]
    (tmp_path / "metrics_5.json").write_text(json.dumps({"top1": 0.625}))
    rows = compare_members([Member(shallow, model=trained, metrics=str(tmp_path), label="wide"),
                            middle], (x, y), classes=4, samples_per_k=2,
                           path_lengths=[0, 1, 2, 3], timing_steps=1, verbose=False)
    for b, w in zip(before, trained.weights):  # timing must not change the trained weights
        np.testing.assert_array_equal(b, w.numpy())
    assert [r["member"] for r in rows] == ["wide", middle.name]
    assert rows[0]["accuracy"] == 0.625 and rows[1]["accuracy"] is None
    assert rows[0]["num_units"] == 6 and rows[1]["num_units"] == 8
    assert rows[0]["params"] == trained.count_params()
    assert all(r["step_time_ms"] > 0 and r["memory_mib"] > 0 for r in rows)
    assert all(r["effective_depth"] in (0, 1, 2, 3) for r in rows)
    table = comparison_markdown(rows)
    lines = table.splitlines()
    assert lines[0].startswith("| member |") and len(lines[2].split("|")) == 11
    assert "| wide | 1-1-1-1-1-1 | 6 | 16 |" in table and "62.50 %" in table and "n/a" in table
    json.dumps(rows)  # rows are JSON-serialisable


def test_wider_or_deeper_gin_members_match_in_parameters():
    """The gin configs train members of about equal size and decreasing depth."""
    import glob
    import os

    from keras_wideresnet.analysis import describe_units
    from keras_wideresnet.config import gin_config

    root = os.path.join(os.path.dirname(__file__), "..", "..", "gin_configs", "analysis",
                        "wider_or_deeper")
    files = sorted(glob.glob(os.path.join(root, "*.gin")))
    assert [os.path.basename(f) for f in files] == ["resnet16.gin", "resnet20.gin",
                                                    "resnet38.gin"]
    found = {}
    for f in files:
        gin_config.parse_gin([f])
        experiment = gin_config.load_experiment()
        model = experiment.build_model()
        found[os.path.basename(f)] = (model.count_params(), describe_units(model)["depth"])
        keras.backend.clear_session()
    params = [p for p, _ in found.values()]
    assert max(params) / min(params) < 1.03, found
    assert [found[n][1] for n in ("resnet38.gin", "resnet20.gin", "resnet16.gin")] == [38, 20, 16]
    gin_config.parse_gin([])  # leave gin clean for other tests
