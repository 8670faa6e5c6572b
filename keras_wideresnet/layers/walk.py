"""Walking a model's layers through public accessors only.

The fused-BN switch, the path analysis and FLOP counting need every layer nested in a model:
the residual units inside a functional model, and the BN and conv layers inside each unit.
:func:`iter_layers` reaches them through ``keras.Model.layers`` and the ``sublayers()`` method
of layers that own others (:meth:`PreActResidualUnit.sublayers`), so no caller depends on
Keras' private layer tracking.
"""

from __future__ import annotations

from typing import Iterator

import keras


def iter_layers(root: keras.layers.Layer, include_self: bool = False) -> Iterator[keras.layers.Layer]:
    """Every layer nested in ``root``, each once, depth first in tracking order.

    Descends into nested models (``Model.layers``) and into layers with a ``sublayers()`` method.
    A layer of another kind is a leaf: its own sub-layers, if it has any, are not visited.
    """
    seen: set[int] = set()

    def walk(layer: keras.layers.Layer, emit: bool) -> Iterator[keras.layers.Layer]:
        if id(layer) in seen:
            return
        seen.add(id(layer))
        if emit:
            yield layer
        if isinstance(layer, keras.Model):
            children = layer.layers
        elif callable(getattr(layer, "sublayers", None)):
            children = layer.sublayers()
        else:
            children = []
        for child in children:
            yield from walk(child, True)

    yield from walk(root, include_self)


__all__ = ["iter_layers"]
