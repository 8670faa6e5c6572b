"""Finding residual units in a model and routing their gradients (docs/architecture.md §6.2, step 2).

Every residual unit of the family is a :class:`keras_wideresnet.layers.PreActResidualUnit`.
:func:`path_gates` attaches one scalar ``tf.Variable`` per unit through
``unit.set_path_gate(PathGate(var))``: value 1 sends the unit's gradient only through its
residual branch F, value 0 only through its shortcut. Forward values never change. The gates
are removed again when the context exits.

Projection shortcuts: in units with a 1×1 projection (the first unit of every block), the
"skip" path is the projection, i.e. ``bn{u}_branch2a → ReLU → res{u}_branch1`` (the projection
shares the branch's pre-activation, docs/architecture.md §1.3). A path of length k therefore
passes through exactly k residual branches, plus every projection of the units it skips.
Projections are not counted in k, exactly as the family's depth does not count them
(docs/architecture.md §2.3).
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import keras
import numpy as np
import tensorflow as tf

from keras_wideresnet.layers import PathGate, PreActResidualUnit, iter_layers


def find_residual_units(model: keras.layers.Layer) -> list[PreActResidualUnit]:
    """All :class:`PreActResidualUnit` layers inside ``model`` (nested models included).

    Units come in the order Keras tracks them (input to output for functional models); a unit
    shared by several calls is listed once.

    Raises:
      ValueError: if ``model`` is not a Keras layer or contains no residual unit.
    """
    if not isinstance(model, keras.layers.Layer):
        raise ValueError("`model` must be a keras.Model (or Layer) built from "
                         f"PreActResidualUnit layers. Received: {type(model).__name__}")
    units: list[PreActResidualUnit] = []
    seen: set[int] = set()
    for layer in iter_layers(model, include_self=True):
        if isinstance(layer, PreActResidualUnit) and id(layer) not in seen:
            seen.add(id(layer))
            units.append(layer)
    if not units:
        raise ValueError(
            f"Model {model.name!r} contains no keras_wideresnet.layers.PreActResidualUnit, so it "
            "has no residual paths to analyse. Build it with keras_wideresnet.applications or "
            "from PreActResidualUnit layers.")
    return units


class PathGates:
    """One scalar gate variable per residual unit; see :func:`path_gates`.

    Attributes:
      units: The gated units.
      variables: ``tf.Variable`` scalars (float32), ``variables[i]`` gates ``units[i]``.
    """

    def __init__(self, units: Sequence[PreActResidualUnit]):
        self.units = list(units)
        self.variables = [tf.Variable(1.0, trainable=False, dtype=tf.float32,
                                      name=f"path_gate_{u.name}") for u in self.units]

    @property
    def num_units(self) -> int:
        return len(self.units)

    @property
    def unit_names(self) -> list[str]:
        return [u.name for u in self.units]

    def assign(self, mask: Sequence[float] | np.ndarray | tf.Tensor) -> None:
        """Sets every gate from a length-n vector of 0/1 values (1 = through the branch)."""
        mask = tf.convert_to_tensor(mask, dtype=tf.float32)
        if mask.shape.rank != 1 or mask.shape[0] != self.num_units:
            raise ValueError(f"The gate mask needs one value per residual unit ({self.num_units}). "
                             f"Received shape {mask.shape}.")
        for i, var in enumerate(self.variables):
            var.assign(mask[i])


@contextlib.contextmanager
def path_gates(model_or_units: keras.layers.Layer | Sequence[PreActResidualUnit]
               ) -> Iterator[PathGates]:
    """Context manager that installs gradient gates on every residual unit and removes them.

    Example::

        with path_gates(model) as gates:
            gates.assign([1, 0, 0, 1, 0, 0])   # gradient through the branches of units 0 and 3
            ...                                 # forward + backward here

    Functions traced inside the context read the gates' *current* values at run time, so a
    ``tf.function`` traced once serves every mask.

    Raises:
      ValueError: if a unit already carries a gate (nested or concurrent analyses).
    """
    if isinstance(model_or_units, keras.layers.Layer):
        units = find_residual_units(model_or_units)
    else:
        units = list(model_or_units)
        if not units or not all(isinstance(u, PreActResidualUnit) for u in units):
            raise ValueError("`model_or_units` must be a keras model or a non-empty list of "
                             "PreActResidualUnit layers.")
    busy = [u.name for u in units if getattr(u, "_path_gate", None) is not None]
    if busy:
        raise ValueError(f"Units {busy} already carry a path gate: another path analysis is "
                         "running on this model. Finish it (leave its `path_gates` context) first.")
    gates = PathGates(units)
    try:
        for unit, var in zip(gates.units, gates.variables):
            unit.set_path_gate(PathGate(var))
        yield gates
    finally:
        for unit in gates.units:
            unit.set_path_gate(None)
