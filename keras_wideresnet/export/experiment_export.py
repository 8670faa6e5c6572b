"""Export a trained experiment: rebuild the model, restore its weights, write the format.
The library side of ``keras-wideresnet-export``; gin stays in the tool."""

from __future__ import annotations

from typing import Any

from absl import logging

from keras_wideresnet.export import formats
from keras_wideresnet.export.config import from_experiment
from keras_wideresnet.export.saved_model import export_saved_model
from keras_wideresnet.models.folding import fold_batch_norm


def export_experiment(experiment: Any, weights: str, export_dir: str, *,
                      export_format: str = "saved_model", version: int | None = None,
                      overwrite: bool = False, top_k: int = 5,
                      include_probabilities: bool = False, fold_bn: bool = True) -> str:
    """Builds ``experiment``'s model, restores ``weights`` and exports it.

    Args:
      experiment: A :class:`keras_wideresnet.training.experiment.Experiment`; its eval settings
        (``eval_image_size``, ``eval_resize_shorter``, ``eval_scales``, ``eval_flip``,
        ``eval_tile_size``) become the serving preprocessing.
      weights: A training ``model_dir``, a checkpoint prefix or a ``.weights.h5`` file
        (anything :func:`~keras_wideresnet.training.checkpoints.restore_model` takes).
      export_dir: SavedModel: the TF Serving base path (``export_dir/<version>/`` is written).
        LiteRT/ONNX: the folder for ``model.tflite``/``model.onnx`` and sidecars.
      export_format: One of :data:`keras_wideresnet.export.formats.FORMATS`.
      version, overwrite, top_k, include_probabilities: See :func:`export_saved_model` and
        :class:`~keras_wideresnet.export.config.ServingConfig`.
      fold_bn: Serve the BN-folded inference form (:func:`keras_wideresnet.models.fold_batch_norm`):
        same outputs to float rounding, fewer memory passes.

    Returns:
      The written version directory or model file.
    """
    from keras_wideresnet.training.checkpoints import restore_model

    if export_format not in formats.FORMATS:
        raise ValueError(f"export_format must be one of {formats.FORMATS}. "
                         f"Received: {export_format!r}")
    config = from_experiment(experiment, top_k=top_k, include_probabilities=include_probabilities)
    # Any input size: serving feeds eval crops / canvases of the experiment's eval size.
    model = experiment.build_model(input_shape=(None, None, 3))
    restored = restore_model(model, weights)
    logging.info("Restored %s into %s", restored, model.name)
    if fold_bn:
        model = fold_batch_norm(model)
        logging.info("Folded batch normalization for inference.")
    if export_format == "litert":
        return formats.export_litert(model, config, export_dir, overwrite=overwrite)
    if export_format == "onnx":
        return formats.export_onnx(model, config, export_dir, overwrite=overwrite)
    return export_saved_model(model, config, export_dir, version=version, overwrite=overwrite,
                              source=restored)
