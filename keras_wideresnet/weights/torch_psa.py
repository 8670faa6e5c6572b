"""Reads the community PyTorch conversion of Model A1 (psa / SEAM / 1-stage-wseg naming), e.g. ``ilsvrc-cls_rna-a1_cls1000_ep-0001.pth``, into ademxapp names.

Those files come from ``convert_mxnet_to_torch`` in jiwoon-ahn/psa and drop ``linear1000``, so
they fit a backbone without the classifier: ``ResNet38(variant="a1", include_top=False)`` or
a :class:`~keras_wideresnet.models.WideResNetBackbone`. Needs ``torch`` (optional).

Mapping: ``conv1a.weight`` → ``conv1a_weight``; ``b{L}.conv_{t}.weight`` →
``res{L}a_{t}_weight``; ``b{L}_{i}.conv_{t}.weight`` → ``res{L}b{i}_{t}_weight``;
``b….bn_{t}.{weight,bias,running_mean,running_var}`` → ``bn…_{t}_{gamma,beta,moving_mean,
moving_var}``; ``bn7.*`` → ``bn7_*``. Torch's ``num_batches_tracked`` counters are ignored.
"""

from __future__ import annotations

import os
import re
from typing import Any, Mapping

import numpy as np

from keras_wideresnet._extras import require

_BN_SUFFIX = {"weight": ("arg", "gamma"), "bias": ("arg", "beta"),
              "running_mean": ("aux", "moving_mean"), "running_var": ("aux", "moving_var")}
_UNIT_RE = re.compile(r"^b(?P<level>\d)(?:_(?P<index>\d+))?\.(?P<op>conv|bn)_(?P<tag>branch\w+)"
                      r"\.(?P<suffix>\w+)$")
_TOP_RE = re.compile(r"^(?P<layer>conv1a|bn7)\.(?P<suffix>\w+)$")


def psa_to_ademxapp_key(key: str) -> str | None:
    """``"b2_1.bn_branch2a.running_var"`` → ``"aux:bn2b1_branch2a_moving_var"``.

    Returns ``None`` for keys to ignore (``num_batches_tracked``); raises for unknown keys.
    """
    if key.endswith("num_batches_tracked"):
        return None
    m = _TOP_RE.match(key)
    if m:
        layer, suffix = m.group("layer"), m.group("suffix")
        if layer == "conv1a" and suffix == "weight":
            return "arg:conv1a_weight"
        if layer == "bn7" and suffix in _BN_SUFFIX:
            kind, name = _BN_SUFFIX[suffix]
            return f"{kind}:bn7_{name}"
    m = _UNIT_RE.match(key)
    if m:
        unit = m.group("level") + (f"b{m.group('index')}" if m.group("index") else "a")
        op, tag, suffix = m.group("op"), m.group("tag"), m.group("suffix")
        if op == "conv" and suffix == "weight":
            return f"arg:res{unit}_{tag}_weight"
        if op == "bn" and suffix in _BN_SUFFIX:
            kind, name = _BN_SUFFIX[suffix]
            return f"{kind}:bn{unit}_{tag}_{name}"
    raise ValueError(f"Unknown key {key!r} in the PyTorch state dict: expected psa resnet38d "
                     "names such as 'conv1a.weight', 'b2.conv_branch2a.weight', "
                     "'b4_3.bn_branch2b1.running_mean', 'bn7.weight'.")


def psa_state_dict_to_ademxapp(state_dict: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Renames a psa ``state_dict`` (tensors or arrays) to ``{"arg:…"/"aux:…": np.ndarray}``."""
    out: dict[str, np.ndarray] = {}
    for key, value in state_dict.items():
        if key.startswith("module."):  # saved from nn.DataParallel
            key = key[len("module."):]
        name = psa_to_ademxapp_key(key)
        if name is None:
            continue
        if hasattr(value, "detach"):
            value = value.detach().cpu().numpy()
        out[name] = np.asarray(value)
    return out


def read_psa_pth(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Loads a psa-style ``.pth`` (plain or ``{"state_dict": …}``) with ademxapp names.

    The result goes straight into :func:`~keras_wideresnet.weights.convert`.
    """
    torch = require("torch", "torch", f"Reading the PyTorch weights {os.fspath(path)!r}")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"PyTorch weights file {path!r} does not exist.")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, Mapping) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, Mapping):
        raise ValueError(f"{path!r} does not hold a state dict (got {type(state).__name__}).")
    return psa_state_dict_to_ademxapp(state)
