"""Writes the MXNet fixtures under tests/weights/fixtures/ with real MXNet (not run by pytest).

Run it in its own virtualenv::

    python3 -m venv /tmp/mxvenv
    /tmp/mxvenv/bin/pip install mxnet==1.9.1 "numpy<1.24"
    /tmp/mxvenv/bin/python tests/weights/make_mxnet_fixtures.py

The symbols below re-create ademxapp's ``util/symbol/resnet_v2.py`` graphs (docs/architecture.md
§1–§3) with MXNet's own operators and the exact ademxapp parameter names (§5.1–§5.2), at reduced
widths (``max(1, round(w * multiplier))``, the rule of ``FamilySpec.scaled``). Strides, dilations
and pools are written out per unit from the tables of that document, *independently* of the Keras builder, so a
disagreement between the two shows up as an output mismatch in ``test_weights_convert.py``.

Outputs (all small):

* ``cls_rna-a1_cls10.params`` — ``mx.nd.save`` of a classification net at width ×1/32 with
  a ``linear10`` top, random weights and BN statistics, stored as float16. Model A and Model
  A1 have the same parameters (docs/architecture.md §2.2), so the same file drives three MXNet
  graphs: A1, A with pad-0 "caffe" pooling and A with pad-1 pooling.
* ``cls_rna-a1_cls10.npz`` — ``image`` (N, H, W, 3) uint8 RGB input (normalised as in
  docs/architecture.md §5.5 before MXNet sees it), ``width_multiplier``, and the MXNet logits ``logits_a1``,
  ``logits_a_caffe``, ``logits_a_pad1`` (N, 10), inference mode.
* ``seg_rna-a1_cls5_s8.params`` / ``.npz`` — float32, width ×1/64: the OS-8 A1 FCN with the
  "2 conv." head (``conv6a``, ``linear5``), dropout 0.3/0.5 in B6/B7 (identity at inference);
  ``logits`` (N, H/8, W/8, 5) channels last.
"""

from __future__ import annotations

import os

import mxnet as mx
import numpy as np

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
BN_EPS = 1.001e-5  # ademxapp util/symbol/symbol.py


# Set per fixture in main(); the scaling rule of FamilySpec.scaled.
WIDTH_MULTIPLIER = 1 / 32
IMAGENET_MEAN = np.array((0.485, 0.456, 0.406), np.float32)
IMAGENET_STD = np.array((0.229, 0.224, 0.225), np.float32)


def w(width: int) -> int:
    return max(1, int(round(width * WIDTH_MULTIPLIER)))


def preprocess(image_uint8):
    """ademxapp 'rna' normalisation (docs/architecture.md §5.5), same arithmetic as
    applications.preprocess_input."""
    return ((image_uint8.astype(np.float32) / 255.0) - IMAGENET_MEAN) / IMAGENET_STD


# Block B2..B7 of ResNet-38: (level, units, branch widths) (the paper's ResNet-38).
LEVELS = ((2, 3, (128, 128)), (3, 3, (256, 256)), (4, 6, (512, 512)), (5, 3, (512, 1024)),
          (6, 1, (512, 1024, 2048)), (7, 1, (1024, 2048, 4096)))


def unit_ids(level: int, n: int) -> list[str]:
    return [f"{level}a"] + [f"{level}b{i}" for i in range(1, n)]


def bn_relu(data, name):
    bn = mx.sym.BatchNorm(data, name=name, eps=BN_EPS, momentum=0.9, fix_gamma=False)
    return mx.sym.Activation(bn, act_type="relu", name=f"{name}_relu")


def conv(data, name, num_filter, kernel, stride=1, dilate=1, no_bias=True):
    if kernel == 1:
        dilate = 1
    pad = ((kernel - 1) * dilate + 1) // 2
    return mx.sym.Convolution(data, name=name, num_filter=num_filter, kernel=(kernel, kernel),
                              stride=(stride, stride), pad=(pad, pad), dilate=(dilate, dilate),
                              no_bias=no_bias)


def res_unit(data, uid, widths, stride, dilations, projection, dropout=0.0):
    """Pre-activation unit (docs/architecture.md §1): BN-ReLU before each conv; the projection shortcut shares
    the first pre-activation; stride on the first conv; dropout before the last conv."""
    kernels = (3, 3) if len(widths) == 2 else (1, 3, 1)
    tags = ("branch2a", "branch2b1", "branch2b2")
    shortcut, h = data, data
    for i, (tag, k, width, dil) in enumerate(zip(tags, kernels, widths, dilations)):
        h = bn_relu(h, f"bn{uid}_{tag}")
        if i == 0 and projection:
            shortcut = conv(h, f"res{uid}_branch1", widths[-1], 1, stride)
        if i == len(widths) - 1 and dropout > 0:
            h = mx.sym.Dropout(h, p=dropout, name=f"drop{uid}")
        h = conv(h, f"res{uid}_{tag}", width, k, stride if i == 0 else 1, dil)
    return shortcut + h


def pool(data, name, pad):
    return mx.sym.Pooling(data, name=name, kernel=(3, 3), stride=(2, 2), pad=(pad, pad),
                          pool_type="max", pooling_convention="valid")


def trunk(model: str):
    """``model``: "a1" (OS 32), "a1_os8" (docs/architecture.md §3.2), "a_caffe" / "a_pad1"
    (Model A, §2.2)."""
    x = mx.sym.Variable("data")
    x = conv(x, "conv1a", w(64), 3)
    pool_pad = {"a_caffe": 0, "a_pad1": 1}.get(model)
    for level, n, widths in LEVELS:
        widths = tuple(w(c) for c in widths)
        if pool_pad is not None and level <= 6:  # pool1..pool5 before B2..B6
            x = pool(x, f"pool{level - 1}", pool_pad)
        for i, uid in enumerate(unit_ids(level, n)):
            stride, dils, drop = 1, (1,) * len(widths), 0.0
            if model == "a1" and i == 0 and level <= 6:
                stride = 2
            if model == "a1_os8":
                if i == 0 and level <= 4:
                    stride = 2
                if level == 5:  # 5a: first conv d1, second d2; 5b*: d2 (docs/architecture.md §3.2)
                    dils = (1, 2) if i == 0 else (2, 2)
                if level in (6, 7):
                    dils = (1, 4, 1)
                    drop = 0.3 if level == 6 else 0.5
            x = res_unit(x, uid, widths, stride, dils, projection=i == 0, dropout=drop)
    return bn_relu(x, "bn7")


def classifier(model: str, classes: int):
    x = mx.sym.Pooling(trunk(model), global_pool=True, pool_type="avg", kernel=(1, 1),
                       name="pool7")
    return mx.sym.FullyConnected(mx.sym.Flatten(x), num_hidden=classes, name=f"linear{classes}")


def segmenter(classes: int):
    x = trunk("a1_os8")
    x = conv(x, "conv6a", w(512), 3, dilate=12, no_bias=False)
    x = mx.sym.Activation(x, act_type="relu", name="conv6a_relu")
    return conv(x, f"linear{classes}", classes, 3, dilate=12, no_bias=False)


def random_params(sym, data_shape, rng, dtype=np.float32):
    """Random conv/FC weights, BN γ/β and moving statistics (var > 0).

    Values are rounded to ``dtype`` (float16 halves the fixture size and exercises the
    reader's dtype handling); MXNet computes in float32 on the rounded values."""
    arg_shapes, _, aux_shapes = sym.infer_shape(data=data_shape)
    args, auxs = {}, {}
    for name, shape in zip(sym.list_arguments(), arg_shapes):
        if name == "data":
            continue
        if name.endswith("_weight"):
            fan_in = int(np.prod(shape[1:]))
            v = rng.normal(0.0, np.sqrt(1.0 / fan_in), shape)
        elif name.endswith("_gamma"):
            v = rng.uniform(0.5, 1.5, shape)
        else:  # _beta, _bias
            v = rng.normal(0.0, 0.1, shape)
        args[name] = mx.nd.array(v.astype(dtype), dtype=dtype)
    for name, shape in zip(sym.list_auxiliary_states(), aux_shapes):
        v = (rng.normal(0.0, 0.2, shape) if name.endswith("_moving_mean")
             else rng.uniform(0.5, 2.0, shape))
        auxs[name] = mx.nd.array(v.astype(dtype), dtype=dtype)
    return args, auxs


def forward(sym, args, auxs, image_nhwc):
    data = mx.nd.array(preprocess(image_nhwc).transpose(0, 3, 1, 2))
    f32 = lambda d: {k: v.astype(np.float32) for k, v in d.items()}  # noqa: E731
    exe = sym.bind(mx.cpu(), args=dict(f32(args), data=data), aux_states=f32(auxs),
                   grad_req="null")
    out = exe.forward(is_train=False)[0].asnumpy()
    return out.transpose(0, 2, 3, 1) if out.ndim == 4 else out


def save_params(path, args, auxs):
    d = {f"arg:{k}": v for k, v in args.items()}
    d.update({f"aux:{k}": v for k, v in auxs.items()})
    mx.nd.save(path, d)


def main():
    global WIDTH_MULTIPLIER
    os.makedirs(OUT_DIR, exist_ok=True)
    rng = np.random.default_rng(20161130)
    for name in os.listdir(OUT_DIR):
        os.remove(os.path.join(OUT_DIR, name))

    # Classification: one file, three graphs (A1; A with caffe / pad-1 pooling).
    WIDTH_MULTIPLIER, classes = 1 / 32, 10
    image = rng.integers(0, 256, (2, 87, 75, 3), dtype=np.uint8)  # odd sizes on purpose
    sym_a1 = classifier("a1", classes)
    args, auxs = random_params(sym_a1, (2, 3, 87, 75), rng, np.float16)
    outputs = {"image": image, "width_multiplier": WIDTH_MULTIPLIER}
    for model in ("a1", "a_caffe", "a_pad1"):
        sym = classifier(model, classes)
        assert sorted(sym.list_arguments()) == sorted(sym_a1.list_arguments())
        outputs[f"logits_{model}"] = forward(sym, args, auxs, image)
    save_params(os.path.join(OUT_DIR, f"cls_rna-a1_cls{classes}.params"), args, auxs)
    np.savez_compressed(os.path.join(OUT_DIR, f"cls_rna-a1_cls{classes}.npz"), **outputs)

    # Segmentation: A1 at output stride 8 with the "2 conv." head.
    WIDTH_MULTIPLIER, classes = 1 / 64, 5
    image = rng.integers(0, 256, (2, 100, 116, 3), dtype=np.uint8)
    sym = segmenter(classes)
    args, auxs = random_params(sym, (2, 3, 100, 116), rng)
    logits = forward(sym, args, auxs, image)
    save_params(os.path.join(OUT_DIR, f"seg_rna-a1_cls{classes}_s8.params"), args, auxs)
    np.savez_compressed(os.path.join(OUT_DIR, f"seg_rna-a1_cls{classes}_s8.npz"),
                        image=image, logits=logits, width_multiplier=WIDTH_MULTIPLIER)

    for name in sorted(os.listdir(OUT_DIR)):
        print(f"{name}: {os.path.getsize(os.path.join(OUT_DIR, name))} bytes")
    for k, v in outputs.items():
        print(k, np.shape(v), float(np.abs(v).max()))
    print("seg logits", logits.shape, float(np.abs(logits).max()))


if __name__ == "__main__":
    main()
