"""Declarative specs of the wide ResNet family (docs/architecture.md §2).

A :class:`FamilySpec` lists blocks B2..B7 (B1 is the ``conv1a`` stem). Each block says how many
units it has, their type and widths, and how it reduces resolution on entry:

* ``"pool"``: a 3×3/2 max-pool before the block (Model A's ``pool1``..``pool5``);
* ``"conv"``: stride 2 on the block's first unit (Model A1);
* ``"none"``: no reduction.

Further family members and input-size variants are a new spec, not new code.
Register one with :func:`register_spec`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable

DOWNSAMPLE_MODES = ("pool", "conv", "none")
POOL_PADDINGS = ("pad1", "caffe")

# Model A's widths per block, B2..B7 (docs/architecture.md §2.1); identical in A1/A2 and in ResNet-16/20.
_WIDTHS = ((128, 128), (256, 256), (512, 512), (512, 1024), (512, 1024, 2048), (1024, 2048, 4096))
_TYPES = ("basic",) * 4 + ("bottleneck",) * 2


@dataclasses.dataclass(frozen=True)
class BlockSpec:
    """One block ("level") of residual units.

    Attributes:
      level: Block number, 2..7 for the paper's models; names units ``{level}a``, ``{level}b1``...
      num_units: Number of residual units.
      unit_type: ``"basic"`` or ``"bottleneck"``.
      filters: Output widths of the unit's branch convs.
      downsample: ``"pool"``, ``"conv"`` or ``"none"`` (see module docstring).
      dropout: Drop probability before each unit's last conv (segmentation nets, docs/architecture.md §1.6).
    """

    level: int
    num_units: int
    unit_type: str
    filters: tuple[int, ...]
    downsample: str = "none"
    dropout: float = 0.0

    def __post_init__(self):
        if self.downsample not in DOWNSAMPLE_MODES:
            raise ValueError(f"BlockSpec.downsample must be one of {DOWNSAMPLE_MODES}. "
                             f"Received: downsample={self.downsample!r}")
        if self.num_units < 1:
            raise ValueError(f"BlockSpec.num_units must be >= 1. Received: {self.num_units}")
        object.__setattr__(self, "filters", tuple(int(f) for f in self.filters))

    def unit_ids(self) -> list[str]:
        """ademxapp unit ids: ``4a, 4b1, ..., 4b5``."""
        return [f"{self.level}a"] + [f"{self.level}b{i}" for i in range(1, self.num_units)]


@dataclasses.dataclass(frozen=True)
class FamilySpec:
    """A whole network: stem plus blocks.

    Attributes:
      name: Registry name.
      blocks: The blocks in order.
      stem_filters: Width of ``conv1a`` (3×3, stride 1, no BN after it).
      pool_padding: ``"pad1"`` (224→112→…→7) or ``"caffe"`` (pad 0, floor; 320→159→…→9), the
        convention the released Model A was tested with (docs/architecture.md §2.4).
    """

    name: str
    blocks: tuple[BlockSpec, ...]
    stem_filters: int = 64
    pool_padding: str = "pad1"

    def __post_init__(self):
        if self.pool_padding not in POOL_PADDINGS:
            raise ValueError(f"FamilySpec.pool_padding must be one of {POOL_PADDINGS}. "
                             f"Received: pool_padding={self.pool_padding!r}")
        object.__setattr__(self, "blocks", tuple(
            b if isinstance(b, BlockSpec) else BlockSpec(**b) for b in self.blocks))

    @property
    def depth(self) -> int:
        """Weighted layers: conv1a + branch convs + the classifier (shortcuts not counted)."""
        return 1 + sum(b.num_units * len(b.filters) for b in self.blocks) + 1

    @property
    def num_reductions(self) -> int:
        return sum(b.downsample != "none" for b in self.blocks)

    def replace(self, **changes: Any) -> "FamilySpec":
        return dataclasses.replace(self, **changes)

    def scaled(self, width_multiplier: float) -> "FamilySpec":
        """Every width × ``width_multiplier`` (at least 1), for small variants and tests."""
        if width_multiplier == 1:
            return self
        if width_multiplier <= 0:
            raise ValueError(f"`width_multiplier` must be > 0. Received: {width_multiplier}")
        scale = lambda w: max(1, int(round(w * width_multiplier)))  # noqa: E731
        return self.replace(
            stem_filters=scale(self.stem_filters),
            blocks=tuple(dataclasses.replace(b, filters=tuple(scale(f) for f in b.filters))
                         for b in self.blocks))

    def with_dropout(self, rates: dict[int, float]) -> "FamilySpec":
        """Sets per-block dropout, e.g. ``{6: 0.3, 7: 0.5}`` for segmentation (docs/architecture.md §1.6)."""
        return self.replace(blocks=tuple(
            dataclasses.replace(b, dropout=rates.get(b.level, b.dropout)) for b in self.blocks))

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["blocks"] = [dict(b, filters=list(b["filters"])) for b in d["blocks"]]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FamilySpec":
        return cls(**dict(d, blocks=tuple(BlockSpec(**b) for b in d["blocks"])))


def make_spec(name: str, units: Iterable[int], downsample: Iterable[str],
              widths=_WIDTHS, unit_types=_TYPES, **kwargs: Any) -> FamilySpec:
    """Builds a spec from per-block lists for B2..B7."""
    blocks = tuple(BlockSpec(level=i + 2, num_units=n, unit_type=t, filters=w, downsample=d)
                   for i, (n, t, w, d) in enumerate(zip(units, unit_types, widths, downsample)))
    return FamilySpec(name=name, blocks=blocks, **kwargs)


_A = ("pool",) * 5 + ("none",)  # pool1..pool5 (docs/architecture.md §2.2)
_A1 = ("conv",) * 5 + ("none",)  # 2a..6a stride 2 (docs/architecture.md §2.2)
_A2 = ("pool", "pool", "conv", "conv", "conv", "none")  # pool1, pool2, 4a..6a stride 2
# Units per block B2..B7 of ResNet-16, -20 and -38 (docs/architecture.md §2.3).
_UNITS = {16: (1, 1, 1, 1, 1, 1), 20: (1, 1, 1, 3, 1, 1), 38: (3, 3, 6, 3, 1, 1)}

_REGISTRY: dict[str, FamilySpec] = {}


def register_spec(spec: FamilySpec) -> FamilySpec:
    """Adds a spec to the registry (names are unique)."""
    if spec.name in _REGISTRY:
        raise ValueError(f"A spec named {spec.name!r} is already registered.")
    _REGISTRY[spec.name] = spec
    return spec


def get_spec(name: str | FamilySpec) -> FamilySpec:
    """Looks a spec up by name (``resnet38_a``, ``resnet38_a1``, ...)."""
    if isinstance(name, FamilySpec):
        return name
    if name not in _REGISTRY:
        raise ValueError(f"Unknown model spec {name!r}. Known: {sorted(_REGISTRY)}. "
                         "Register new ones with keras_wideresnet.models.register_spec().")
    return _REGISTRY[name]


def list_specs() -> list[str]:
    return sorted(_REGISTRY)


for _depth, _units in _UNITS.items():
    for _variant, _down in (("a", _A), ("a1", _A1), ("a2", _A2)):
        register_spec(make_spec(f"resnet{_depth}_{_variant}", _units, _down))
