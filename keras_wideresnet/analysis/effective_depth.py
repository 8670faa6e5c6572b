"""Path counts and the effective-depth estimate (docs/architecture.md §6.2–§6.3).

A network with n residual units unravels into 2ⁿ paths; C(n, k) of them go through exactly k
residual branches. With g(k) the mean input-gradient magnitude of a length-k path, the total
gradient that length-k paths deliver is T(k) = C(n, k) · g(k).

This package does not reproduce the paper's exact definition of effective depth (docs/architecture.md
§6.3), so the estimate is configurable. Three definitions are offered:

``"total"`` (default, fraction 0.1)
    l_e = max{k : T(k) ≥ fraction · maxⱼ T(j)}: the longest path length that still delivers
    at least ``fraction`` of the peak total gradient. Paths longer than l_e get little gradient,
    i.e. are "not fully trained". The *effective range* [min k, max k] of the same set is
    reported too (Veit et al.'s "effective paths", 5–17 of 54 units for ResNet-110).
``"cumulative"`` (default fraction 0.9)
    l_e = min{k : Σ_{j≤k} T(j) ≥ fraction · Σⱼ T(j)}: the shortest length such that paths up
    to it deliver ``fraction`` of all the gradient.
``"relative"`` (default fraction 0.01)
    l_e = max{k : g(k) ≥ fraction · g(reference_k)}: the longest path whose *individual*
    gradient is still at least ``fraction`` of a reference path's (k = 0 by default: the path
    through all shortcuts).

Only measured path lengths are considered. Effective depth is in residual units (each basic
unit holds 2 conv layers, each bottleneck unit 3).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import numpy as np

EFFECTIVE_DEPTH_METHODS = ("total", "cumulative", "relative")
_DEFAULT_FRACTION = {"total": 0.1, "cumulative": 0.9, "relative": 0.01}


def path_counts(num_units: int) -> list[int]:
    """C(n, k) for k = 0..n: the number of paths through exactly k residual branches."""
    if not isinstance(num_units, (int, np.integer)) or num_units < 0:
        raise ValueError(f"`num_units` must be a non-negative integer. Received: {num_units!r}")
    return [math.comb(int(num_units), k) for k in range(int(num_units) + 1)]


def path_length_distribution(num_units: int) -> list[float]:
    """Fraction of all 2ⁿ paths that have length k: Binomial(n, ½) (docs/architecture.md §6.1)."""
    total = 2 ** int(num_units)
    return [c / total for c in path_counts(num_units)]


@dataclasses.dataclass(frozen=True)
class EffectiveDepthConfig:
    """How effective depth is read off the gradient curve (see the module docstring).

    Attributes:
      method: ``"total"``, ``"cumulative"`` or ``"relative"``.
      fraction: Threshold in (0, 1]; ``None`` takes the method's default (0.1, 0.9, 0.01).
      reference_k: Reference path length of the ``"relative"`` method.
    """

    method: str = "total"
    fraction: float | None = None
    reference_k: int = 0

    def __post_init__(self):
        if self.method not in EFFECTIVE_DEPTH_METHODS:
            raise ValueError(f"Effective-depth `method` must be one of {EFFECTIVE_DEPTH_METHODS}. "
                             f"Received: method={self.method!r}")
        if self.fraction is None:
            object.__setattr__(self, "fraction", _DEFAULT_FRACTION[self.method])
        if not 0.0 < float(self.fraction) <= 1.0:
            raise ValueError(f"Effective-depth `fraction` must be in (0, 1]. "
                             f"Received: fraction={self.fraction!r}")
        object.__setattr__(self, "fraction", float(self.fraction))
        if int(self.reference_k) < 0:
            raise ValueError(f"`reference_k` must be >= 0. Received: {self.reference_k}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def effective_depth(path_lengths: Sequence[int], counts: Sequence[int], mean_gradient:
                    Sequence[float], config: EffectiveDepthConfig = EffectiveDepthConfig()
                    ) -> dict[str, Any]:
    """Effective depth from measured per-length mean gradients.

    Args:
      path_lengths: The measured k values (increasing).
      counts: C(n, k) for those k.
      mean_gradient: g(k), the mean input-gradient norm of length-k paths.
      config: The definition to use.

    Returns:
      ``{"effective_depth": int | None, "effective_range": [lo, hi] | None, "method",
      "fraction", "reference_k"}``; ``None`` when undefined (e.g. all gradients are zero).
    """
    ks = np.asarray(path_lengths, dtype=np.int64)
    g = np.asarray(mean_gradient, dtype=np.float64)
    c = np.asarray([float(x) for x in counts], dtype=np.float64)
    if not (len(ks) == len(g) == len(c)) or len(ks) == 0:
        raise ValueError("`path_lengths`, `counts` and `mean_gradient` must be non-empty and of "
                         f"equal length. Received lengths {len(ks)}, {len(c)}, {len(g)}.")
    if np.any(np.diff(ks) <= 0):
        raise ValueError(f"`path_lengths` must be strictly increasing. Received: {ks.tolist()}")
    total = c * g
    out: dict[str, Any] = dict(config.to_dict(), effective_depth=None, effective_range=None)
    if not np.all(np.isfinite(total)) or total.max() <= 0:
        return out
    f = config.fraction
    if config.method == "total":
        keep = ks[total >= f * total.max()]
        out["effective_depth"] = int(keep.max())
        out["effective_range"] = [int(keep.min()), int(keep.max())]
    elif config.method == "cumulative":
        cum = np.cumsum(total)
        out["effective_depth"] = int(ks[np.argmax(cum >= f * cum[-1] * (1 - 1e-12))])
    else:
        ref = np.flatnonzero(ks == int(config.reference_k))
        if ref.size == 0:
            raise ValueError(f"`reference_k`={config.reference_k} was not measured; measured "
                             f"path lengths are {ks.tolist()}. Include it or change reference_k.")
        g_ref = g[ref[0]]
        if g_ref > 0:
            keep = ks[g >= f * g_ref]
            out["effective_depth"] = int(keep.max())
    return out
