"""Models, data and outputs of ``keras-wideresnet-analyze-paths``, as tested functions.

Models come from a family spec name (+ width multiplier, optional ``.weights.h5``), a ``.keras``
file, or a training run (its gin config + checkpoint, so the model and loss are rebuilt exactly
as trained). Batches come from TFRecords of our schema, the quickstart data, an ``.npz`` file
(``x``, ``y``), or the training run's eval pipeline.
"""

from __future__ import annotations

import json
import os
from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf

from keras_wideresnet.analysis.effective_depth import EffectiveDepthConfig
from keras_wideresnet.analysis.paths import LossFn, PathAnalysisResult, analyze_paths
from keras_wideresnet.analysis.plots import plot_path_analysis, summary_lines
from keras_wideresnet.tasks import get_task
from keras_wideresnet.tasks.eval_loop import eval_dataset

QUICKSTART_INDEX = "quickstart_files.json"


def build_family_model(spec_name: str, *, width_multiplier: float = 1.0, classes: int = 10,
                       image_size: int = 32, weights: str | None = None,
                       classifier_activation: str | None = None) -> keras.Model:
    """A classifier of the family from a registry name such as ``resnet38_a1``.

    Args:
      spec_name: See :func:`keras_wideresnet.models.list_specs`.
      width_multiplier: Scales every width.
      classes, image_size: Classifier size and (square) input size.
      weights: Optional ``.weights.h5`` (e.g. from ``keras-wideresnet-convert-weights`` or training).
      classifier_activation: ``None`` for logits (what the loss expects by default).
    """
    from keras_wideresnet.applications import WideResNet
    from keras_wideresnet.models import get_spec

    spec = get_spec(spec_name).scaled(width_multiplier)
    return WideResNet(spec, weights=weights, input_shape=(image_size, image_size, 3),
                      classes=classes, classifier_activation=classifier_activation)


def load_keras_model(path: str) -> keras.Model:
    """Loads a whole ``.keras`` model file."""
    if not str(path).endswith(".keras"):
        raise ValueError(f"--keras_model must be a .keras file. Received: {path!r}")
    if not os.path.exists(path):
        raise ValueError(f"Model file {path!r} does not exist.")
    import keras_wideresnet.applications  # noqa: F401  (registers the custom layers)

    return keras.saving.load_model(path, compile=False)


def load_trained_model(exp: Any, checkpoint: str) -> tuple[keras.Model, Any, LossFn]:
    """Rebuilds a training run's model from its :class:`Experiment` (the tools parse its gin
    config) and restores ``checkpoint``.

    Returns ``(model, experiment, loss_fn)`` where ``loss_fn`` is the experiment's training loss.
    """
    from keras_wideresnet.training.checkpoints import restore_model

    model = exp.build_model()
    restore_model(model, checkpoint)
    return model, exp, get_task(exp.task).analysis_loss_fn(exp)


def experiment_batches(experiment: Any, num_batches: int) -> tf.data.Dataset:
    """The experiment's eval pipeline (same preprocessing as evaluation), first batches."""
    if experiment.eval_data is None:
        raise ValueError("The experiment has no eval_data; pass --data_pattern, --quickstart_dir "
                         "or --npz instead.")
    return eval_dataset(get_task(experiment.task), experiment).take(num_batches)


def quickstart_patterns(out_dir: str, image_size: int = 32) -> dict[str, Any]:
    """The quickstart digits TFRecords in ``out_dir``, written on first use."""
    index = os.path.join(out_dir, QUICKSTART_INDEX)
    if os.path.exists(index):
        with open(index, encoding="utf-8") as f:
            return json.load(f)
    from keras_wideresnet.data import write_quickstart

    info = write_quickstart(out_dir, task="classification", image_size=image_size)
    with open(index, "w", encoding="utf-8") as f:
        json.dump(info, f, indent=2)
    return info


def tfrecord_batches(pattern: str, *, batch_size: int, num_batches: int, image_size: int,
                     num_classes: int | None = None) -> tf.data.Dataset:
    """Eval-preprocessed classification batches from TFRecords of our schema."""
    from keras_wideresnet.data import classification_dataset

    if not tf.io.gfile.glob(pattern.split(",")[0]):
        raise ValueError(f"No TFRecord files match {pattern!r}. Write them with "
                         "keras-wideresnet-create-tfrecords or use --quickstart_dir.")
    ds = classification_dataset(pattern, is_training=False, global_batch_size=batch_size,
                                image_size=image_size, num_classes=num_classes,
                                deterministic=True, drop_remainder=True)
    return ds.take(num_batches)


def npz_batches(path: str, *, batch_size: int, num_batches: int) -> list[tuple[np.ndarray,
                                                                               np.ndarray]]:
    """Batches from an ``.npz`` with preprocessed images ``x`` and labels ``y``."""
    if not os.path.exists(path):
        raise ValueError(f"--npz file {path!r} does not exist.")
    with np.load(path) as f:
        if "x" not in f or "y" not in f:
            raise ValueError(f"{path!r} must hold arrays 'x' (images) and 'y' (labels). "
                             f"Found: {sorted(f.files)}")
        x, y = f["x"], f["y"]
    if len(x) != len(y) or len(x) < batch_size:
        raise ValueError(f"{path!r}: x and y need equal lengths >= batch_size ({batch_size}). "
                         f"Found {len(x)} and {len(y)}.")
    n = min(num_batches, len(x) // batch_size)
    return [(x[i * batch_size:(i + 1) * batch_size], y[i * batch_size:(i + 1) * batch_size])
            for i in range(n)]


def run_path_analysis(model: keras.Model, data: Any, output_dir: str, *,
                      samples_per_k: int = 1000, path_lengths: Sequence[int] | None = None,
                      seed: int = 0, loss_fn: LossFn | str | None = "auto",
                      training: bool = False,
                      effective_depth_config: EffectiveDepthConfig = EffectiveDepthConfig(),
                      title: str | None = None, keep_samples: bool = False,
                      verbose: bool = True) -> tuple[PathAnalysisResult, dict[str, str]]:
    """Runs :func:`analyze_paths` and writes ``path_analysis.json``, ``summary.txt`` and PNGs.

    Returns the result and ``{name: path}`` of everything written.
    """
    result = analyze_paths(model, data, samples_per_k=samples_per_k, path_lengths=path_lengths,
                           seed=seed, loss_fn=loss_fn, training=training,
                           effective_depth_config=effective_depth_config,
                           keep_samples=keep_samples, verbose=verbose)
    return result, _write_outputs(result, output_dir, title or model.name)


def replot_path_analysis(json_path: str, output_dir: str,
                         effective_depth_config: EffectiveDepthConfig | None = None,
                         title: str | None = None) -> tuple[PathAnalysisResult, dict[str, str]]:
    """Re-reads a ``path_analysis.json`` (optionally under another effective-depth definition)
    and writes its plots, JSON and summary to ``output_dir`` without measuring again."""
    if not os.path.exists(json_path):
        raise ValueError(f"--from_json file {json_path!r} does not exist.")
    with open(json_path, encoding="utf-8") as f:
        result = PathAnalysisResult.from_dict(json.load(f))
    if effective_depth_config is not None:
        result = result.with_effective_depth(effective_depth_config)
    return result, _write_outputs(result, output_dir, title)


def _write_outputs(result: PathAnalysisResult, output_dir: str,
                   title: str | None) -> dict[str, str]:
    """Plots, ``path_analysis.json`` and ``summary.txt`` of a result; returns their paths."""
    os.makedirs(output_dir, exist_ok=True)
    files = plot_path_analysis(result, output_dir, title=title)
    files["json"] = os.path.join(output_dir, "path_analysis.json")
    result.to_json(files["json"])
    files["summary"] = os.path.join(output_dir, "summary.txt")
    with open(files["summary"], "w", encoding="utf-8") as f:
        f.write("\n".join(summary_lines(result)) + "\n")
    return files
