"""Exactness of the path decomposition (paper spec §4): backprop is linear given the forward
values, so the input gradients of all 2^n paths sum to the ordinary input gradient."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_wideresnet.analysis import PathGradient, find_residual_units, input_gradient, path_gates


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
    np.testing.assert_allclose(total, full, rtol=1e-4, atol=1e-6 * np.abs(full).max())
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
    np.testing.assert_allclose(during, before, rtol=1e-6)
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
        total = np.sum([pg.gradient(x, y, m).numpy()
                        for m in itertools.product([0.0, 1.0], repeat=4)], axis=0)
    np.testing.assert_allclose(total, full, rtol=1e-4, atol=1e-6 * np.abs(full).max())


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
