"""Exactness of the path decomposition (paper §3.1, the unravelled view of residual networks):
backprop is linear given the forward values, so the input gradients of all 2^n paths sum to the
ordinary input gradient."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_wideresnet.analysis import PathGradient, find_residual_units, input_gradient, path_gates
from tests.tolerances import conv_depth_and_reduction, gamma, net_rtol


def _assert_decomposition_exact(total, full, per_subset, model):
    """Each of the 2^n backward passes (and the full one) carries the network's float32 bound on
    its own scale, and their sum rounds once per term: the bound of a sum of those errors."""
    rtol = net_rtol(*conv_depth_and_reduction(model)) + gamma(len(per_subset))
    scale = sum(float(np.abs(g).max()) for g in per_subset) + float(np.abs(full).max())
    np.testing.assert_allclose(total, full, rtol=0, atol=rtol * scale)


@pytest.mark.parametrize("training", [False, True])
def test_sum_over_all_subsets_equals_full_gradient(tiny_model, tiny_batch, training):
    x, y = tiny_batch
    units = find_residual_units(tiny_model)
    assert [u.name for u in units] == ["res2a", "res2b1", "res3a", "res3b1"]
    state = [v.numpy() for v in tiny_model.non_trainable_variables]
    full = input_gradient(tiny_model, x, y, training=training).numpy()
    with path_gates(tiny_model) as gates:
        pg = PathGradient(tiny_model, gates, training=training)
        per_subset = [pg.gradient(x, y, mask).numpy()
                      for mask in itertools.product([0.0, 1.0], repeat=len(units))]
    total = np.sum(per_subset, axis=0)
    assert len(per_subset) == 2 ** 4
    assert np.abs(full).max() > 1e-4
    _assert_decomposition_exact(total, full, per_subset, tiny_model)
    # The decomposition is not trivial: every single path differs from the full gradient.
    assert all(not np.allclose(g, full, rtol=1e-3) for g in per_subset)
    # Restore moving statistics in training mode to compare like with like.
    for v, s in zip(tiny_model.non_trainable_variables, state):
        v.assign(s)


def test_single_path_is_not_exact_sum_when_a_subset_is_missing(tiny_model, tiny_batch):
    """Guards the test above against a trivially passing implementation."""
    x, y = tiny_batch
    full = input_gradient(tiny_model, x, y).numpy()
    with path_gates(tiny_model) as gates:
        pg = PathGradient(tiny_model, gates)
        masks = list(itertools.product([0.0, 1.0], repeat=4))[:-1]  # drop the all-branch path
        partial = np.sum([pg.gradient(x, y, m).numpy() for m in masks], axis=0)
    assert not np.allclose(partial, full, rtol=1e-3)


def test_gates_leave_forward_values_unchanged_and_are_removed(tiny_model, tiny_batch):
    x, _ = tiny_batch
    before = tiny_model(x, training=False).numpy()
    with path_gates(tiny_model) as gates:
        gates.assign([1, 0, 1, 0])
        during = tiny_model(x, training=False).numpy()
        with pytest.raises(ValueError, match="already carry a path gate"):
            with path_gates(tiny_model):
                pass
    # Gates of 0 and 1 multiply exactly; only another kernel choice could differ.
    rtol = net_rtol(*conv_depth_and_reduction(tiny_model))
    np.testing.assert_allclose(during, before, rtol=rtol, atol=rtol * np.abs(before).max())
    assert all(u._path_gate is None for u in find_residual_units(tiny_model))


def test_gates_removed_after_an_error(tiny_model):
    with pytest.raises(RuntimeError):
        with path_gates(tiny_model):
            raise RuntimeError("boom")
    assert all(u._path_gate is None for u in find_residual_units(tiny_model))


def test_nested_model_units_found_and_decomposition_exact(tiny_model_factory, tiny_batch):
    inner = tiny_model_factory()
    inputs = keras.Input((16, 16, 3))
    outer = keras.Model(inputs, keras.layers.Activation("linear", name="out")(inner(inputs)))
    units = find_residual_units(outer)
    assert len(units) == 4
    x, y = tiny_batch
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    full = input_gradient(outer, x, y, loss_fn=loss).numpy()
    with path_gates(outer) as gates:
        pg = PathGradient(outer, gates, loss_fn=loss)
        per_subset = [pg.gradient(x, y, m).numpy() for m in itertools.product([0.0, 1.0], repeat=4)]
    _assert_decomposition_exact(np.sum(per_subset, axis=0), full, per_subset, inner)


def test_errors_name_the_input(tiny_model, tiny_batch):
    with pytest.raises(ValueError, match="contains no keras_wideresnet"):
        find_residual_units(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]))
    with pytest.raises(ValueError, match="must be a keras.Model"):
        find_residual_units("resnet38")
    x, y = tiny_batch
    with path_gates(tiny_model) as gates:
        pg = PathGradient(tiny_model, gates)
        with pytest.raises(ValueError, match="one 0/1 value per unit"):
            pg.gradient(x, y, [1, 0])
        with pytest.raises(ValueError, match="one value per residual unit"):
            gates.assign(tf.zeros([3]))
