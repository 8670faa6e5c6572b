"""Gradient magnitude at the input by path length (docs/architecture.md §6.2, steps 1–4;
Veit et al., "the importance of short paths").

For each path length k, :func:`analyze_paths` samples (batch, S) pairs with |S| = k units,
runs the normal forward pass, lets each unit in S pass gradient only through its residual branch
and every other unit only through its shortcut (:mod:`.gates`), and records ‖∂L/∂x‖₂, the L2
norm of the gradient of the batch loss L with respect to the whole input batch x.

The forward + backward computation is one ``tf.function`` traced once; only the gate variables
change between samples. Sampling is deterministic given ``seed``: the subsets drawn for length k
depend only on ``(seed, k)``. When C(n, k) · (number of batches) ≤ ``samples_per_k``, every
(subset, batch) pair is measured once instead (exact mean; e.g. k = 0 and k = n).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import time
from typing import Any, Callable, Iterable, Sequence

import keras
import numpy as np
import tensorflow as tf

from keras_wideresnet.analysis.effective_depth import (
    EffectiveDepthConfig,
    effective_depth,
    path_counts,
    path_length_distribution,
)
from keras_wideresnet.analysis.gates import PathGates, find_residual_units, path_gates

LossFn = Callable[[Any, Any], Any]
Batch = tuple[Any, Any]

PROJECTION_SHORTCUT_RULE = (
    "A unit's skip path is its shortcut: the identity, or for projection units the 1x1 "
    "projection res{u}_branch1 applied to the shared pre-activation bn{u}_branch2a->ReLU. "
    "Path length k counts residual branches only; projections are not counted.")


def as_batches(data: Any, num_batches: int | None = None) -> list[Batch]:
    """Normalises ``data`` into a list of ``(x, y)`` tensor pairs.

    Args:
      data: One ``(x, y)`` pair, a sequence of pairs, or a finite ``tf.data.Dataset`` yielding
        pairs (extra elements such as sample weights are dropped).
      num_batches: Use at most this many batches (required for infinite datasets).
    """
    if isinstance(data, tf.data.Dataset):
        if num_batches is None and data.cardinality() == tf.data.INFINITE_CARDINALITY:
            raise ValueError("The dataset is infinite (repeat()?); pass `num_batches`.")
        data = data.take(num_batches) if num_batches is not None else data
        batches = [tuple(el[:2]) if isinstance(el, (tuple, list)) else el for el in data]
    elif isinstance(data, tuple) and len(data) == 2 and not isinstance(data[0], (tuple, list)):
        batches = [data]
    else:
        batches = list(data)
    out = []
    for i, b in enumerate(batches[:num_batches] if num_batches else batches):
        if isinstance(b, dict) or not isinstance(b, (tuple, list)) or len(b) < 2:
            raise ValueError("Each batch must be an (images, labels) pair. Received element "
                             f"{i} of type {type(b).__name__}.")
        out.append((tf.convert_to_tensor(b[0]), tf.convert_to_tensor(b[1])))
    if not out:
        raise ValueError("No batches to analyse: `data` is empty.")
    return out


def default_loss(model: keras.Model) -> LossFn:
    """The training loss of a classifier: sparse (or one-hot) softmax cross-entropy.

    ``from_logits`` is inferred from the last layer: a softmax activation means probabilities.
    Integer labels use the sparse loss, float labels of the prediction's shape the dense one.
    """
    last = model.layers[-1] if getattr(model, "layers", None) else None
    activation = getattr(last, "activation", None)
    from_logits = activation is not keras.activations.softmax
    sparse = keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)
    dense = keras.losses.CategoricalCrossentropy(from_logits=from_logits)

    def loss(y_true, y_pred):
        y_true = tf.convert_to_tensor(y_true)
        if y_true.dtype.is_integer or y_true.shape.rank == y_pred.shape.rank - 1:
            return sparse(y_true, y_pred)
        return dense(y_true, y_pred)

    return loss


def _resolve_loss(model: keras.Model, loss_fn: LossFn | str | None) -> tuple[LossFn, str]:
    if loss_fn is None or loss_fn == "auto":
        return default_loss(model), "auto (softmax cross-entropy)"
    if isinstance(loss_fn, str):
        return keras.losses.get(loss_fn), loss_fn
    if not callable(loss_fn):
        raise ValueError("`loss_fn` must be 'auto', a Keras loss name or a callable "
                         f"(y_true, y_pred) -> scalar. Received: {loss_fn!r}")
    return loss_fn, getattr(loss_fn, "name", getattr(loss_fn, "__name__", type(loss_fn).__name__))


def input_gradient(model: keras.Model, x: Any, y: Any, loss_fn: LossFn | str | None = "auto",
                   training: bool = False) -> tf.Tensor:
    """The ordinary ∂L/∂x (all paths), for reference and for the exactness check."""
    loss, _ = _resolve_loss(model, loss_fn)
    x, y = tf.convert_to_tensor(x), tf.convert_to_tensor(y)
    with tf.GradientTape() as tape:
        tape.watch(x)
        value = loss(y, model(x, training=training))
    return tape.gradient(value, x)


class PathGradient:
    """Compiled per-path input gradients of ``model`` under installed :class:`PathGates`.

    Use inside :func:`~keras_wideresnet.analysis.gates.path_gates`::

        with path_gates(model) as gates:
            pg = PathGradient(model, gates)
            g = pg.gradient(x, y, mask)      # ∂L/∂x along the paths selected by mask
    """

    def __init__(self, model: keras.Model, gates: PathGates, loss_fn: LossFn | str | None = "auto",
                 training: bool = False):
        self.model = model
        self.gates = gates
        self.loss_fn, self.loss_name = _resolve_loss(model, loss_fn)
        self.training = bool(training)
        variables = gates.variables

        def grad(x, y, mask):
            for i, var in enumerate(variables):
                var.assign(mask[i])
            with tf.GradientTape() as tape:
                tape.watch(x)
                value = self.loss_fn(y, model(x, training=self.training))
            return tape.gradient(value, x)

        def grad_norm(x, y, mask):
            g = grad(x, y, mask)
            if g is None:
                raise ValueError("The loss does not depend on the model input; check `loss_fn`.")
            return tf.norm(tf.reshape(tf.cast(g, tf.float32), [-1]))

        self._grad = tf.function(grad, reduce_retracing=True)
        self._grad_norm = tf.function(grad_norm, reduce_retracing=True)

    def _mask(self, mask: Sequence[float] | np.ndarray) -> tf.Tensor:
        mask = tf.convert_to_tensor(np.asarray(mask, dtype=np.float32))
        if mask.shape != (self.gates.num_units,):
            raise ValueError(f"The path mask needs one 0/1 value per unit ({self.gates.num_units})."
                             f" Received shape {tuple(mask.shape)}.")
        return mask

    def gradient(self, x, y, mask) -> tf.Tensor:
        """∂L/∂x through the branches of units with ``mask[i] = 1`` and shortcuts elsewhere."""
        return self._grad(tf.convert_to_tensor(x), tf.convert_to_tensor(y), self._mask(mask))

    def norm(self, x, y, mask) -> float:
        """‖∂L/∂x‖₂ over the whole batch for the path set ``mask``."""
        return float(self._grad_norm(tf.convert_to_tensor(x), tf.convert_to_tensor(y),
                                     self._mask(mask)))


@dataclasses.dataclass
class PathAnalysisResult:
    """What :func:`analyze_paths` measured; JSON-serialisable via :meth:`to_dict`.

    ``path_lengths[i]`` = k, ``counts[i]`` = C(n, k), ``mean[i]`` ± ``std[i]`` = gradient
    magnitude of length-k paths over ``num_samples[i]`` samples, ``total[i]`` = C(n, k)·mean.
    """

    num_units: int
    unit_names: list[str]
    projection_units: list[str]
    path_lengths: list[int]
    counts: list[int]
    distribution: list[float]
    mean: list[float]
    std: list[float]
    total: list[float]
    num_samples: list[int]
    exhaustive: list[bool]
    effective_depth: int | None
    effective_range: list[int] | None
    effective_depth_config: dict[str, Any]
    full_gradient_norm: float
    seed: int
    samples_per_k: int
    num_batches: int
    training: bool
    loss: str
    seconds: float
    projection_rule: str = PROJECTION_SHORTCUT_RULE
    samples: dict[str, list[float]] | None = None

    def with_effective_depth(self, config: EffectiveDepthConfig) -> "PathAnalysisResult":
        """The same measurement with effective depth re-read under another definition."""
        ed = effective_depth(self.path_lengths, self.counts, self.mean, config)
        return dataclasses.replace(self, effective_depth=ed["effective_depth"],
                                   effective_range=ed["effective_range"],
                                   effective_depth_config=config.to_dict())

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if d["samples"] is None:
            d.pop("samples")
        return d

    def to_json(self, path: str | None = None, indent: int = 2) -> str:
        text = json.dumps(self.to_dict(), indent=indent)
        if path is not None:
            with tf.io.gfile.GFile(path, "w") as f:
                f.write(text + "\n")
        return text

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PathAnalysisResult":
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in fields})


def sample_plan(num_units: int, k: int, num_batches: int, samples_per_k: int, seed: int
                ) -> tuple[list[tuple[tuple[int, ...], int]], bool]:
    """The (unit subset, batch index) pairs measured for path length k.

    Returns ``(pairs, exhaustive)``. Deterministic in ``(seed, k)``; see the module docstring.
    """
    n_subsets = path_counts(num_units)[k]
    if n_subsets * num_batches <= samples_per_k:
        pairs = [(s, b) for s in itertools.combinations(range(num_units), k)
                 for b in range(num_batches)]
        return pairs, True
    rng = np.random.default_rng([int(seed), int(k)])
    pairs = []
    for _ in range(samples_per_k):
        subset = tuple(sorted(int(i) for i in rng.choice(num_units, size=k, replace=False)))
        pairs.append((subset, int(rng.integers(num_batches))))
    return pairs, False


def _check_args(samples_per_k: int, path_lengths: Iterable[int] | None, n: int) -> list[int]:
    if not isinstance(samples_per_k, (int, np.integer)) or samples_per_k < 1:
        raise ValueError(f"`samples_per_k` must be a positive integer. Received: {samples_per_k!r}")
    ks = list(range(n + 1)) if path_lengths is None else sorted({int(k) for k in path_lengths})
    bad = [k for k in ks if not 0 <= k <= n]
    if bad or not ks:
        raise ValueError(f"`path_lengths` must be non-empty values in [0, {n}] (the model has {n} "
                         f"residual units). Received: {path_lengths}")
    return ks


def _sample_path_norms(model: keras.Model, units, batches, plans, ks, loss_fn, training: bool,
                       verbose: bool) -> dict[int, list[float]]:
    """The input-gradient norm of every planned (subset, batch) sample, per path length k:
    the units outside the subset are gated off, so only paths through the subset carry
    gradient (docs/architecture.md §6.2)."""
    n = len(units)
    per_k: dict[int, list[float]] = {}
    with path_gates(units) as gates:
        pg = PathGradient(model, gates, loss_fn=loss_fn, training=training)
        total_steps = sum(len(p) for p, _ in plans.values())
        bar = (keras.utils.Progbar(total_steps, unit_name="path", stateful_metrics=["k"])
               if verbose else None)
        done = 0
        for k in ks:
            values = []
            for subset, b in plans[k][0]:
                mask = np.zeros(n, np.float32)
                mask[list(subset)] = 1.0
                values.append(pg.norm(*batches[b], mask))
                done += 1
                if bar is not None and (done % 20 == 0 or done == total_steps):
                    bar.update(done, values=[("k", k)])
            per_k[k] = values
    return per_k


def analyze_paths(model: keras.Model, data: Any, *, samples_per_k: int = 1000,
                  path_lengths: Iterable[int] | None = None, seed: int = 0,
                  loss_fn: LossFn | str | None = "auto", training: bool = False,
                  effective_depth_config: EffectiveDepthConfig = EffectiveDepthConfig(),
                  num_batches: int | None = None, keep_samples: bool = False,
                  verbose: bool = True) -> PathAnalysisResult:
    """Measures gradient magnitude at the input by path length (docs/architecture.md §6.2).

    Args:
      model: Any Keras model containing :class:`PreActResidualUnit` layers (nested is fine).
      data: ``(x, y)``, a list of such batches, or a finite ``tf.data.Dataset`` of them. Images
        must already be preprocessed as the model expects.
      samples_per_k: (batch, subset) samples per path length (Veit et al. used 1,000).
      path_lengths: The k values to measure; all of 0..n by default.
      seed: Makes the sampled subsets and batch choices reproducible.
      loss_fn: ``"auto"`` (softmax cross-entropy of a classifier), a Keras loss name, or a
        callable ``(y_true, y_pred) -> scalar``, e.g. a segmentation loss.
      training: Run the forward pass in training mode (batch-statistics BN, dropout). The
        default, inference mode, keeps the forward pass identical across samples; in training
        mode BN moving statistics are restored afterwards, but dropout makes samples noisy.
      effective_depth_config: How to read effective depth off the curve.
      num_batches: Use at most this many batches from ``data``.
      keep_samples: Store every per-sample norm in the result (``samples["k"]``).
      verbose: Show a progress bar.

    Returns:
      A :class:`PathAnalysisResult`.
    """
    start = time.perf_counter()
    batches = as_batches(data, num_batches)
    units = find_residual_units(model)
    n = len(units)
    ks = _check_args(samples_per_k, path_lengths, n)
    plans = {k: sample_plan(n, k, len(batches), int(samples_per_k), seed) for k in ks}
    saved_state = [v.numpy() for v in model.non_trainable_variables] if training else None

    try:
        full_norms = [float(tf.norm(tf.reshape(tf.cast(
            input_gradient(model, x, y, loss_fn, training), tf.float32), [-1])))
            for x, y in batches]
        per_k = _sample_path_norms(model, units, batches, plans, ks, loss_fn, training, verbose)
    finally:
        if saved_state is not None:
            for var, value in zip(model.non_trainable_variables, saved_state):
                var.assign(value)

    return _summarize(units, ks, plans, per_k, effective_depth_config,
                      full_gradient_norm=float(np.mean(full_norms)), seed=int(seed),
                      samples_per_k=int(samples_per_k), num_batches=len(batches),
                      training=bool(training), loss=_resolve_loss(model, loss_fn)[1],
                      seconds=time.perf_counter() - start,
                      samples={str(k): per_k[k] for k in ks} if keep_samples else None)


def _summarize(units: Sequence[keras.layers.Layer], ks: list[int],
               plans: dict, per_k: dict[int, list[float]],
               effective_depth_config: EffectiveDepthConfig, **run: Any) -> PathAnalysisResult:
    """Path counts, the mean, std and total gradient per length, and the effective depth, as a
    :class:`PathAnalysisResult`; ``run`` holds the run's own fields (seed, timing, ...)."""
    n = len(units)
    counts_all = path_counts(n)
    dist_all = path_length_distribution(n)
    mean = [float(np.mean(per_k[k])) for k in ks]
    counts = [counts_all[k] for k in ks]
    ed = effective_depth(ks, counts, mean, effective_depth_config)
    return PathAnalysisResult(
        num_units=n,
        unit_names=[u.name for u in units],
        projection_units=[u.name for u in units if u.projection],
        path_lengths=ks,
        counts=counts,
        distribution=[dist_all[k] for k in ks],
        mean=mean,
        std=[float(np.std(per_k[k])) for k in ks],
        total=[float(c) * m for c, m in zip(counts, mean)],
        num_samples=[len(per_k[k]) for k in ks],
        exhaustive=[plans[k][1] for k in ks],
        effective_depth=ed["effective_depth"],
        effective_range=ed["effective_range"],
        effective_depth_config={k: ed[k] for k in ("method", "fraction", "reference_k")},
        **run,
    )
