"""`keras.applications`-style constructors for the wide ResNet family.

``ResNet38`` is Model A of "Wider or Deeper: Revisiting the ResNet Model for Visual
Recognition" (Wu, Shen, van den Hengel; arXiv:1611.10080); ``variant="a1"`` / ``"a2"`` select
its strided-conv variants. ``ResNet38Segmenter`` is the atrous FCN of
docs/architecture.md §3–§4 (output stride 8 or 16, "2 conv." head).
"""

from __future__ import annotations

import functools
import json
import os
import re
import warnings
from typing import Any, Sequence

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


def load_weights(model: keras.Model, path: str, skip: Sequence[keras.layers.Layer] = ()) -> None:
    """Loads a ``.weights.h5`` file (e.g. from ``keras-wideresnet-convert-weights``) into ``model``.

    Strict for every layer but those in ``skip`` (e.g. a new head): a file of another variant,
    width or depth raises, instead of leaving layers at their initialization with a warning.
    """
    failure = None
    with warnings.catch_warnings(record=True) as caught:  # Keras' per-layer noise before a failure
        try:
            model.load_weights(path, objects_to_skip=list(skip) or None)
        except Exception as e:  # noqa: BLE001 - re-raised below with what to do
            failure = str(e)
    if failure is not None:
        raise ValueError(
            f"Could not load weights from {path!r} into {'the backbone of ' if skip else ''}model "
            f"{model.name!r}: {_load_failure_summary(failure)}. The file must come from the same "
            "architecture (variant, width, depth, classes, include_top); convert ademxapp files "
            "with keras-wideresnet-convert-weights using the matching --model.")
    for w in caught:  # a successful load keeps Keras' warnings
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _load_failure_summary(message: str) -> str:
    """The gist of Keras' weight-loading error, which prints whole tensors: how many layers
    failed, and the first of them with its two shapes."""
    count = re.search(r"A total of (\d+) objects could not be loaded", message)
    layer = re.search(r"for object <\w+ name=([\w/.-]+)", message)
    shapes = re.search(r"variable\.shape=(\([^)]*\)), Received: value\.shape=(\([^)]*\))", message)
    parts = [f"{count.group(1)} layers could not be loaded" if count else message.splitlines()[0][:300]]
    if layer:
        parts.append(f"first: {layer.group(1)}" + (f", model {shapes.group(1)} vs file {shapes.group(2)}"
                                                     if shapes else ""))
    return "; ".join(parts)


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
