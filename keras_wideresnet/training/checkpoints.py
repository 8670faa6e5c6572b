"""Checkpoint I/O: training checkpoints keyed by each variable's Keras path, and restoring
them (or a ``.weights.h5`` file) into a freshly built model with shape checks first."""

from __future__ import annotations

import os

import keras
import tensorflow as tf

from keras_wideresnet.applications import load_weights

# Layers that are not part of the backbone (classifier / segmentation head): names start so.
HEAD_LAYER_PREFIXES = ("linear", "conv6a", "upsample_logits", "pool7")


def latest_checkpoint(path: str) -> str | None:
    """The newest checkpoint prefix in a directory, or ``path`` if it is a prefix itself."""
    if tf.io.gfile.isdir(path):
        return tf.train.latest_checkpoint(path)
    if tf.io.gfile.exists(path + ".index"):
        return path
    return None


def restore_model(model: keras.Model, path: str, modules: str = "all") -> str:
    """Loads weights into ``model`` from a training checkpoint (dir or prefix) or a weights file.

    Args:
      model: The freshly built model.
      path: ``model_dir``, a checkpoint prefix (``model_dir/ckpt-100``) or a ``.weights.h5``.
      modules: ``"all"`` or ``"backbone"`` (head layers are left as initialised).

    Returns:
      What was restored, for logging.
    """
    # Both formats load strictly all but the skipped head: another architecture raises.
    head = [l for l in model.layers if modules == "backbone" and l.name.startswith(HEAD_LAYER_PREFIXES)]
    if path.endswith(".h5"):
        if not os.path.exists(path):
            raise FileNotFoundError(f"Weights file {path!r} does not exist.")
        load_weights(model, path, skip=head)
        return path
    prefix = latest_checkpoint(path)
    if prefix is None:
        raise FileNotFoundError(
            f"No checkpoint found at {path!r}: expected a model_dir written by keras-wideresnet-train, "
            "a checkpoint prefix such as MODEL_DIR/ckpt-1000, or a .weights.h5 file.")
    reader = tf.train.load_checkpoint(prefix)
    saved = reader.get_variable_to_shape_map()
    layers = [l for l in model.layers if not any(l is h for h in head)]
    missing, mismatched = [], []
    for layer in layers:
        for var in layer.weights:
            key = _checkpoint_key(var)
            if key not in saved:
                missing.append(var.path)
            elif tuple(saved[key]) != tuple(var.shape):
                mismatched.append(f"{var.path}: checkpoint {tuple(saved[key])} vs model {tuple(var.shape)}")
    if missing or mismatched:
        raise ValueError(
            f"Checkpoint {prefix!r} does not match the model {model.name!r} "
            f"({len(missing)} missing, {len(mismatched)} with other shapes; first: "
            f"{(mismatched + missing)[:5]}). It was written for another architecture: use the "
            "gin config it was trained with, or a fresh --model_dir.")
    for layer in layers:
        for var in layer.weights:
            var.assign(reader.get_tensor(_checkpoint_key(var)))
    return prefix


def checkpoint_name(var) -> str:
    """A model variable's name in training checkpoints: its Keras path with ``/`` → ``-``
    (stable across runs, unlike object-graph positions)."""
    return var.path.replace("/", "-")


def _checkpoint_key(var) -> str:
    """Key of a model variable in checkpoints written by :mod:`keras_wideresnet.training.trainer`."""
    return f"model/{checkpoint_name(var)}/.ATTRIBUTES/VARIABLE_VALUE"
