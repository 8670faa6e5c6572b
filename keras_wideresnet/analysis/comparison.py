"""The "wider or deeper" comparison.

Family members with similar parameter counts but different depth/width are compared on
accuracy (from training metrics), parameters, training memory, step time and effective depth,
in one Markdown table.

* :func:`spec_param_count` counts a spec's parameters without building it, so
  :func:`match_width` can scale a shallower member until it has as many parameters as a deeper
  one; :func:`wider_or_deeper_members` builds the default set of members this way.
* :func:`compare_members` measures each member (trained models and their metrics are inputs; a
  member without a model is built untrained from its spec) and :func:`comparison_markdown`
  renders the table.

Memory: on a GPU the allocator's peak during one training step is measured
(``tf.config.experimental.get_memory_info``). On CPU TensorFlow reports no allocator peak, so
the memory is *estimated*: weights + gradients + momentum (3 × parameters × 4 bytes) plus every
forward tensor the backward pass reads (found in the traced training-step graph). The table
says which of the two each number is.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import re
from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf

from keras_wideresnet.analysis.effective_depth import EffectiveDepthConfig
from keras_wideresnet.analysis.gates import find_residual_units
from keras_wideresnet.analysis.paths import analyze_paths, as_batches
from keras_wideresnet.models.spec import FamilySpec, get_spec, make_spec
from keras_wideresnet.training.train_step import build_replica_step, time_steps

_KERNELS = {"basic": (3, 3), "bottleneck": (1, 3, 1)}
ACCURACY_KEYS = ("top1", "accuracy", "val_accuracy", "top1_accuracy", "sparse_categorical_accuracy")

# Units per block B2..B7 of the default members: ResNet-38, -20 and -16 (docs/architecture.md §2.3),
# and a deeper 68-layer member (twice ResNet-38's units in B2..B5).
DEFAULT_MEMBER_UNITS = {
    "resnet68": (6, 6, 12, 6, 1, 1),
    "resnet38": (3, 3, 6, 3, 1, 1),
    "resnet20": (1, 1, 1, 3, 1, 1),
    "resnet16": (1, 1, 1, 1, 1, 1),
}


def spec_param_count(spec: FamilySpec | str, classes: int | None = 1000,
                     input_channels: int = 3) -> int:
    """Parameters (trainable and BN statistics) of ``WideResNet(spec, classes=classes)``.

    ``classes=None`` counts the backbone only (up to ``relu7``).
    """
    spec = get_spec(spec)
    total = 9 * input_channels * spec.stem_filters  # conv1a, no bias
    cin = spec.stem_filters
    for block in spec.blocks:
        for i in range(block.num_units):
            c = cin
            for kernel, width in zip(_KERNELS[block.unit_type], block.filters):
                total += 4 * c + kernel * kernel * c * width  # BN (γ, β, mean, var) + conv
                c = width
            if i == 0:
                total += cin * block.filters[-1]  # 1×1 projection shortcut
            cin = block.filters[-1]
    total += 4 * cin  # bn7
    if classes:
        total += cin * classes + classes
    return total


def match_width_multiplier(units: Sequence[int], target_params: int, *, classes: int = 10,
                           downsample: Sequence[str] = ("conv",) * 5 + ("none",),
                           input_channels: int = 3) -> float:
    """The width multiplier (of the paper's widths) whose parameter count is closest
    to ``target_params`` for a member with ``units`` per block B2..B7 (bisection).

    The multiplier means the same as ``ResNet38(width_multiplier=...)`` (``FamilySpec.scaled``).
    """
    if target_params <= 0:
        raise ValueError(f"`target_params` must be positive. Received: {target_params}")
    base = make_spec("member", tuple(units), tuple(downsample))

    def count(m: float) -> int:
        return spec_param_count(base.scaled(m), classes, input_channels)

    lo, hi = 1e-4, 1.0
    while count(hi) < target_params:
        hi *= 2
        if hi > 64:
            raise ValueError(f"Cannot reach {target_params} parameters with units {units}.")
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if count(mid) < target_params else (lo, mid)
    return float(min((lo, hi), key=lambda m: abs(count(m) - target_params)))


def match_width(units: Sequence[int], target_params: int, *, classes: int = 10,
                downsample: Sequence[str] = ("conv",) * 5 + ("none",), name: str = "member",
                input_channels: int = 3) -> FamilySpec:
    """A spec with ``units`` per block scaled by :func:`match_width_multiplier`."""
    m = match_width_multiplier(units, target_params, classes=classes, downsample=downsample,
                               input_channels=input_channels)
    return make_spec(name, tuple(units), tuple(downsample)).scaled(m)


def wider_or_deeper_members(base_width: float = 1 / 16, classes: int = 10,
                            member_units: dict[str, Sequence[int]] | None = None,
                            reference: str = "resnet38",
                            downsample: Sequence[str] = ("conv",) * 5 + ("none",),
                            names: Sequence[str] | None = None) -> list[FamilySpec]:
    """Deeper-and-thinner and wider-and-shallower members with about equal parameter counts.

    The ``reference`` member uses ``base_width``; every other member is widened or thinned by
    :func:`match_width` to the reference's parameter count. Default downsampling is Model A1's
    strided convs. Names are ``{member}_w{width multiplier}``. ``names`` keeps only those
    members (the reference still sets the parameter budget).
    """
    member_units = dict(member_units or DEFAULT_MEMBER_UNITS)
    if reference not in member_units:
        raise ValueError(f"`reference` {reference!r} is not among the members "
                         f"{sorted(member_units)}.")
    ref = make_spec(reference, tuple(member_units[reference]), tuple(downsample)).scaled(base_width)
    target = spec_param_count(ref, classes)
    unknown = sorted(set(names or ()) - set(member_units))
    if unknown:
        raise ValueError(f"Unknown members {unknown}; choose from {sorted(member_units)}.")
    out = []
    for name, units in member_units.items():
        if names and name not in names:
            continue
        spec = ref if name == reference else match_width(units, target, classes=classes,
                                                         downsample=downsample, name=name)
        ratio = spec.blocks[0].filters[0] / 128.0
        out.append(spec.replace(name=f"{name}_w{ratio:.3g}"))
    return out


def read_accuracy(metrics: dict | str | None, key: str | None = None) -> float | None:
    """Top-1 accuracy from a metrics dict, a metrics JSON file, or a ``model_dir``.

    A ``model_dir`` is searched for the trainer's ``metrics_<step>.json`` (the newest step wins).
    Lists (e.g. a Keras History) give their last value. Keys tried: ``key`` or
    :data:`ACCURACY_KEYS`.
    """
    if metrics is None:
        return None
    if isinstance(metrics, (str, os.PathLike)):
        path = os.fspath(metrics)
        if os.path.isdir(path):
            files = glob.glob(os.path.join(path, "metrics_*.json"))
            steps = [(int(m.group(1)), f) for f in files
                     if (m := re.search(r"metrics_(\d+)\.json$", f))]
            if not steps:
                raise ValueError(f"No metrics_<step>.json in {path!r}: train and evaluate the "
                                 "member with keras-wideresnet-train first, or pass a metrics JSON.")
            path = max(steps)[1]
        if not os.path.exists(path):
            raise ValueError(f"Metrics file {path!r} does not exist.")
        with open(path, encoding="utf-8") as f:
            metrics = json.load(f)
    if not isinstance(metrics, dict):
        raise ValueError(f"Metrics must be a dict or a JSON object. Received: {type(metrics)}")
    for k in ([key] if key else ACCURACY_KEYS):
        if k in metrics:
            value = metrics[k]
            if isinstance(value, (list, tuple)):
                value = value[-1]
            return float(value)
    raise ValueError(f"No accuracy in the metrics (tried {[key] if key else list(ACCURACY_KEYS)}); "
                     f"available keys: {sorted(metrics)}. Pass `accuracy_key`.")


def _classification_loss(model: keras.Model):
    from keras_wideresnet.analysis.paths import default_loss

    return default_loss(model)


def _gradients_fn(model: keras.Model, loss_fn):
    """The forward and backward pass, returning the gradients (the graph the estimate reads)."""
    def gradients(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        return tape.gradient(loss, model.trainable_variables)

    return gradients


def _is_gradient_op(op) -> bool:
    return op.name.startswith("gradient_tape/")


def estimate_training_memory(model: keras.Model, x: Any, y: Any, loss_fn=None) -> int:
    """Estimated bytes of one SGD-momentum training step (see the module docstring)."""
    loss_fn = loss_fn or _classification_loss(model)
    x, y = tf.convert_to_tensor(x), tf.convert_to_tensor(y)
    fn = tf.function(_gradients_fn(model, loss_fn))
    graph = fn.get_concrete_function(tf.TensorSpec(x.shape, x.dtype),
                                     tf.TensorSpec(y.shape, y.dtype)).graph
    skip = {"ReadVariableOp", "Const", "Shape", "VarHandleOp", "Placeholder"}
    saved = {}
    for op in graph.get_operations():
        if _is_gradient_op(op):
            for t in op.inputs:
                if not _is_gradient_op(t.op) and t.op.type not in skip:
                    saved[t.name] = t
    activations = sum(t.shape.num_elements() * t.dtype.size for t in saved.values()
                      if t.shape.is_fully_defined())
    weights = sum(int(np.prod(v.shape)) * 4 for v in model.weights)
    trainable = sum(int(np.prod(v.shape)) * 4 for v in model.trainable_weights)
    return int(activations + weights + 2 * trainable + x.shape.num_elements() * x.dtype.size)


def measure_step(model: keras.Model, x: Any, y: Any, loss_fn=None, steps: int = 5,
                 warmup: int = 2) -> dict[str, Any]:
    """Median seconds of a compiled SGD-momentum training step (the trainer's step,
    :func:`keras_wideresnet.training.train_step.build_replica_step`), and peak memory.

    Works on a clone of the weights' values: the model's weights are restored afterwards.
    Returns ``{"step_time_s", "memory_bytes", "memory_source": "gpu_peak" | "estimate"}``.
    """
    if steps < 1 or warmup < 0:
        raise ValueError(f"`steps` must be >= 1 and `warmup` >= 0. Received {steps}, {warmup}.")
    loss_fn = loss_fn or _classification_loss(model)
    x, y = tf.convert_to_tensor(x), tf.convert_to_tensor(y)
    saved = [v.numpy() for v in model.weights]
    optimizer = keras.optimizers.SGD(learning_rate=1e-3, momentum=0.9)
    optimizer.build(model.trainable_variables)
    step = tf.function(build_replica_step(model, optimizer, loss_fn))
    gpus = tf.config.list_logical_devices("GPU")
    reset_peak = (lambda: tf.config.experimental.reset_memory_stats(gpus[0].name)) if gpus else None
    try:
        times, _ = time_steps(lambda: step(x, y), warmup, steps, after_warmup=reset_peak)
        if gpus:
            memory = int(tf.config.experimental.get_memory_info(gpus[0].name)["peak"])
            source = "gpu_peak"
    finally:
        for v, value in zip(model.weights, saved):
            v.assign(value)
    if not gpus:
        memory, source = estimate_training_memory(model, x, y, loss_fn), "estimate"
    return {"step_time_s": float(np.median([t.wall_s for t in times])), "memory_bytes": memory,
            "memory_source": source}


@dataclasses.dataclass
class Member:
    """One family member to compare.

    Attributes:
      spec: Its :class:`FamilySpec` (optional when ``model`` is given).
      model: The trained model; ``None`` builds an untrained ``WideResNet(spec)``.
      metrics: Training metrics: a dict, a metrics JSON, or the trainer's ``model_dir``.
      label: Row label (default: the spec's or the model's name).
    """

    spec: FamilySpec | None = None
    model: keras.Model | None = None
    metrics: dict | str | None = None
    label: str | None = None


def describe_units(model: keras.Model) -> dict[str, Any]:
    """Units per block level and weighted depth (convs + stem + classifier) of a model."""
    units = find_residual_units(model)
    levels: dict[int, int] = {}
    for u in units:
        level = int(re.match(r"\d+", str(u.unit_id)).group(0))
        levels[level] = levels.get(level, 0) + 1
    return {"units": [levels[k] for k in sorted(levels)],
            "depth": 2 + sum(len(u.filters) for u in units)}


def compare_members(members: Sequence[Member | FamilySpec], data: Any, *, classes: int,
                    samples_per_k: int = 50, path_lengths: Sequence[int] | None = None,
                    seed: int = 0, timing_steps: int = 5,
                    accuracy_key: str | None = None,
                    effective_depth_config: EffectiveDepthConfig = EffectiveDepthConfig(),
                    verbose: bool = True) -> list[dict[str, Any]]:
    """Measures every member; one row dict per member (see :func:`comparison_markdown`).

    Args:
      members: :class:`Member` objects or bare specs (untrained, no accuracy).
      data: The analysis batch(es) ``(x, y)`` (preprocessed). The first batch also sets the
        input shape and batch size of the memory and step-time measurements.
      classes: Classes of the classifier built for members without a model.
      samples_per_k, path_lengths, seed, effective_depth_config: For :func:`analyze_paths`.
      timing_steps: Timed training steps per member (after 2 warm-up steps).
      accuracy_key: Metrics key holding top-1 accuracy (default: see :func:`read_accuracy`).
    """
    from keras_wideresnet.applications import WideResNet

    batches = as_batches(data)
    x, y = batches[0]
    rows = []
    progbar = keras.utils.Progbar(len(members), unit_name="member") if verbose else None
    for i, member in enumerate(members):
        if isinstance(member, FamilySpec):
            member = Member(spec=member)
        if not isinstance(member, Member):
            raise ValueError(f"members[{i}] must be a Member or FamilySpec. Received: {member!r}")
        if member.model is None and member.spec is None:
            raise ValueError(f"members[{i}] has neither a model nor a spec.")
        model = member.model or WideResNet(member.spec, input_shape=tuple(x.shape[1:]),
                                           classes=classes, classifier_activation=None)
        shape = describe_units(model)
        step = measure_step(model, x, y, steps=timing_steps)
        paths = analyze_paths(model, batches, samples_per_k=samples_per_k,
                              path_lengths=path_lengths, seed=seed,
                              effective_depth_config=effective_depth_config, verbose=False)
        rows.append({
            "member": member.label or (member.spec.name if member.spec else model.name),
            "units": shape["units"],
            "num_units": paths.num_units,
            "depth": shape["depth"],
            "widths": [list(u.filters) for u in find_residual_units(model)],
            "params": int(model.count_params()),
            "accuracy": read_accuracy(member.metrics, accuracy_key),
            "memory_mib": step["memory_bytes"] / 2 ** 20,
            "memory_source": step["memory_source"],
            "step_time_ms": 1000.0 * step["step_time_s"],
            "batch_size": int(x.shape[0]),
            "input_shape": list(x.shape[1:]),
            "effective_depth": paths.effective_depth,
            "effective_range": paths.effective_range,
            "effective_depth_config": paths.effective_depth_config,
            "path_analysis": paths.to_dict(),
        })
        if progbar is not None:
            progbar.update(i + 1)
    return rows


def comparison_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """The comparison as one Markdown table (plus a line saying how memory was obtained)."""
    header = ("| member | units B2–B7 | residual units | depth | params | top-1 acc. | "
              "train memory (MiB) | step time (ms) | effective depth (range) |")
    lines = [header, "|" + "---|" * 9]
    for r in rows:
        acc = "n/a" if r["accuracy"] is None else f"{100 * r['accuracy']:.2f} %"
        mem = f"{r['memory_mib']:.1f}" + ("" if r["memory_source"] == "gpu_peak" else "*")
        ed = "n/a" if r["effective_depth"] is None else str(r["effective_depth"])
        if r.get("effective_range"):
            ed += f" ({r['effective_range'][0]}–{r['effective_range'][1]})"
        lines.append(f"| {r['member']} | {'-'.join(map(str, r['units']))} | {r['num_units']} | "
                     f"{r['depth']} | {r['params']:,} | {acc} | {mem} | "
                     f"{r['step_time_ms']:.1f} | {ed} |")
    if rows:
        r0 = rows[0]
        cfg = r0["effective_depth_config"]
        notes = [f"Batch {r0['batch_size']} at {r0['input_shape'][0]}×{r0['input_shape'][1]}; "
                 f"effective depth: method `{cfg['method']}`, fraction {cfg['fraction']:g} "
                 "(docs/analysis.md)."]
        if any(r["memory_source"] != "gpu_peak" for r in rows):
            notes.append("\\* estimated (CPU): weights + gradients + momentum + forward tensors "
                         "kept for the backward pass; not an allocator measurement.")
        lines += [""] + notes
    return "\n".join(lines) + "\n"


__all__ = ["ACCURACY_KEYS", "DEFAULT_MEMBER_UNITS", "Member", "compare_members",
           "comparison_markdown", "describe_units", "estimate_training_memory", "match_width",
           "match_width_multiplier", "measure_step", "read_accuracy", "spec_param_count",
           "wider_or_deeper_members"]
