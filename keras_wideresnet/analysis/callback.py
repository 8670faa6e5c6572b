"""A training callback that tracks effective depth over epochs (docs/architecture.md §6.3).

Runs :func:`~keras_wideresnet.analysis.analyze_paths` on a fixed batch every N epochs and
logs to TensorBoard (``tf.summary``) under ``path_analysis/``:

* scalar ``path_analysis/effective_depth`` (and ``effective_range_low``/``_high`` if defined),
* scalars ``path_analysis/mean_gradient/k{k:02d}`` and ``path_analysis/total_gradient/k{k:02d}``,
* image ``path_analysis/gradient_by_path_length`` (the log-scale curve, optional).
"""

from __future__ import annotations

import json
import os
from typing import Any

import keras
import tensorflow as tf

from keras_wideresnet.analysis.effective_depth import EffectiveDepthConfig
from keras_wideresnet.analysis.paths import PathAnalysisResult, analyze_paths, as_batches


class PathAnalysisCallback(keras.callbacks.Callback):
    """Measures gradient magnitude by path length every ``every_n_epochs`` epochs.

    Args:
      every_n_epochs: Period in epochs (the measurement runs after epochs N, 2N, ...).
      batch: ``(x, y)`` or a list of batches / finite ``tf.data.Dataset`` (preprocessed images).
      log_dir: TensorBoard directory; a ``path_analysis`` sub-directory is written. ``None``
        skips TensorBoard (results are still kept in :attr:`history`).
      samples_per_k: Samples per path length (keep it small: this runs inside training).
      path_lengths: The k values to measure (default all).
      seed: Sampling seed (the same subsets every time, so epochs are comparable).
      loss_fn: As in :func:`analyze_paths`.
      effective_depth_config: Effective-depth definition.
      log_images: Also log the plot as an image summary.
      json_dir: If set, write ``path_analysis_epoch{E:04d}.json`` there too.
      verbose: Print one line per measurement.

    Attributes:
      history: ``[(epoch, PathAnalysisResult), ...]``.
    """

    def __init__(self, every_n_epochs: int, batch: Any, log_dir: str | None = None,
                 samples_per_k: int = 20, path_lengths=None, seed: int = 0,
                 loss_fn: Any = "auto",
                 effective_depth_config: EffectiveDepthConfig = EffectiveDepthConfig(),
                 log_images: bool = True, json_dir: str | None = None, verbose: bool = True):
        super().__init__()
        if not isinstance(every_n_epochs, int) or every_n_epochs < 1:
            raise ValueError("`every_n_epochs` must be a positive integer. "
                             f"Received: every_n_epochs={every_n_epochs!r}")
        self.every_n_epochs = every_n_epochs
        self.batches = as_batches(batch)
        self.log_dir = log_dir
        self.samples_per_k = samples_per_k
        self.path_lengths = path_lengths
        self.seed = seed
        self.loss_fn = loss_fn
        self.effective_depth_config = effective_depth_config
        self.log_images = log_images
        self.json_dir = json_dir
        self.verbose = verbose
        self.history: list[tuple[int, PathAnalysisResult]] = []
        self._writer = None

    def _summary_writer(self):
        if self._writer is None and self.log_dir is not None:
            self._writer = tf.summary.create_file_writer(os.path.join(self.log_dir,
                                                                      "path_analysis"))
        return self._writer

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if (epoch + 1) % self.every_n_epochs:
            return
        result = analyze_paths(self.model, self.batches, samples_per_k=self.samples_per_k,
                               path_lengths=self.path_lengths, seed=self.seed,
                               loss_fn=self.loss_fn,
                               effective_depth_config=self.effective_depth_config,
                               verbose=False)
        self.history.append((epoch, result))
        if logs is not None and result.effective_depth is not None:
            logs["effective_depth"] = float(result.effective_depth)
        if self.verbose:
            print(f"\nEpoch {epoch + 1}: effective depth {result.effective_depth} "
                  f"(range {result.effective_range}) of {result.num_units} units")
        if self.json_dir is not None:
            os.makedirs(self.json_dir, exist_ok=True)
            result.to_json(os.path.join(self.json_dir, f"path_analysis_epoch{epoch + 1:04d}.json"))
        writer = self._summary_writer()
        if writer is not None:
            self._log(writer, epoch + 1, result)

    def _log(self, writer, step: int, result: PathAnalysisResult) -> None:
        with writer.as_default(step=step):
            if result.effective_depth is not None:
                tf.summary.scalar("path_analysis/effective_depth", result.effective_depth)
            if result.effective_range is not None:
                tf.summary.scalar("path_analysis/effective_range_low", result.effective_range[0])
                tf.summary.scalar("path_analysis/effective_range_high", result.effective_range[1])
            for k, mean, total in zip(result.path_lengths, result.mean, result.total):
                tf.summary.scalar(f"path_analysis/mean_gradient/k{k:02d}", mean)
                tf.summary.scalar(f"path_analysis/total_gradient/k{k:02d}", total)
            tf.summary.text("path_analysis/result", json.dumps(
                {k: v for k, v in result.to_dict().items() if k != "samples"}))
            if self.log_images:
                from keras_wideresnet.analysis.plots import render_png

                png = render_png(result, title=f"epoch {step}")
                image = tf.image.decode_png(png, channels=4)[tf.newaxis]
                tf.summary.image("path_analysis/gradient_by_path_length", image)
        writer.flush()

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


__all__ = ["PathAnalysisCallback"]


class _PathAnalysisAction:
    """The trainer's step action around :class:`PathAnalysisCallback`: built on first use on
    the chief, from one fixed training batch."""

    name = "path_analysis"

    def __init__(self, experiment: Any):
        self.interval = experiment.path_analysis_interval
        self._callback = None

    def __call__(self, trainer: Any, step: int) -> None:
        if not trainer.chief:
            return
        if self._callback is None:
            exp = trainer.experiment
            batch = next(iter(exp.train_data(input_context=None, is_training=True)))
            self._callback = PathAnalysisCallback(
                1, [batch], log_dir=trainer.model_dir, samples_per_k=exp.path_analysis_samples_per_k,
                seed=exp.seed or 0, loss_fn=trainer.task.analysis_loss_fn(exp),
                json_dir=trainer.model_dir, verbose=False)
            self._callback.set_model(trainer.model)
        self._callback.on_epoch_end(step // self.interval - 1)


def path_analysis_action(experiment: Any) -> _PathAnalysisAction | None:
    """The paper's path-length measurement during training (``Experiment.path_analysis_interval``)
    as a trainer action, or None when the experiment does not ask for it."""
    return _PathAnalysisAction(experiment) if experiment.path_analysis_interval else None
