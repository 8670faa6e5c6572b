"""`keras.applications`-style constructors for the wide ResNet family.

``ResNet38`` is Model A of "Wider or Deeper: Revisiting the ResNet Model for Visual
Recognition" (Wu, Shen, van den Hengel; arXiv:1611.10080); ``variant="a1"`` / ``"a2"`` select
its strided-conv variants. ``ResNet38Segmenter`` is the atrous FCN of
docs/architecture.md §3–§4 (output stride 8 or 16, "2 conv." head).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import tempfile
import warnings
from typing import Any, Sequence

import h5py
import keras
import numpy as np

# IMAGENET_MEAN/STD: the input normalisation of the released 'rna' nets (RGB, x / 255, then
# mean / std), shared with the data pipelines and the serving graph.
from keras_wideresnet.constants import IMAGENET_MEAN, IMAGENET_STD
from keras_wideresnet.models.backbone import build_features
from keras_wideresnet.models.segmentation import ResizeLike, segmentation_head
from keras_wideresnet.models.spec import FamilySpec, get_spec
VARIANTS = ("a", "a1", "a2")
POOLING_MODES = (None, "avg", "max")

_CONVERT_HINT = (
    "No pretrained weights are downloaded by this package. Convert the released ademxapp "
    "MXNet weights once with `keras-wideresnet-convert-weights --input FILE.params "
    "--model resnet38_a1 --output resnet38_a1.weights.h5` (see README, 'Pretrained weights') "
    "and pass `weights='resnet38_a1.weights.h5'`.")


class WeightsFileNotFoundError(FileNotFoundError, ValueError):
    """``weights`` names a file that does not exist (a ``ValueError`` too, as in
    ``keras.applications``)."""


def _check_weights(weights: str | None) -> None:
    if weights is None:
        return
    if weights == "imagenet":
        raise ValueError(f"weights='imagenet' is not available offline. {_CONVERT_HINT} "
                         f"Received: weights={weights!r}")
    if isinstance(weights, (str, os.PathLike)) and not os.path.exists(weights):
        raise WeightsFileNotFoundError(
            f"Weights file {os.fspath(weights)!r} does not exist. {_CONVERT_HINT} "
            f"Received: weights={weights!r}")
    if not isinstance(weights, (str, os.PathLike)):
        raise ValueError("The `weights` argument should be either `None` (random initialization) "
                         f"or the path to a weights file to be loaded. {_CONVERT_HINT} "
                         f"Received: weights={weights!r}")


def _input_layer(input_tensor, input_shape: Sequence[int | None] | None, default_shape):
    """Mirrors keras.applications: a Keras tensor is used as is, anything else is wrapped."""
    if input_shape is None:
        input_shape = default_shape
    input_shape = tuple(input_shape)
    if len(input_shape) != 3:
        raise ValueError("`input_shape` must be a tuple of three integers (height, width, "
                         f"channels), channels last. Received: input_shape={input_shape}")
    for size in input_shape[:2]:
        if size is not None and size < 32:
            raise ValueError("Input size must be at least 32x32; Received: "
                             f"input_shape={input_shape}")
    if input_shape[2] is None or input_shape[2] < 1:
        raise ValueError(f"The number of channels must be known. Received: input_shape={input_shape}")
    if input_tensor is None:
        return keras.Input(shape=input_shape, name="image"), None
    if not keras.backend.is_keras_tensor(input_tensor):
        return keras.Input(tensor=input_tensor, shape=input_shape, name="image"), input_tensor
    return input_tensor, input_tensor


def _source_inputs(img_input, input_tensor):
    if input_tensor is None:
        return img_input
    return keras.utils.get_source_inputs(input_tensor)


def _family(depth: int, variant: str, width_multiplier: float,
            pool_padding: str | None) -> FamilySpec:
    if variant not in VARIANTS:
        raise ValueError(f"`variant` must be one of {VARIANTS}. Received: variant={variant!r}")
    spec = get_spec(f"resnet{depth}_{variant}").scaled(width_multiplier)
    if pool_padding is not None:
        spec = spec.replace(pool_padding=pool_padding)
    return spec


def WideResNet(spec: FamilySpec | str, include_top: bool = True, weights: str | None = None,
               input_tensor=None, input_shape=None, pooling: str | None = None,
               classes: int = 1000, classifier_activation: str | None = "softmax",
               name: str | None = None, output_stride: int | None = None,
               bn_mode: str = "train", sync_bn: bool = False,
               recompute: bool | Sequence[int] = False) -> keras.Model:
    """Classification model for any :class:`FamilySpec` (the private builder of ResNet38 &c.).

    The top is ``bn7 → relu7 → global average pool → linear{classes}``.
    """
    spec = get_spec(spec)
    _check_weights(weights)
    if pooling not in POOLING_MODES:
        raise ValueError(f"`pooling` must be one of {POOLING_MODES}. Received: pooling={pooling!r}")
    if include_top and (not isinstance(classes, int) or classes < 1):
        raise ValueError(f"`classes` must be a positive integer. Received: classes={classes!r}")
    default_shape = (224, 224, 3) if include_top else (None, None, 3)
    img_input, input_tensor = _input_layer(input_tensor, input_shape, default_shape)

    endpoints = build_features(img_input, spec, output_stride=output_stride, bn_mode=bn_mode,
                               sync_bn=sync_bn, recompute=recompute)
    x = endpoints["features"]
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="pool7")(x)
        x = keras.layers.Dense(classes, activation=classifier_activation, name=f"linear{classes}",
                               dtype="float32")(x)
    elif pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name="pool7")(x)
    elif pooling == "max":
        x = keras.layers.GlobalMaxPooling2D(name="pool7")(x)

    model = keras.Model(_source_inputs(img_input, input_tensor), x, name=name or spec.name)
    if weights is not None:
        load_weights(model, weights)
    return model


def load_weights(model: keras.Model, path: str | os.PathLike,
                 skip: Sequence[keras.layers.Layer] = ()) -> None:
    """Loads a ``.weights.h5`` file (e.g. from ``keras-wideresnet-convert-weights``) into ``model``.

    Strict for every layer but those in ``skip`` (e.g. a new head): a file of another variant,
    width or depth raises, instead of leaving layers at their initialization with a warning.

    The check runs before anything is assigned. Keras writes a ``.weights.h5`` file as one
    HDF5 dataset per variable, ``<object path>/vars/<i>``, where the object path is built from
    class names (``layers/pre_act_residual_unit_3/named_sublayers/conv2d/vars/0``) and each
    ``vars`` group keeps the layer's name as its ``name`` attribute. The table the model
    expects is therefore the one Keras writes for it:
    the model is saved to a temporary file with ``objects_to_skip=skip``, so skipped layers are
    left out exactly as ``model.load_weights(objects_to_skip=...)`` leaves them out. Both files
    are walked with h5py and compared dataset by dataset on the layer state (the ``layers``
    group and the model's own ``vars``; optimizer state, which Keras loads leniently, is not
    compared). A variable missing from the file, one of another shape, and one the file has
    in addition all count. With ``skip``, the file may hold whole top-level layers that the
    loaded part of the model lacks (its own head, e.g. a classifier's ``linear1000`` under a
    segmenter's backbone); inside a layer that is loaded, every variable must match.

    Raises:
      WeightsFileNotFoundError: ``path`` does not exist.
      ValueError: ``path`` is not a Keras 3 ``.weights.h5`` file, or its variables differ from
        the model's; the message names the first differing layer and both shapes, and the model
        is left untouched.
    """
    path = os.fspath(path)
    file_table = _read_weights_file(path)
    with tempfile.TemporaryDirectory(prefix="kwr_expected_weights_") as tmp:
        expected = os.path.join(tmp, "model.weights.h5")
        keras.saving.save_weights(model, expected, objects_to_skip=list(skip) or None)
        model_table = _weights_table(expected)
    differences = _differences(model, model_table, file_table, partial=bool(skip))
    if differences:
        raise ValueError(
            f"Could not load weights from {path!r} into {'the backbone of ' if skip else ''}model "
            f"{model.name!r}: {_summary(differences)}. The file must come from the same "
            "architecture (variant, width, depth, classes, include_top); convert ademxapp files "
            "with keras-wideresnet-convert-weights using the matching --model.")
    with warnings.catch_warnings(record=True) as caught:  # re-emitted once the load succeeded
        model.load_weights(path, objects_to_skip=list(skip) or None)
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


@dataclasses.dataclass(frozen=True)
class _WeightsTable:
    """The layer state of a ``.weights.h5`` file: each variable's shape and ``vars`` group, and
    each ``vars`` group's layer name (``None`` where the file keeps none)."""

    shapes: dict[str, tuple[int, ...]]  # "layers/conv2d/vars/0" -> (3, 3, 3, 64)
    groups: dict[str, str]  # "layers/conv2d/vars/0" -> "layers/conv2d/vars"
    names: dict[str, str | None]  # "layers/conv2d/vars" -> "conv1a"


def _is_layer_state(h5_path: str) -> bool:
    return h5_path.startswith("layers/") or h5_path == "vars" or h5_path.startswith("vars/")


def _weights_table(path: str) -> _WeightsTable:
    """Walks a Keras 3 ``.weights.h5`` file with h5py (datasets ``<object path>/vars/<i>``)."""
    table = _WeightsTable({}, {}, {})

    def visit(name: str, obj: Any) -> None:
        if not _is_layer_state(name):
            return
        if isinstance(obj, h5py.Group) and (name == "vars" or name.endswith("/vars")):
            layer_name = obj.attrs.get("name")
            table.names[name] = None if layer_name is None else str(layer_name)
        elif isinstance(obj, h5py.Dataset):
            table.shapes[name] = tuple(int(d) for d in obj.shape)
            table.groups[name] = name.rsplit("/", 1)[0]

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return table


def _read_weights_file(path: str) -> _WeightsTable:
    """The table of ``path``, after checking that it is a Keras 3 weights file."""
    if not os.path.exists(path):
        raise WeightsFileNotFoundError(f"Weights file {path!r} does not exist. {_CONVERT_HINT}")
    if not path.endswith(".weights.h5") or not h5py.is_hdf5(path):
        raise ValueError(
            f"{path!r} is not a Keras 3 weights file: expected HDF5 written by "
            "`model.save_weights('NAME.weights.h5')` (the name must end in '.weights.h5'). "
            f"{_CONVERT_HINT}")
    table = _weights_table(path)
    if not table.shapes:
        raise ValueError(
            f"{path!r} holds no Keras 3 layer weights (no 'layers/.../vars' datasets): a legacy "
            f"Keras 2 .h5 file, or not a weights file. {_CONVERT_HINT}")
    return table


@dataclasses.dataclass(frozen=True)
class _Difference:
    h5_path: str
    layer: str  # the Keras layer name, or the h5 path where the file keeps none
    model_shape: tuple[int, ...] | None  # None: not in the model
    file_shape: tuple[int, ...] | None  # None: not in the file


def _top_level(h5_path: str) -> str:
    """``layers/<object>`` of a model layer's path; ``""`` for the model's own ``vars``."""
    parts = h5_path.split("/")
    return "/".join(parts[:2]) if parts[0] == "layers" else ""


def _differences(model: keras.Model, expected: _WeightsTable, found: _WeightsTable,
                 partial: bool) -> list[_Difference]:
    """Every variable whose shape differs, or that only one side has, in the model's layer
    order (then by h5 path). With ``partial``, whole top-level layers of the file that the
    model's table lacks are not counted (see :func:`load_weights`)."""
    def layer_of(table: _WeightsTable, h5_path: str) -> str:
        return table.names.get(table.groups[h5_path]) or h5_path

    out = []
    for h5_path, shape in expected.shapes.items():
        file_shape = found.shapes.get(h5_path)
        if file_shape != shape:
            out.append(_Difference(h5_path, layer_of(expected, h5_path), shape, file_shape))
    loaded_layers = {_top_level(g) for g in expected.names}
    for h5_path, shape in found.shapes.items():
        if h5_path in expected.shapes or (partial and _top_level(h5_path) not in loaded_layers):
            continue
        out.append(_Difference(h5_path, layer_of(found, h5_path), None, shape))

    position = {layer.name: i for i, layer in enumerate(model.layers)}
    order = {"": -1}  # the model's own variables first, then its layers in order
    for group, name in expected.names.items():
        if group.count("/") == 2 and group.startswith("layers/"):  # layers/<object>/vars
            order[_top_level(group)] = position.get(name, len(position))
    last = len(position)
    return sorted(out, key=lambda d: (order.get(_top_level(d.h5_path), last), d.h5_path))


def _summary(differences: list[_Difference]) -> str:
    """``N variables differ: M layers could not be loaded; first: NAME, model (…) vs file (…)``."""
    def shape(s: tuple[int, ...] | None) -> str:
        return "(absent)" if s is None else str(s)

    n = len(differences)
    layers = len({d.h5_path.rsplit("/", 1)[0] for d in differences})
    first = differences[0]
    return (f"{n} variable{'s differ' if n != 1 else ' differs'}: {layers} "
            f"layer{'s' if layers != 1 else ''} could not be loaded; first: {first.layer}, "
            f"model {shape(first.model_shape)} vs file {shape(first.file_shape)}")


_DOC = """Instantiates {title} (paper: "Wider or Deeper: Revisiting the ResNet Model for Visual
    Recognition", Wu, Shen, van den Hengel, arXiv:1611.10080).

    Behaves like ``keras.applications.ResNet50V2``; inputs are RGB in [0, 255] passed through
    :func:`preprocess_input`.

    Args:
      include_top: Whether to include the ``bn7 → pool7 → linear{{classes}}`` classifier.
      weights: ``None`` (random init) or the path to a weights file converted with
        ``keras-wideresnet-convert-weights``. ``"imagenet"`` raises an error explaining the conversion.
      input_tensor: Optional Keras tensor to use as image input.
      input_shape: Optional ``(H, W, C)``; any size ≥ 32 (``None`` allowed) and any channels.
      pooling: ``None``, ``"avg"`` or ``"max"`` when ``include_top=False``.
      classes: Number of classes (with ``include_top``).
      classifier_activation: Activation of the top layer (``None`` returns logits).
      name: Model name.
      variant: ``"a"`` (max-pool downsampling), ``"a1"`` (strided convs) or ``"a2"``.
      width_multiplier: Scales every width (small variants, tests).
      output_stride: 32 (default), 16 or 8; removed strides become dilation.
      pool_padding: ``"pad1"`` or ``"caffe"`` (pad 0, used to test the released Model A).
      bn_mode: ``"train"``, ``"frozen_stats"`` or ``"frozen"``.
      sync_bn: Synchronized BN across replicas.
      recompute: ``True`` or block levels whose activations are recomputed (saves memory).

    Returns:
      A ``keras.Model``.
    """


def _application(depth: int, default_name: str):
    def constructor(include_top: bool = True, weights: str | None = None, input_tensor=None,
                    input_shape=None, pooling: str | None = None, classes: int = 1000,
                    classifier_activation: str | None = "softmax", name: str = default_name,
                    variant: str = "a", width_multiplier: float = 1.0,
                    output_stride: int | None = None, pool_padding: str | None = None,
                    bn_mode: str = "train", sync_bn: bool = False,
                    recompute: bool | Sequence[int] = False) -> keras.Model:
        spec = _family(depth, variant, width_multiplier, pool_padding)
        return WideResNet(spec, include_top=include_top, weights=weights,
                          input_tensor=input_tensor, input_shape=input_shape, pooling=pooling,
                          classes=classes, classifier_activation=classifier_activation,
                          name=name, output_stride=output_stride, bn_mode=bn_mode,
                          sync_bn=sync_bn, recompute=recompute)

    constructor.__name__ = f"ResNet{depth}"
    constructor.__qualname__ = constructor.__name__
    constructor.__doc__ = _DOC.format(title=f"the {depth}-layer wide pre-activation ResNet")
    return constructor


ResNet38 = _application(38, "resnet38")
ResNet20 = _application(20, "resnet20")
ResNet16 = _application(16, "resnet16")


def ResNet38Segmenter(num_classes: int, output_stride: int = 8, variant: str = "a1",
                      weights: str | None = None, input_tensor=None,
                      input_shape=(None, None, 3), dropout: Sequence[float] = (0.3, 0.5),
                      head_filters: int = 512, head_dilation: int | None = None,
                      head_convs: int = 2, upsample_logits: bool = False,
                      width_multiplier: float = 1.0, depth: int = 38,
                      bn_mode: str = "train", sync_bn: bool = False,
                      recompute: bool | Sequence[int] = False,
                      name: str | None = None) -> keras.Model:
    """The atrous FCN of the paper's §5: an OS-8 (or OS-16) backbone plus the "2 conv." head.

    Args:
      num_classes: Output classes C (head layer ``linear{C}``), e.g. 21 for VOC.
      output_stride: 8 (the released models) or 16.
      variant: Backbone variant, ``"a1"`` (released models) or ``"a2"``/``"a"``.
      weights: ``None`` or a path to converted weights (``keras-wideresnet-convert-weights``).
      input_tensor, input_shape: As in keras.applications; any spatial size is allowed.
      dropout: Drop probabilities before the last conv of B6 and B7 (0.3, 0.5).
      head_filters: Width of ``conv6a`` (512).
      head_dilation: Dilation of the head convs; default 12 at OS 8, 6 at OS 16.
      head_convs: 2 ("2 conv.") or 1.
      upsample_logits: Return logits bilinearly resized to the input size.
      width_multiplier, depth, bn_mode, sync_bn, recompute: As for :func:`ResNet38`.

    Returns:
      A ``keras.Model`` mapping images to float32 logits ``[B, H/OS, W/OS, C]`` (or
      ``[B, H, W, C]`` with ``upsample_logits``).
    """
    _check_weights(weights)
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"`num_classes` must be a positive integer. Received: {num_classes!r}")
    if output_stride not in (8, 16, 32):
        raise ValueError(f"`output_stride` must be 8, 16 or 32. Received: {output_stride}")
    if len(dropout) != 2:
        raise ValueError(f"`dropout` gives the rates of B6 and B7. Received: dropout={dropout}")
    spec = _family(depth, variant, width_multiplier, None)
    spec = spec.with_dropout({spec.blocks[-2].level: dropout[0], spec.blocks[-1].level: dropout[1]})
    if head_dilation is None:
        head_dilation = 12 * 8 // output_stride if output_stride <= 16 else 1
    img_input, input_tensor = _input_layer(input_tensor, input_shape, (None, None, 3))
    endpoints = build_features(img_input, spec, output_stride=output_stride, bn_mode=bn_mode,
                               sync_bn=sync_bn, recompute=recompute)
    logits = segmentation_head(endpoints["features"], num_classes,
                               head_filters=max(1, int(round(head_filters * width_multiplier))),
                               dilation=head_dilation, num_convs=head_convs)
    if upsample_logits:
        logits = ResizeLike(name="upsample_logits", dtype="float32")(logits, img_input)
    model = keras.Model(_source_inputs(img_input, input_tensor), logits,
                        name=name or f"{spec.name}_os{output_stride}_seg{num_classes}")
    if weights is not None:
        load_weights(model, weights)
    return model


def preprocess_input(x, data_format: str | None = None):
    """RGB in [0, 255] → ``(x / 255 - mean) / std`` with ImageNet mean/std.

    Works on NumPy arrays and backend tensors; channels last.
    """
    if data_format not in (None, "channels_last"):
        raise ValueError("Only channels_last is supported. Received: "
                         f"data_format={data_format!r}")
    mean = np.asarray(IMAGENET_MEAN, dtype="float32")
    std = np.asarray(IMAGENET_STD, dtype="float32")
    if isinstance(x, np.ndarray):
        return ((x.astype("float32") / 255.0) - mean) / std
    x = keras.ops.cast(x, "float32")
    return (x / 255.0 - mean) / std


@functools.lru_cache(maxsize=1)
def _class_index() -> dict[str, list[str]]:
    path = os.path.join(os.path.dirname(__file__), "resources", "imagenet_class_index.json")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def decode_predictions(preds, top: int = 5) -> list[list[tuple[str, str, float]]]:
    """Like ``keras.applications.imagenet_utils.decode_predictions``, offline.

    Returns, per sample, ``top`` tuples ``(synset, class_name, score)``.
    """
    preds = np.asarray(preds)
    if preds.ndim != 2 or preds.shape[1] != 1000:
        raise ValueError("`decode_predictions` expects a batch of predictions (i.e. a 2D array "
                         f"of shape (samples, 1000)). Received array with shape: {preds.shape}")
    index = _class_index()
    results = []
    for pred in preds:
        top_ids = pred.argsort()[-top:][::-1]
        results.append([tuple(index[str(i)]) + (float(pred[i]),) for i in top_ids])
    return results


__all__ = ["ResNet16", "ResNet20", "ResNet38", "ResNet38Segmenter", "WideResNet",
           "decode_predictions", "load_weights", "preprocess_input"]
