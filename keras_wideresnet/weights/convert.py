"""Converts the released ademxapp MXNet weights into a Keras model (docs/architecture.md §5).

* :func:`convert` fills an existing model from a ``.params`` file (or an already read dict):
  every array must be used exactly once and every shape must match, else a ``ValueError``
  lists all offending names.
* :func:`load_ademxapp` builds the matching model (classifier or OS-8 segmenter, from the
  arrays and the release file name) and converts into it.
"""

from __future__ import annotations

import dataclasses
import os
import re
import warnings
from typing import Any, Mapping, Sequence

import keras
import numpy as np

from keras_wideresnet import applications
from keras_wideresnet.weights.checksums import ReleaseName, parse_release_name, verify_md5
from keras_wideresnet.weights.mxnet_params import read_params, split_key
from keras_wideresnet.weights.naming import ARG, AUX, ademxapp_targets

_DETAILED = 10  # shape mismatches shown with their shapes; the rest by name
RELEASED_MODELS = {"resnet38_a": "a", "resnet38_a1": "a1"}  # --model → variant
_HEAD_RE = re.compile(r"^linear(\d+)_weight$")
_MODEL_HINT = ("Check that the model matches the file: variant (resnet38_a / resnet38_a1), "
               "classifier vs. segmenter (conv6a + linear{C}), number of classes and "
               "width_multiplier (1.0 for the released files).")


@dataclasses.dataclass(frozen=True)
class ConversionReport:
    """What :func:`convert` did."""

    source: str
    num_arrays: int
    md5: str | None  # the verified published md5, None when the file name is not a known release


def _normalise(params: Mapping[str, Any], source: str) -> dict[str, tuple[str, np.ndarray]]:
    """``{"arg:x": a}`` → ``{"x": ("arg", a)}``; checks prefixes, duplicates and empty arrays."""
    out: dict[str, tuple[str, np.ndarray]] = {}
    bad_prefix, duplicates, empty = [], [], []
    for key, array in params.items():
        kind, name = split_key(key)
        if kind not in (ARG, AUX, ""):
            bad_prefix.append(key)
            continue
        if array is None:
            empty.append(key)
            continue
        if name in out:
            duplicates.append(name)
            continue
        out[name] = (kind, np.asarray(array))
    problems = []
    if bad_prefix:
        problems.append(f"keys with a prefix other than 'arg:'/'aux:': {sorted(bad_prefix)}")
    if duplicates:
        problems.append(f"names stored twice (as arg: and aux:): {sorted(duplicates)}")
    if empty:
        problems.append(f"empty arrays: {sorted(empty)}")
    if problems:
        raise ValueError(f"Cannot convert {source}: " + "; ".join(problems) + ".")
    return out


def _read(params: str | os.PathLike | Mapping[str, Any], check_md5: bool
          ) -> tuple[Mapping[str, Any], str, str | None]:
    if isinstance(params, Mapping):
        return params, "<dict of arrays>", None
    path = os.fspath(params)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"MXNet params file {path!r} does not exist. Download it from the "
                                "links in docs/weights.md and pass its path.")
    md5 = verify_md5(path) if check_md5 else None
    return read_params(path), repr(path), md5


def convert(params: str | os.PathLike | Mapping[str, Any], model: keras.Model, *,
            check_md5: bool = True, verbose: bool = False) -> ConversionReport:
    """Loads ademxapp weights into ``model`` (docs/architecture.md §5.2).

    Args:
      params: Path to an MXNet ``.params`` file, or a dict ``{"arg:name" | "aux:name" | "name":
        array}`` in MXNet layouts (e.g. from :func:`read_params`).
      model: A built Keras model from :mod:`keras_wideresnet.applications` whose layer names
        follow ademxapp (``conv1a``, ``res2a`` units, ``bn7``, ``linear{C}``, ``conv6a``).
      check_md5: Verify known release files against their published md5 (docs/architecture.md §5.4).
      verbose: Show a progress bar while assigning.

    Returns:
      A :class:`ConversionReport`.

    Raises:
      ValueError: listing every missing, unused, wrongly prefixed or mis-shaped array; the
        model is left untouched in that case.
    """
    raw, source, md5 = _read(params, check_md5)
    num_arrays = _assign(raw, model, source, verbose)
    return ConversionReport(source=source, num_arrays=num_arrays, md5=md5)


def _assign(raw: Mapping[str, Any], model: keras.Model, source: str, verbose: bool) -> int:
    """Checks everything first, then assigns; returns the number of arrays used."""
    arrays = _normalise(raw, source)
    targets = ademxapp_targets(model)

    missing = sorted(set(targets) - set(arrays))
    unused = sorted(set(arrays) - set(targets))
    wrong_kind, wrong_shape, not_finite = [], [], []
    for name in sorted(set(targets) & set(arrays)):
        target, (kind, array) = targets[name], arrays[name]
        if kind and kind != target.kind:
            wrong_kind.append(f"{kind}:{name} (expected {target.kind}:)")
        if tuple(array.shape) != target.mxnet_shape():
            wrong_shape.append((name, tuple(array.shape), target.mxnet_shape()))
        elif not np.all(np.isfinite(array)):
            not_finite.append(name)
    problems = []
    if missing:
        problems.append(f"{len(missing)} model parameters missing from the file: {missing}")
    if unused:
        problems.append(f"{len(unused)} arrays in the file not used by the model: {unused}")
    if wrong_shape:
        shown = [f"{n} {f} vs. {m}" for n, f, m in wrong_shape[:_DETAILED]]
        rest = [n for n, _, _ in wrong_shape[_DETAILED:]]
        problems.append(f"{len(wrong_shape)} shape mismatches (file vs. model, MXNet layout): "
                        + ", ".join(shown) + (f", and {rest}" if rest else ""))
        hint = _width_hint(arrays, targets)
        if hint:
            problems.append(hint)
    if wrong_kind:
        problems.append(f"{len(wrong_kind)} arrays with the wrong arg:/aux: prefix: {wrong_kind}")
    if not_finite:
        problems.append(f"{len(not_finite)} arrays with NaN/Inf (corrupt file?): {not_finite}")
    if problems:
        raise ValueError(f"Cannot convert {source} into model {model.name!r}:\n  - "
                         + "\n  - ".join(problems) + f"\n{_MODEL_HINT}")

    progbar = keras.utils.Progbar(len(targets), unit_name="array") if verbose else None
    for i, (name, target) in enumerate(sorted(targets.items()), start=1):
        value = target.to_keras(arrays[name][1])
        dtype = keras.backend.standardize_dtype(target.variable.dtype)
        target.variable.assign(value.astype(dtype))
        if progbar is not None:
            progbar.update(i)
    return len(targets)


def _width_hint(arrays, targets) -> str | None:
    """Guesses the width multiplier of a file from ``conv1a`` (64 filters at 1.0)."""
    if "conv1a_weight" not in arrays or "conv1a_weight" not in targets:
        return None
    in_file = arrays["conv1a_weight"][1].shape[0]
    in_model = targets["conv1a_weight"].mxnet_shape()[0]
    if in_file == in_model:
        return None
    return (f"conv1a has {in_file} filters in the file but {in_model} in the model: the file "
            f"looks like width_multiplier={in_file / 64:g} (the model has about "
            f"{in_model / 64:g}).")


def head_of(params: Mapping[str, Any]) -> tuple[str, int]:
    """``("classifier" | "segmenter", C)`` from the arrays: ``linear{C}`` plus ``conv6a``."""
    names = {split_key(k)[1] for k in params}
    classes = sorted(int(m.group(1)) for n in names if (m := _HEAD_RE.match(n)))
    if len(classes) != 1:
        raise ValueError("Expected exactly one classifier array 'linear{C}_weight' in the file "
                         f"(docs/architecture.md §5.2); found {['linear%d_weight' % c for c in classes]}. Is "
                         "this an ademxapp ResNet-38 file?")
    return ("segmenter" if "conv6a_weight" in names else "classifier"), classes[0]


def load_ademxapp(params_path: str | os.PathLike, *, variant: str | None = None,
                  num_classes: int | None = None, output_stride: int | None = None,
                  width_multiplier: float = 1.0,
                  input_shape: Sequence[int | None] | None = (None, None, 3),
                  pool_padding: str | None = None, classifier_activation: str | None = "softmax",
                  check_md5: bool = True, verbose: bool = False, **model_kwargs: Any
                  ) -> keras.Model:
    """Builds the Keras model that matches an ademxapp ``.params`` file and loads it.

    A file with ``conv6a`` gives :func:`~keras_wideresnet.applications.ResNet38Segmenter`
    (output stride 8 unless the name or ``output_stride`` says otherwise); a file without it
    gives :func:`~keras_wideresnet.applications.ResNet38` with ``linear{C}``. Released Model A
    was tested with pad-0 ("caffe") pooling, so ``variant="a"`` defaults to
    ``pool_padding="caffe"`` (docs/architecture.md §2.4).

    Args:
      params_path: The ``.params`` file.
      variant: ``"a"`` or ``"a1"``. A and A1 have identical arrays, so this comes from the file
        name (``…_rna-a1_…``) when not given.
      num_classes: Expected ``C``; checked against the file when given.
      output_stride: Overrides the stride (segmenter default 8, classifier default 32).
      width_multiplier: 1.0 for the released files (smaller only for test fixtures).
      input_shape: Model input shape; the default accepts any image size.
      pool_padding: Model A pooling, default ``"caffe"`` for ``variant="a"``.
      classifier_activation: Top activation of the classifier (``None`` for logits).
      check_md5: Verify known release files (docs/architecture.md §5.4).
      verbose: Progress bar while assigning.
      **model_kwargs: Passed to the model constructor (e.g. ``bn_mode``, ``name``).
    """
    raw, source, kind, classes = _read_with_head(params_path, num_classes, check_md5)
    release = parse_release_name(params_path)
    variant = _released_variant(variant, release, source)
    if kind == "segmenter" and output_stride is None:
        output_stride = (release.output_stride if release and release.output_stride else 8)
    model = _matching_model(kind, classes, variant, output_stride=output_stride,
                            width_multiplier=width_multiplier, input_shape=input_shape,
                            pool_padding=pool_padding,
                            classifier_activation=classifier_activation, model_kwargs=model_kwargs)
    _assign(raw, model, source, verbose)
    return model


def _read_with_head(params_path: str | os.PathLike, num_classes: int | None, check_md5: bool
                    ) -> tuple[Mapping[str, Any], str, str, int]:
    """Reads the file and its head: ``(arrays, source, "classifier" | "segmenter", C)``;
    ``C`` must equal ``num_classes`` when that is given."""
    raw, source, _ = _read(params_path, check_md5)
    kind, classes = head_of(raw)
    if num_classes is not None and num_classes != classes:
        raise ValueError(f"num_classes={num_classes} but {source} holds linear{classes} "
                         f"({classes} classes). Pass num_classes={classes} or the right file.")
    return raw, source, kind, classes


def _released_variant(variant: str | None, release: ReleaseName | None, source: str) -> str:
    """The variant to build: ``variant`` if given (warning when the file name says the other
    one), else the file name's; only ``"a"`` and ``"a1"`` were released."""
    if variant is not None and release is not None and release.variant != variant:
        warnings.warn(f"{source} is named as a Model {release.variant.upper()} file but "
                      f"variant={variant!r} was asked for; A and A1 share array shapes, so the "
                      "weights load, but they were trained for the other downsampling.",
                      stacklevel=3)  # the caller of load_ademxapp
    if variant is None:
        if release is None:
            raise ValueError(f"Cannot tell Model A from A1 for {source}: their arrays are "
                             "identical and the file name does not contain 'rna-a_' or "
                             "'rna-a1_'. Pass variant='a' or variant='a1'.")
        variant = release.variant
    if variant not in ("a", "a1"):
        raise ValueError(f"ademxapp released variants 'a' and 'a1' only. Received: "
                         f"variant={variant!r}")
    return variant


def _matching_model(kind: str, classes: int, variant: str, *, output_stride: int | None,
                    width_multiplier: float, input_shape: Sequence[int | None] | None,
                    pool_padding: str | None, classifier_activation: str | None,
                    model_kwargs: Mapping[str, Any]) -> keras.Model:
    """The model the file's head calls for: the segmenter, or the classifier (Model A with
    pad-0 pooling unless ``pool_padding`` is given, docs/architecture.md §2.4)."""
    if kind == "segmenter":
        return applications.ResNet38Segmenter(
            classes, output_stride=output_stride, variant=variant,
            width_multiplier=width_multiplier, input_shape=input_shape, **model_kwargs)
    if pool_padding is None and variant == "a":
        pool_padding = "caffe"
    return applications.ResNet38(
        include_top=True, classes=classes, variant=variant, input_shape=input_shape,
        width_multiplier=width_multiplier, output_stride=output_stride,
        pool_padding=pool_padding, classifier_activation=classifier_activation, **model_kwargs)


def export_keras_weights(params_path: str | os.PathLike, output_path: str | os.PathLike, *,
                         model: str = "resnet38_a1", num_classes: int | None = None,
                         output_stride: int | None = None, width_multiplier: float = 1.0,
                         check_md5: bool = True, verbose: bool = False) -> keras.Model:
    """Converts a ``.params`` file and writes Keras ``.weights.h5`` (what the CLI does).

    Args:
      params_path: The ademxapp ``.params`` file.
      output_path: Destination; must end with ``.weights.h5``.
      model: ``"resnet38_a"`` or ``"resnet38_a1"``.
      num_classes, output_stride, width_multiplier, check_md5, verbose: See
        :func:`load_ademxapp`.

    Returns:
      The converted model (load the file later with ``ResNet38(variant=..., weights=path)`` or
      ``ResNet38Segmenter(C, weights=path)``).
    """
    output_path = os.fspath(output_path)
    if not output_path.endswith(".weights.h5"):
        raise ValueError("The output file name must end with '.weights.h5' (Keras 3 weights "
                         f"format). Received: {output_path!r}")
    if model not in RELEASED_MODELS:
        raise ValueError(f"`model` must be one of {RELEASED_MODELS}. Received: model={model!r}")
    keras_model = load_ademxapp(params_path, variant=RELEASED_MODELS[model],
                                num_classes=num_classes, output_stride=output_stride,
                                width_multiplier=width_multiplier, check_md5=check_md5,
                                verbose=verbose)
    parent = os.path.dirname(os.path.abspath(output_path))
    os.makedirs(parent, exist_ok=True)
    # Written beside the target and renamed into place: a conversion killed half-way leaves
    # no file under the output name, and a re-run writes it whole.
    partial = os.path.join(parent, f".{os.path.basename(output_path)[:-len('.weights.h5')]}"
                                   f".partial-{os.getpid()}.weights.h5")
    try:
        keras_model.save_weights(partial)
        os.replace(partial, output_path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return keras_model
