"""FusedSGD against Keras' SGD: same weights and momentum after several steps."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
import keras

from keras_wideresnet.training.optimization import FusedSGD
from tests.tolerances import gamma

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))



def _assert_updates_close(a, b, steps: int = 3):
    """Each step rounds at most six times per element (momentum update, Nesterov's look-ahead,
    the weight update; with or without FMA), against values of the weights' scale."""
    np.testing.assert_allclose(a, b, rtol=0, atol=gamma(6 * steps) * float(np.abs(b).max()))


def _run(optimizer_cls, nesterov: bool, momentum: float, steps: int = 3, compiled: bool = True):
    rng = np.random.default_rng(0)
    init = [rng.normal(size=(3, 4)).astype("float32"), rng.normal(size=(4,)).astype("float32")]
    grads = [[rng.normal(size=v.shape).astype("float32") for v in init] for _ in range(steps)]
    variables = [keras.Variable(v) for v in init]
    opt = optimizer_cls(learning_rate=0.1, momentum=momentum, nesterov=nesterov)
    opt.build(variables)

    def apply(gs):
        opt.apply([tf.convert_to_tensor(g) for g in gs], variables)

    fn = tf.function(apply) if compiled else apply
    for gs in grads:
        fn(gs)
    slots = [np.asarray(m) for m in getattr(opt, "momentums", [])]
    return [np.asarray(v) for v in variables], slots


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("compiled", [False, True])
def test_fused_sgd_matches_keras_sgd(nesterov, compiled):
    ref_w, ref_m = _run(keras.optimizers.SGD, nesterov, 0.9, compiled=compiled)
    w, m = _run(FusedSGD, nesterov, 0.9, compiled=compiled)
    for a, b in zip(w + m, ref_w + ref_m):
        _assert_updates_close(a, b)
    assert not np.allclose(w[0], _run(keras.optimizers.SGD, nesterov, 0.0)[0][0])  # momentum mattered


def test_fused_sgd_without_momentum_falls_back():
    ref_w, _ = _run(keras.optimizers.SGD, False, 0.0)
    w, _ = _run(FusedSGD, False, 0.0)
    for a, b in zip(w, ref_w):
        _assert_updates_close(a, b)


_MIRRORED = textwrap.dedent("""
    import numpy as np, tensorflow as tf, keras
    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
    from keras_wideresnet.training.experiment import OptimizerConfig
    from keras_wideresnet.training.optimization import FusedSGD, build_optimizer

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        opt = build_optimizer(OptimizerConfig(schedule="constant", learning_rate=0.1), 10)
        opt.build(model.trainable_variables)
    assert isinstance(opt, FusedSGD)
    ref = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    ref.set_weights(model.get_weights())
    ref_opt = keras.optimizers.SGD(learning_rate=0.1, momentum=opt.momentum, nesterov=opt.nesterov)
    x = np.random.default_rng(1).normal(size=(8, 4)).astype("float32")

    @tf.function
    def step(batch):
        def replica(b):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(model(b)) / 8.0
            opt.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
        strategy.run(replica, args=(batch,))

    dist = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensor_slices(x).batch(8))
    for _ in range(2):
        for batch in dist:
            step(batch)
    for _ in range(2):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(ref(x)) / 8.0
        ref_opt.apply(tape.gradient(loss, ref.trainable_variables), ref.trainable_variables)
    # Two replicas' gradients are summed across devices (another order than one 8-row sum),
    # then two updates of six roundings each: gamma(8 + 12) of the weights' scale.
    n = 8 + 12
    for a, b in zip(model.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(a, b, rtol=0, atol=n * 2.0**-24 / (1 - n * 2.0**-24) * np.abs(b).max())
    for v in model.trainable_variables:  # both replicas hold the same updated values
        first, second = strategy.experimental_local_results(v.value)
        np.testing.assert_array_equal(first.numpy(), second.numpy())
    for m in opt.momentums:
        first, second = strategy.experimental_local_results(m.value)
        assert np.abs(first.numpy()).max() > 0
        np.testing.assert_array_equal(first.numpy(), second.numpy())
    print("MIRRORED OK")
""")


def test_fused_sgd_under_mirrored_strategy():
    """Per-replica update on 2 logical CPUs: the fused kernel finds each replica's variable and slot."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO)
    proc = subprocess.run([sys.executable, "-c", _MIRRORED], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "MIRRORED OK" in proc.stdout


def test_build_optimizer_fused_by_default():
    from keras_wideresnet.training.experiment import OptimizerConfig
    from keras_wideresnet.training.optimization import build_optimizer

    config = OptimizerConfig(schedule="constant", learning_rate=0.1)
    assert isinstance(build_optimizer(config, 10), FusedSGD)
    assert type(build_optimizer(config, 10, fused=False)) is keras.optimizers.SGD
    wrapped = build_optimizer(config, 10, mixed_precision="mixed_float16", fused=False)
    assert type(wrapped.inner_optimizer) is keras.optimizers.SGD
