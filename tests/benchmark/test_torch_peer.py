"""The PyTorch peer (benchmark.torch_peer) is the same network as the Keras model."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")  # a test extra; CI installs it

from keras_wideresnet.applications import WideResNet  # noqa: E402
from tools.benchmarking import flops as flops_lib  # noqa: E402
from tools.benchmarking import torch_peer  # noqa: E402
from keras_wideresnet.layers import PreActResidualUnit  # noqa: E402
from keras_wideresnet.models.spec import get_spec  # noqa: E402
from tests.tolerances import conv_depth_and_reduction, net_rtol  # noqa: E402


def _copy_keras_to_torch(model, peer):
    """ademxapp-named Keras weights into the port (HWIO → OIHW), in network order."""
    units = [l for l in model.layers if isinstance(l, PreActResidualUnit)]
    torch_units = [m for m in peer.features if isinstance(m, torch_peer._Unit)]
    assert len(units) == len(torch_units)

    def conv(dst, src):
        dst.weight.data = torch.from_numpy(np.transpose(src.kernel.numpy(), (3, 2, 0, 1)).copy())

    def bn(dst, src):
        for name, value in (("weight", src.gamma), ("bias", src.beta), ("running_mean", src.moving_mean),
                            ("running_var", src.moving_variance)):
            getattr(dst, name).data = torch.from_numpy(value.numpy().copy())

    conv(peer.features[0], model.get_layer("conv1a"))
    for unit, tunit in zip(units, torch_units):
        for (k_bn, k_conv, *_), t_bn, t_conv in zip(unit._convs, tunit.bns, tunit.convs):
            bn(t_bn, k_bn)
            conv(t_conv, k_conv)
        if unit.shortcut_conv is not None:
            conv(tunit.shortcut, unit.shortcut_conv)
    bn(peer.bn, model.get_layer("bn7"))
    dense = model.layers[-1]
    peer.fc.weight.data = torch.from_numpy(dense.kernel.numpy().T.copy())
    peer.fc.bias.data = torch.from_numpy(dense.bias.numpy().copy())


@pytest.mark.parametrize("name", ["resnet38_a", "resnet38_a1"])
def test_port_computes_the_keras_network(name):
    spec = get_spec(name).scaled(1 / 32)
    model = WideResNet(spec, input_shape=(40, 40, 3), classes=7, classifier_activation=None)
    rng = np.random.default_rng(0)
    for w in model.weights:  # non-trivial BN statistics
        if "moving_variance" in w.path:
            w.assign(rng.uniform(0.5, 2.0, w.shape))
        elif "moving_mean" in w.path or "beta" in w.path:
            w.assign(rng.normal(0.0, 0.3, w.shape))
    peer = torch_peer.TorchWideResNet(spec, classes=7)
    assert sum(p.numel() for p in peer.parameters()) == model.count_params() - sum(
        int(np.prod(w.shape)) for w in model.non_trainable_weights)
    assert torch_peer.count_flops(peer, 40) == flops_lib.count_flops(model, (40, 40, 3)).conv_dense
    _copy_keras_to_torch(model, peer)
    x = rng.normal(size=(2, 40, 40, 3)).astype("float32")
    want = model(x, training=False).numpy()
    with torch.no_grad():
        got = peer.eval()(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
    # PyTorch's own float32 kernels: the network bound, against the logits' scale.
    rtol = net_rtol(*conv_depth_and_reduction(model))
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.abs(want).max())


def test_training_step_runs_and_rejects_other_precisions():
    spec = get_spec("resnet38_a").scaled(1 / 32)
    step, flops, params = torch_peer.make_step(spec, kind="training", precision="mixed_bfloat16",
                                               resolution=32, batch_size=2, classes=5)
    assert np.isfinite(float(step())) and flops > 0 and params > 0
    with pytest.raises(ValueError, match="float32 or mixed_bfloat16"):
        torch_peer.make_step(spec, kind="inference", precision="mixed_float16", resolution=32,
                             batch_size=2, classes=5)


def test_bf16_math_is_a_float32_mode_and_is_reset():
    spec = get_spec("resnet38_a").scaled(1 / 32)
    try:
        step, _, _ = torch_peer.make_step(spec, kind="inference", precision="float32", resolution=32,
                                          batch_size=2, classes=5, bf16_math=True)
        assert torch.backends.mkldnn.conv.fp32_precision == "bf16" and np.isfinite(step()).all()
        with pytest.raises(ValueError, match="bf16_math is a float32 math mode"):
            torch_peer.make_step(spec, kind="inference", precision="mixed_bfloat16", resolution=32,
                                 batch_size=2, classes=5, bf16_math=True)
    finally:
        torch_peer.set_bf16_math(False)
    assert torch.backends.mkldnn.conv.fp32_precision == "ieee"
