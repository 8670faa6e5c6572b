"""Every gin config in gin_configs/ parses into an Experiment with the paper's settings."""

import glob
import os

import pytest

from keras_wideresnet.config import gin_config

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "gin_configs")
# Files starting with "_" are shared includes, not experiments.
CONFIGS = sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "**", "*.gin"),
                                                              recursive=True)
                 if not os.path.basename(p).startswith("_"))


@pytest.mark.parametrize("name", CONFIGS)
def test_config_parses(name):
    gin_config.parse_gin([name])
    exp = gin_config.load_experiment()
    assert exp.task in ("classification", "segmentation")
    if exp.class_names is not None:
        assert len(exp.class_names) == exp.num_classes


def test_paper_segmentation_recipe_values():
    gin_config.parse_gin(["segmentation/cityscapes_a1_os8.gin"])
    exp = gin_config.load_experiment()
    assert exp.num_classes == 19 and exp.class_names[0] == "road"
    assert exp.loss.bootstrap and exp.loss.bootstrap_threshold == 0.6
    assert exp.loss.bootstrap_min_kept == 256 and exp.loss.label_resolution == "subsample"
    assert exp.optimizer.weight_decay == 5e-4 and exp.optimizer.bias_lr_multiplier == 2.0
    assert exp.optimizer.learning_rate == 0.0016 and exp.optimizer.schedule == "constant"
    assert exp.train_steps == 25900 and exp.eval_flip
    assert exp.init_checkpoint_modules == "backbone"
    # The bindings reach the model: tiny width, but OS 8, frozen-statistics BN and dropout.
    model = exp.build_model(width_multiplier=1 / 32, input_shape=(64, 64, 3))
    assert model.output.shape == (None, 8, 8, 19)
    assert model.get_layer("res7a").dropout_rate == 0.5
    assert model.get_layer("res2a").bn_mode == "frozen_stats"


def test_imagenet_recipe_values():
    gin_config.parse_gin(["imagenet/resnet38_a1_from_a.gin"])
    exp = gin_config.load_experiment()
    assert exp.optimizer.learning_rate == 0.01 and exp.optimizer.nesterov
    assert exp.train_steps == 45036 and exp.eval_image_size == 320
    model = exp.build_model(width_multiplier=1 / 32)
    assert "pool1" not in {l.name for l in model.layers}  # A1: strided convs, no pooling


def test_installed_configs_are_the_repository_ones():
    # The package reads its gin files through importlib.resources; in this checkout's editable
    # install they are the repository's gin_configs/, in a wheel the copy setup.py ships.
    (installed,) = gin_config.default_search_paths()
    shipped = sorted(os.path.relpath(p, installed)
                     for p in glob.glob(os.path.join(installed, "**", "*.gin"), recursive=True))
    assert shipped == sorted(os.path.relpath(p, ROOT)
                             for p in glob.glob(os.path.join(ROOT, "**", "*.gin"), recursive=True))


def test_gin_file_names_resolve_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    paths = gin_config.default_search_paths()
    for name in ("quickstart/digits.gin", os.path.join("gin_configs", "quickstart", "digits.gin")):
        resolved = gin_config.resolve_gin_file(name, paths)
        assert os.path.samefile(resolved, os.path.join(ROOT, "quickstart", "digits.gin")), name
    # A file in the working directory wins over the shipped one of the same name.
    (tmp_path / "quickstart").mkdir()
    (tmp_path / "quickstart" / "digits.gin").write_text("Experiment.train_steps = 1\n")
    assert gin_config.resolve_gin_file("quickstart/digits.gin", paths) == "quickstart/digits.gin"
    # An unknown name comes back unchanged, so the error names what the user typed.
    assert gin_config.resolve_gin_file("nope.gin", paths) == "nope.gin"
    with pytest.raises(gin_config.GinConfigError, match="nope.gin"):
        gin_config.parse_gin(["nope.gin"])
