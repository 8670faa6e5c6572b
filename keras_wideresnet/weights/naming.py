"""ademxapp parameter names of a Keras model (docs/architecture.md §5.1–§5.2).

Our layers carry the ademxapp names without the MXNet suffix (``conv1a``, ``bn2a_branch2a``,
``res2a_branch2a``, ``res2a_branch1``, ``bn7``, ``linear1000``, ``conv6a``, ``linear21``), so the
mapping is: Conv2D ``{name}_weight`` (O, I, kh, kw) → kernel (kh, kw, I, O), ``{name}_bias``;
Dense ``{name}_weight`` (O, I) → kernel (I, O), ``{name}_bias``; BatchNormalization
``{name}_gamma``/``_beta`` (``arg:``) and ``{name}_moving_mean``/``_moving_var`` (``aux:``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterator

import keras
import numpy as np

from keras_wideresnet.layers import PreActResidualUnit

ARG, AUX = "arg", "aux"


@dataclasses.dataclass(frozen=True)
class ParamTarget:
    """One MXNet array and the Keras variable it fills.

    Attributes:
      name: MXNet name without the ``arg:``/``aux:`` prefix, e.g. ``res2a_branch2a_weight``.
      kind: ``"arg"`` (trainable) or ``"aux"`` (BN moving statistics).
      variable: The Keras variable.
      layout: ``"conv"`` (OIHW → HWIO), ``"dense"`` (OI → IO) or ``"vector"``.
    """

    name: str
    kind: str
    variable: Any
    layout: str

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.variable.shape)

    def to_keras(self, array: np.ndarray) -> np.ndarray:
        """MXNet layout → Keras layout (docs/architecture.md §5.2)."""
        if self.layout == "conv" and array.ndim == 4:
            return array.transpose(2, 3, 1, 0)
        if self.layout == "dense" and array.ndim == 2:
            return array.T
        return array

    def mxnet_shape(self) -> tuple[int, ...]:
        """The shape the MXNet array must have."""
        s = self.shape
        if self.layout == "conv":
            return (s[3], s[2], s[0], s[1])
        if self.layout == "dense":
            return (s[1], s[0])
        return s


def _layer_targets(name: str, layer: keras.layers.Layer) -> list[ParamTarget]:
    if isinstance(layer, keras.layers.BatchNormalization):
        if not (layer.scale and layer.center):
            raise ValueError(f"BatchNormalization {name!r} must have scale=True and center=True "
                             "to take ademxapp weights (fix_gamma=False, docs/architecture.md §1.5).")
        return [ParamTarget(f"{name}_gamma", ARG, layer.gamma, "vector"),
                ParamTarget(f"{name}_beta", ARG, layer.beta, "vector"),
                ParamTarget(f"{name}_moving_mean", AUX, layer.moving_mean, "vector"),
                ParamTarget(f"{name}_moving_var", AUX, layer.moving_variance, "vector")]
    if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
        layout = "conv" if isinstance(layer, keras.layers.Conv2D) else "dense"
        out = [ParamTarget(f"{name}_weight", ARG, layer.kernel, layout)]
        if layer.use_bias:
            out.append(ParamTarget(f"{name}_bias", ARG, layer.bias, "vector"))
        return out
    if layer.weights:
        raise ValueError(
            f"Layer {name!r} ({type(layer).__name__}) has weights but no ademxapp counterpart. "
            "Only Conv2D, Dense, BatchNormalization and PreActResidualUnit layers can be "
            "converted; build the model with keras_wideresnet.applications.")
    return []


def _walk(model: keras.Model) -> Iterator[tuple[str, keras.layers.Layer]]:
    for layer in model.layers:
        if isinstance(layer, PreActResidualUnit):
            yield from layer.named_sublayers.items()
        elif isinstance(layer, keras.Model):  # a nested backbone
            yield from _walk(layer)
        else:
            yield layer.name, layer


def ademxapp_targets(model: keras.Model) -> dict[str, ParamTarget]:
    """Every MXNet parameter name (without prefix) the model expects → its :class:`ParamTarget`.

    Implements the naming of docs/architecture.md §5.1–§5.2. The model must be built.
    """
    if not model.built:
        raise ValueError(f"Model {model.name!r} is not built; build it (e.g. call it on an "
                         "input) before converting weights.")
    targets: dict[str, ParamTarget] = {}
    for name, layer in _walk(model):
        for target in _layer_targets(name, layer):
            if target.name in targets:
                raise ValueError(f"Two layers of model {model.name!r} map to the MXNet name "
                                 f"{target.name!r}; layer names must be unique.")
            targets[target.name] = target
    return targets

