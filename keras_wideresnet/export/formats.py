"""Other export formats through ``keras.Model.export``: LiteRT and ONNX.

These carry the bare network (normalised float32 images → logits); decoding, resizing and
un-padding stay on the client, described by the ``serving_config.json`` written beside the
model (the same settings the SavedModel bakes in). LiteRT needs nothing beyond TensorFlow
(its converter ships in TF 2.21); ONNX needs ``tf2onnx`` and ``onnx`` (see docs/serving.md).
"""

from __future__ import annotations

import json
import os

import keras
import tensorflow as tf

from keras_wideresnet._extras import require
from keras_wideresnet.export.config import ServingConfig

FORMATS = ("saved_model", "litert", "onnx")


def fixed_input_shape(model: keras.Model, config: ServingConfig) -> tuple[int, int, int, int]:
    """The ``[1, H, W, 3]`` input a fixed-shape runtime gets: the classification crop, or the
    square segmentation canvas (``image_size`` rounded up to ``pad_multiple``)."""
    side = config.input_side
    h, w = model.input_shape[1:3]
    if (h is not None and h != side) or (w is not None and w != side):
        raise ValueError(f"The model's input shape {model.input_shape} does not match the eval "
                         f"size {side}: build the model with input_shape=(None, None, 3).")
    return (1, side, side, 3)


def _write_sidecars(config: ServingConfig, export_dir: str, input_shape, model_file: str) -> None:
    with open(os.path.join(export_dir, "labels.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(config.class_names) + "\n")
    meta = dict(config.to_json_dict(), model_file=model_file, input_shape=list(input_shape),
                input="float32 images normalised with keras_wideresnet.applications."
                      "preprocess_input; segmentation: image top-left on a zero canvas",
                output="logits (apply softmax); segmentation logits at output stride 8")
    with open(os.path.join(export_dir, "serving_config.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2)


def _prepare_dir(export_dir: str, filename: str, overwrite: bool) -> str:
    path = os.path.join(export_dir, filename)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path!r} already exists. Choose another --export_dir or pass "
                              "--overwrite.")
    os.makedirs(export_dir, exist_ok=True)
    return path


def export_litert(model: keras.Model, config: ServingConfig, export_dir: str,
                  overwrite: bool = False) -> str:
    """Writes ``export_dir/model.tflite`` (fixed ``[1, S, S, 3]`` input) plus sidecars."""
    shape = fixed_input_shape(model, config)
    path = _prepare_dir(export_dir, "model.tflite", overwrite)
    model.export(path, format="litert", verbose=False,
                 input_signature=[keras.InputSpec(shape=shape, dtype="float32")])
    _write_sidecars(config, export_dir, shape, "model.tflite")
    return path


def export_onnx(model: keras.Model, config: ServingConfig, export_dir: str,
                overwrite: bool = False) -> str:
    """Writes ``export_dir/model.onnx`` (dynamic batch and, where the model allows, size)."""
    require("onnx", "onnx", "--format onnx")
    require("tf2onnx", "onnx", "--format onnx")
    shape = (None,) + tuple(model.input_shape[1:])
    path = _prepare_dir(export_dir, "model.onnx", overwrite)
    model.export(path, format="onnx", verbose=False,
                 input_signature=[keras.InputSpec(shape=shape, dtype="float32")])
    _write_sidecars(config, export_dir, shape, "model.onnx")
    return path


def run_litert(path: str, images) -> "tf.Tensor":
    """Runs a ``model.tflite`` on a float32 batch of its input shape (for checks and tests)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter deprecation notice
        interpreter = tf.lite.Interpreter(model_path=path)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.set_tensor(inp["index"], images)
    interpreter.invoke()
    return interpreter.get_tensor(out["index"])
