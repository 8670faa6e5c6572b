"""A plain PyTorch port of the family, the peer the benchmark measures side by side.

Built from the same :class:`~keras_wideresnet.models.spec.FamilySpec` as the Keras model, in the
style of the public PyTorch ports (Mapillary's ``WiderResNetA2``, NVIDIA's ``wider_resnet38_a2``):
``nn.BatchNorm2d`` → ``ReLU`` → ``nn.Conv2d`` pre-activation units, channels-last memory format
(what oneDNN prefers on CPU), ``torch.autocast`` for bf16. Classification only, at the spec's
natural output stride; the parameter and FLOP counts equal the Keras model's (tested), so the
two run the same network.
"""

from __future__ import annotations

import torch
from torch import nn

from keras_wideresnet.models.spec import FamilySpec

BN_EPS = 1.001e-5


class _Unit(nn.Module):
    def __init__(self, cin: int, filters: tuple[int, ...], unit_type: str, stride: int, projection: bool):
        super().__init__()
        kernels = (3, 3) if unit_type == "basic" else (1, 3, 1)
        self.bns, self.convs = nn.ModuleList(), nn.ModuleList()
        c = cin
        for i, (k, f) in enumerate(zip(kernels, filters)):
            self.bns.append(nn.BatchNorm2d(c, eps=BN_EPS, momentum=0.1))
            self.convs.append(nn.Conv2d(c, f, k, stride=stride if i == 0 else 1, padding=k // 2, bias=False))
            c = f
        self.shortcut = nn.Conv2d(cin, filters[-1], 1, stride=stride, bias=False) if projection else None

    def forward(self, x):
        h = x
        shortcut = x
        for i, (bn, conv) in enumerate(zip(self.bns, self.convs)):
            h = torch.relu(bn(h))
            if i == 0 and self.shortcut is not None:
                shortcut = self.shortcut(h)
            h = conv(h)
        return shortcut + h


class TorchWideResNet(nn.Module):
    """The family's classifier (docs/architecture.md §1–§2) as a PyTorch module, NCHW in, logits out."""

    def __init__(self, spec: FamilySpec, classes: int = 1000):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, spec.stem_filters, 3, padding=1, bias=False)]
        c = spec.stem_filters
        for block in spec.blocks:
            stride = 1
            if block.downsample == "pool":
                pad = 1 if spec.pool_padding == "pad1" else 0
                layers.append(nn.MaxPool2d(3, stride=2, padding=pad))
            elif block.downsample == "conv":
                stride = 2
            for i in range(block.num_units):
                layers.append(_Unit(c, tuple(block.filters), block.unit_type, stride if i == 0 else 1, i == 0))
                c = block.filters[-1]
        self.features = nn.Sequential(*layers)
        self.bn = nn.BatchNorm2d(c, eps=BN_EPS, momentum=0.1)
        self.fc = nn.Linear(c, classes)

    def forward(self, x):
        x = torch.relu(self.bn(self.features(x)))
        return self.fc(x.mean(dim=(2, 3)))


def count_flops(model: nn.Module, resolution: int) -> int:
    """2 × MACs of every Conv2d/Linear in one forward pass of one image."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            total += 2 * output.numel() * k
        else:
            total += 2 * output.numel() * module.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, 3, resolution, resolution))
    finally:
        for h in handles:
            h.remove()
    return total


def set_bf16_math(enabled: bool) -> None:
    """oneDNN's BF16 math mode for float32 convolutions and matmuls (PyTorch's counterpart of
    ``TF_SET_ONEDNN_FPMATH_MODE=BF16``), or strict float32."""
    mode = "bf16" if enabled else "ieee"
    torch.backends.mkldnn.conv.fp32_precision = mode
    torch.backends.mkldnn.matmul.fp32_precision = mode


def make_step(spec: FamilySpec, *, kind: str, precision: str, resolution: int, batch_size: int,
              classes: int, bf16_math: bool = False):
    """``(step, flops_per_image, params)``: ``step()`` runs one inference or SGD (Nesterov 0.9)
    training step on a fixed random batch and returns a small tensor (fetching it synchronises).
    ``bf16_math``: float32 in oneDNN's BF16 math mode (:func:`set_bf16_math`)."""
    if precision not in ("float32", "mixed_bfloat16"):
        raise ValueError(f"The PyTorch peer runs float32 or mixed_bfloat16, not {precision!r}.")
    if bf16_math and precision != "float32":
        raise ValueError("bf16_math is a float32 math mode; mixed_bfloat16 already computes in bf16.")
    set_bf16_math(bf16_math)
    torch.manual_seed(0)
    model = TorchWideResNet(spec, classes)
    flops = count_flops(model, resolution)
    params = int(sum(p.numel() for p in model.parameters()))
    model = model.to(memory_format=torch.channels_last).train(kind == "training")
    x = torch.rand(batch_size, 3, resolution, resolution).to(memory_format=torch.channels_last)
    labels = torch.randint(0, classes, (batch_size,))
    bf16 = precision == "mixed_bfloat16"
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            if kind == "inference":
                with torch.inference_mode():
                    return model(x)[:, :1].float().numpy()
            loss = nn.functional.cross_entropy(model(x).float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach().numpy()

    return step, flops, params
