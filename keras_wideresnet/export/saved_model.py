"""Versioned SavedModel export for TF Serving.

The model is written with :class:`keras.export.ExportArchive`, whose variables load in TF
Serving's C++ session loader (a plain ``tf.saved_model.save`` of a Keras 3 model does not:
``FailedPreconditionError: Could not find variable``). Layout: ``BASE/<version>/`` with
``saved_model.pb``, ``variables/``, ``assets/labels.txt`` (one class name per line, used by the
graph to name the top-k classes) and ``assets.extra/serving_config.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid

import keras
import tensorflow as tf
from absl import logging

from keras_wideresnet.export.config import ServingConfig
from keras_wideresnet.export.serving import ServingFunctions

SIGNATURES = ("serving_default", "serving_image_tensor", "serving_tf_example")
LABELS_FILENAME = "labels.txt"
CONFIG_FILENAME = "serving_config.json"


def existing_versions(export_base: str) -> list[int]:
    """Integer version directories under ``export_base`` (what TF Serving would load)."""
    if not tf.io.gfile.isdir(export_base):
        return []
    return sorted(int(d.rstrip("/")) for d in tf.io.gfile.listdir(export_base)
                  if d.rstrip("/").isdigit())


def next_version(export_base: str) -> int:
    """One more than the newest version in ``export_base`` (1 for a new base)."""
    versions = existing_versions(export_base)
    return versions[-1] + 1 if versions else 1


def _label_table(labels_path: str) -> tf.lookup.StaticHashTable:
    init = tf.lookup.TextFileInitializer(
        labels_path, key_dtype=tf.int64, key_index=tf.lookup.TextFileIndex.LINE_NUMBER,
        value_dtype=tf.string, value_index=tf.lookup.TextFileIndex.WHOLE_LINE)
    return tf.lookup.StaticHashTable(init, default_value="")


def build_archive(model: keras.Model, config: ServingConfig, labels_path: str) -> keras.export.ExportArchive:
    """An ``ExportArchive`` with the three serving signatures (not yet written)."""
    table = _label_table(labels_path)
    functions = ServingFunctions(model, config, class_name_lookup=table.lookup)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(table)
    archive.add_endpoint("serving_default", functions.from_image_bytes,
                         input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    archive.add_endpoint("serving_image_tensor", functions.from_image_tensor,
                         input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8,
                                                        name="images")])
    archive.add_endpoint("serving_tf_example", functions.from_tf_example,
                         input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    return archive


def version_exported_from(export_base: str, source: str) -> str | None:
    """The newest version directory under ``export_base`` that was exported from ``source``
    (the checkpoint recorded in its ``serving_config.json``), or None."""
    for version in reversed(existing_versions(export_base)):
        path = os.path.join(export_base, str(version), "assets.extra", CONFIG_FILENAME)
        try:
            with tf.io.gfile.GFile(path) as f:
                recorded = json.load(f).get("source")
        except (OSError, ValueError, tf.errors.NotFoundError):
            continue
        if recorded and os.path.abspath(recorded) == os.path.abspath(source):
            return os.path.join(export_base, str(version))
    return None


def export_saved_model(model: keras.Model, config: ServingConfig, export_base: str,
                       version: int | None = None, overwrite: bool = False,
                       source: str | None = None) -> str:
    """Writes ``export_base/<version>/`` for TF Serving and returns that path.

    The version is written to a hidden temporary directory first and renamed into place, so a
    model server watching ``export_base`` never sees a half-written version.

    Args:
      model: Built Keras model, normalised images → logits, weights already restored.
      config: Task, preprocessing and outputs (see :class:`ServingConfig`).
      export_base: The model base path TF Serving is pointed at (``--model_base_path``).
      version: Integer version (default: :func:`next_version`).
      overwrite: Replace an existing ``version`` directory instead of failing.
      source: The checkpoint or weights file the model came from, recorded in
        ``serving_config.json`` (see :func:`version_exported_from`).
    """
    if not isinstance(model, keras.Model) or not model.built:
        raise ValueError(f"`model` must be a built keras.Model. Received: {type(model).__name__}")
    out_classes = model.output_shape[-1] if hasattr(model, "output_shape") else None
    if out_classes is not None and out_classes != config.num_classes:
        raise ValueError(f"The model has {out_classes} outputs but {config.num_classes} class "
                         "names were given: export with the experiment the model was trained with.")
    if version is None:
        version = next_version(export_base)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise ValueError(f"`version` must be a non-negative integer (TF Serving loads numeric "
                         f"sub-directories). Received: version={version!r}")
    target = os.path.join(export_base, str(version))
    if tf.io.gfile.exists(target):
        if not overwrite:
            raise FileExistsError(
                f"{target!r} already exists. Pick another --version, leave it out to write "
                f"version {next_version(export_base)}, or pass --overwrite.")
    tf.io.gfile.makedirs(export_base)
    tmp = os.path.join(export_base, f".tmp-{version}-{uuid.uuid4().hex[:8]}")
    with tempfile.TemporaryDirectory() as label_dir:
        labels_path = os.path.join(label_dir, LABELS_FILENAME)
        with open(labels_path, "w", encoding="utf-8") as f:
            f.write("\n".join(config.class_names) + "\n")
        logging.info("Tracing the serving signatures %s ...", ", ".join(SIGNATURES))
        archive = build_archive(model, config, labels_path)
        logging.info("Writing the SavedModel to %s", target)
        try:
            archive.write_out(tmp, verbose=False)
            extra = os.path.join(tmp, "assets.extra")
            tf.io.gfile.makedirs(extra)
            with tf.io.gfile.GFile(os.path.join(extra, CONFIG_FILENAME), "w") as f:
                sidecar = {"model": model.name, **config.to_json_dict()}
                if source:
                    sidecar["source"] = os.path.abspath(source)
                json.dump(sidecar, f, indent=2)
            if tf.io.gfile.exists(target):
                tf.io.gfile.rmtree(target)
            tf.io.gfile.rename(tmp, target)
        finally:
            if tf.io.gfile.exists(tmp):
                shutil.rmtree(tmp, ignore_errors=True)
    return target
