"""Path counts, sampling determinism and effective depth (paper §3.1-3.2: the unravelled view,
path lengths and the effective depth)."""

import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_wideresnet.analysis import (
    EffectiveDepthConfig,
    PathAnalysisResult,
    analyze_paths,
    effective_depth,
    find_residual_units,
    path_counts,
    path_length_distribution,
    sample_plan,
)
from keras_wideresnet.applications import ResNet16, ResNet38
from tests.tolerances import conv_depth_and_reduction, net_rtol


def test_path_counts_are_binomial():
    assert path_counts(0) == [1]
    assert path_counts(4) == [1, 4, 6, 4, 1]
    counts = path_counts(17)
    assert sum(counts) == 2 ** 17 and counts[8] == math.comb(17, 8) == 24310
    assert sum(path_counts(54)) == 2 ** 54  # Veit's ResNet-110, exact integers
    dist = path_length_distribution(6)
    assert dist == pytest.approx([c / 64 for c in (1, 6, 15, 20, 15, 6, 1)])
    with pytest.raises(ValueError, match="num_units"):
        path_counts(-1)


@pytest.mark.parametrize("ctor,units,projections", [
    (ResNet16, 6, 6),
    (ResNet38, 17, 6),
])
def test_family_unit_counts(ctor, units, projections):
    model = ctor(width_multiplier=1 / 32, input_shape=(32, 32, 3), classes=4, variant="a1")
    found = find_residual_units(model)
    assert len(found) == units
    assert sum(u.projection for u in found) == projections
    assert found[0].name == "res2a" and found[-1].name == "res7a"


def test_sample_plan_deterministic_and_exhaustive_when_small():
    a, ex_a = sample_plan(10, 4, num_batches=2, samples_per_k=50, seed=3)
    b, ex_b = sample_plan(10, 4, num_batches=2, samples_per_k=50, seed=3)
    c, _ = sample_plan(10, 4, num_batches=2, samples_per_k=50, seed=4)
    assert a == b and not ex_a and not ex_b and a != c
    assert len(a) == 50 and all(len(s) == 4 and len(set(s)) == 4 for s, _ in a)
    assert {bi for _, bi in a} == {0, 1}
    pairs, exhaustive = sample_plan(10, 1, num_batches=2, samples_per_k=50, seed=3)
    assert exhaustive and len(pairs) == 20 and len({p for p in pairs}) == 20
    pairs, exhaustive = sample_plan(10, 10, num_batches=1, samples_per_k=50, seed=0)
    assert exhaustive and pairs == [(tuple(range(10)), 0)]


def test_subsets_are_uniform():
    pairs, exhaustive = sample_plan(20, 3, num_batches=1, samples_per_k=1000, seed=0)
    assert not exhaustive  # C(20, 3) = 1140 > 1000
    counts = np.bincount([u for s, _ in pairs for u in s], minlength=20)
    assert counts.sum() == 3000 and counts.min() > 100 and counts.max() < 200  # expected 150


def test_analyze_paths_reports_and_is_deterministic(tiny_model, tiny_batch):
    x, y = tiny_batch
    batches = [(x, y), (x[::-1].copy(), y[::-1].copy())]
    r1 = analyze_paths(tiny_model, batches, samples_per_k=5, seed=7, keep_samples=True,
                       verbose=False)
    r2 = analyze_paths(tiny_model, batches, samples_per_k=5, seed=7, keep_samples=True,
                       verbose=False)
    r3 = analyze_paths(tiny_model, batches, samples_per_k=5, seed=8, keep_samples=True,
                       verbose=False)
    assert r1.path_lengths == [0, 1, 2, 3, 4] and r1.counts == [1, 4, 6, 4, 1]
    assert r1.num_samples == [2, 5, 5, 5, 2] and r1.exhaustive == [True, False, False, False, True]
    assert r1.projection_units == ["res2a", "res3a"]
    assert r1.samples == r2.samples and r1.mean == r2.mean and r1.std == r2.std
    assert r1.samples["2"] != r3.samples["2"]  # another seed draws other subsets
    assert r1.samples["0"] == r3.samples["0"]  # exhaustive lengths do not depend on the seed
    for i, k in enumerate(r1.path_lengths):
        assert r1.mean[i] == pytest.approx(np.mean(r1.samples[str(k)]))
        assert r1.std[i] == pytest.approx(np.std(r1.samples[str(k)]))
        assert r1.total[i] == pytest.approx(r1.counts[i] * r1.mean[i])
    assert all(m > 0 for m in r1.mean)
    # JSON round trip.
    back = PathAnalysisResult.from_dict(json.loads(r1.to_json()))
    assert back == r1


def test_analyze_paths_values_match_direct_gradients(tiny_model, tiny_batch):
    """k = 0 and k = n are single paths: compare them with independently computed gradients."""
    x, y = tiny_batch
    r = analyze_paths(tiny_model, (x, y), samples_per_k=3, path_lengths=[0, 4], verbose=False)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    units = find_residual_units(tiny_model)
    expected = []
    for through_branch in (False, True):
        # Rebuild each unit's sum with explicit stop_gradients: a reference independent of gates.
        originals = [u._forward for u in units]
        for u, orig in zip(units, originals):
            def patched(inp, training=None, _u=u, _orig=orig, _b=through_branch):
                from keras_wideresnet.layers import PathGate
                _u.set_path_gate(PathGate(tf.constant(1.0 if _b else 0.0)))
                try:
                    return _orig(inp, training=training)
                finally:
                    _u.set_path_gate(None)
            u._forward = patched
        xt = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            value = loss(y, tiny_model(xt, training=False))
        expected.append(float(tf.norm(tape.gradient(value, xt))))
        for u, orig in zip(units, originals):
            u._forward = orig
    # The same backward passes, run by analyze_paths or by hand: the network's float32 bound.
    assert r.mean == pytest.approx(expected, rel=net_rtol(*conv_depth_and_reduction(tiny_model)))
    assert r.full_gradient_norm > 0


def test_training_mode_restores_bn_statistics(tiny_model, tiny_batch):
    before = [v.numpy().copy() for v in tiny_model.non_trainable_variables]
    analyze_paths(tiny_model, tiny_batch, samples_per_k=2, path_lengths=[1], training=True,
                  verbose=False)
    for b, v in zip(before, tiny_model.non_trainable_variables):
        np.testing.assert_array_equal(b, v.numpy())


def test_dataset_input_and_custom_loss(tiny_model, tiny_batch):
    x, y = tiny_batch
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(2)
    calls = []

    def loss(y_true, y_pred):
        calls.append(1)
        return keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)

    r = analyze_paths(tiny_model, ds, samples_per_k=4, path_lengths=[1, 2], loss_fn=loss,
                      verbose=False)
    assert r.num_batches == 2 and calls and r.loss == "loss"


def test_bad_arguments(tiny_model, tiny_batch):
    with pytest.raises(ValueError, match="path_lengths"):
        analyze_paths(tiny_model, tiny_batch, path_lengths=[5], verbose=False)
    with pytest.raises(ValueError, match="samples_per_k"):
        analyze_paths(tiny_model, tiny_batch, samples_per_k=0, verbose=False)
    with pytest.raises(ValueError, match="infinite"):
        analyze_paths(tiny_model, tf.data.Dataset.from_tensors(tiny_batch).repeat(),
                      verbose=False)
    with pytest.raises(ValueError, match="empty"):
        analyze_paths(tiny_model, [], verbose=False)
    with pytest.raises(ValueError, match="loss_fn"):
        analyze_paths(tiny_model, tiny_batch, loss_fn=3, verbose=False)


def test_effective_depth_definitions():
    ks = list(range(7))
    counts = path_counts(6)  # 1 6 15 20 15 6 1
    g = [1.0, 0.5, 0.2, 0.05, 0.01, 0.001, 0.0001]
    total = [c * v for c, v in zip(counts, g)]  # 1 3 3 1 .15 .006 .0001
    r = effective_depth(ks, counts, g, EffectiveDepthConfig("total", 0.1))
    assert r["effective_depth"] == 3 and r["effective_range"] == [0, 3]
    r = effective_depth(ks, counts, g, EffectiveDepthConfig("total", 0.5))
    assert r["effective_depth"] == 2 and r["effective_range"] == [1, 2]
    r = effective_depth(ks, counts, g, EffectiveDepthConfig("cumulative", 0.9))
    cum = np.cumsum(total) / np.sum(total)
    assert r["effective_depth"] == int(np.argmax(cum >= 0.9)) == 3
    r = effective_depth(ks, counts, g, EffectiveDepthConfig("relative", 0.01, reference_k=0))
    assert r["effective_depth"] == 4
    r = effective_depth(ks, counts, g, EffectiveDepthConfig("relative", 0.1, reference_k=1))
    assert r["effective_depth"] == 3
    assert effective_depth(ks, counts, [0.0] * 7)["effective_depth"] is None
    assert EffectiveDepthConfig("cumulative").fraction == 0.9
    with pytest.raises(ValueError, match="method"):
        EffectiveDepthConfig("median")
    with pytest.raises(ValueError, match="fraction"):
        EffectiveDepthConfig("total", 1.5)
    with pytest.raises(ValueError, match="reference_k"):
        effective_depth([1, 2], [6, 15], [1, 1], EffectiveDepthConfig("relative", reference_k=0))
    with pytest.raises(ValueError, match="increasing"):
        effective_depth([2, 1], [6, 15], [1, 1])


def test_result_effective_depth_is_reconfigurable(tiny_model, tiny_batch):
    r = analyze_paths(tiny_model, tiny_batch, samples_per_k=3, verbose=False)
    c = r.with_effective_depth(EffectiveDepthConfig("cumulative", 0.999))
    assert c.effective_depth_config["method"] == "cumulative"
    assert c.effective_depth == effective_depth(
        r.path_lengths, r.counts, r.mean, EffectiveDepthConfig("cumulative", 0.999)
    )["effective_depth"]
    assert c.mean == r.mean
