"""Benchmark configurations and presets.

A :class:`BenchConfig` is one measurement run in its own subprocess: a peak ``matmul``, model
``inference`` or ``training`` steps, or the training input ``pipeline`` versus plain decode.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Sequence

KINDS = ("matmul", "inference", "training", "pipeline", "agreement", "interleaved", "interleaved_bn",
         "interleaved_peer")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
KERAS_BASELINES = ("resnet50v2", "resnet101v2", "resnet152v2")
FAMILY = tuple(f"resnet{d}_{v}" for d in (16, 20, 38) for v in ("a", "a1", "a2"))
SEGMENTER = "segmenter"
MODELS = FAMILY + (SEGMENTER,) + KERAS_BASELINES


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """One benchmark measurement.

    Attributes:
      kind: ``"matmul"``, ``"inference"``, ``"training"``, ``"pipeline"``, or ``"agreement"``
        (top-1 agreement of ``precision``/``fold_bn`` with float32 for the trained ``model_dir``),
        or ``"interleaved"``: inference of ``model`` in float32 and ``precision``, each with Keras BN
        and folded BN, built in one process and timed step by step in rotation, so that the
        speed-ups are not skewed by the machine's speed drifting between subprocesses;
        ``"interleaved_bn"``: training steps of ``model`` in ``precision`` with TF's fused BN and
        with Keras' BN, likewise in one process and in rotation; ``"interleaved_peer"``: training
        steps of ``model`` (as the trainer runs them) and of its PyTorch port, likewise.
      model: a family member (``resnet38_a`` …), ``"segmenter"`` (ResNet38Segmenter A1, OS 8) or a
        ``keras.applications`` baseline (``resnet50v2``, ``resnet101v2``, ``resnet152v2``).
      resolution, batch_size: square input size and images per step.
      precision: Keras dtype policy: ``float32``, ``mixed_bfloat16`` or ``mixed_float16`` (GPU).
        For ``matmul`` the operand dtype is the policy's compute dtype.
      jit_compile: XLA-compile the step function.
      recompute: activation recomputation in every residual unit (family and segmenter only).
      fold_bn: inference with batch norm folded (:func:`keras_wideresnet.models.fold_batch_norm`,
        what ``keras-wideresnet-export`` serves).
      keras_sgd: training with Keras' own SGD instead of the default ``FusedSGD``
        (:mod:`keras_wideresnet.training.optimization`), to measure what the fused update saves.
      keras_bn: training with Keras' own BatchNormalization instead of TF's fused kernel
        (:mod:`keras_wideresnet.training.fused_batch_norm`, the trainer's default), to measure
        what the fused kernel saves.
      model_dir: ``agreement`` only: a training run (config.gin + checkpoints).
      framework: ``"keras"``, or ``"torch"`` for the plain PyTorch port of a family member
        (:mod:`tools.benchmarking.torch_peer`; inference/training, float32/bf16).
      onednn: ``TF_ENABLE_ONEDNN_OPTS`` for the subprocess: True/False, or None to inherit it
        (TF's default, on, unless the caller's environment sets it).
      bf16_math: float32 run through oneDNN's BF16 math mode (``TF_SET_ONEDNN_FPMATH_MODE=BF16``
        for the subprocess; the PyTorch port sets ``torch.backends.mkldnn`` ``fp32_precision`` to
        ``"bf16"``). Tensors, weights and accumulation stay float32, but the products run in bf16
        on AMX: the CPU's counterpart of TF32 on GPUs. Off (strict float32), TF's default, clears
        both fpmath variables for the subprocess.
      width_multiplier: channel width multiplier (1.0 = the paper's widths).
      warmup, iters: untimed warm-up steps (the first one traces/compiles), timed steps.
      classes: classifier outputs (segmenter: classes per pixel).
      matmul_size: n of the n×n·n×n matmul.
      num_records: JPEG records (crops of real photographs) written for ``pipeline``.
      jpeg_quality: their JPEG quality: 90 gives about 0.26 bytes/pixel, 98 about 0.53 (closer to
        ImageNet's roughly 0.6); decode cost, and so the pipeline/decode ratio, depends on it.
    """

    kind: str
    model: str = "resnet38_a"
    resolution: int = 224
    batch_size: int = 8
    precision: str = "float32"
    jit_compile: bool = False
    recompute: bool = False
    fold_bn: bool = False
    keras_sgd: bool = False
    keras_bn: bool = False
    onednn: bool | None = None
    bf16_math: bool = False
    width_multiplier: float = 1.0
    warmup: int = 2
    iters: int = 5
    classes: int = 1000
    matmul_size: int = 4096
    num_records: int = 64
    jpeg_quality: int = 90
    model_dir: str | None = None
    framework: str = "keras"

    def __post_init__(self):
        problems = []
        if self.kind not in KINDS:
            problems.append(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind in ("inference", "training", "interleaved", "interleaved_bn") and self.model not in MODELS:
            problems.append(f"model must be one of {MODELS}, got {self.model!r}")
        if self.kind == "interleaved_peer" and (self.model not in FAMILY
                                                or self.precision not in ("float32", "mixed_bfloat16")):
            problems.append("interleaved_peer compares a family member with its PyTorch port in float32 or "
                            f"mixed_bfloat16, got {self.model!r} in {self.precision!r}")
        if self.precision not in PRECISIONS:
            problems.append(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.recompute and self.model in KERAS_BASELINES:
            problems.append(f"recompute is only implemented for the ResNet-38 family, not {self.model!r}")
        if self.fold_bn and self.kind not in ("inference", "agreement"):
            problems.append("fold_bn is an inference form; use it with kind='inference'")
        for flag, what in (("keras_sgd", "the optimizer"), ("keras_bn", "the BN kernel")):
            if getattr(self, flag) and (self.kind != "training" or self.framework != "keras"):
                problems.append(f"{flag} selects {what} of a Keras training step; use it with "
                                "kind='training'")
        if not _math_applies(self.precision, self.onednn, self.bf16_math) or (
                self.bf16_math and self.kind in ("pipeline", "agreement")):
            problems.append("bf16_math is oneDNN's math mode for float32 convolutions and matmuls: use it "
                            "with precision='float32', oneDNN on, and a matmul, inference, training or "
                            "interleaved kind (agreement needs a strict float32 reference in the same "
                            "process, which the mode, read once per process, does not allow)")
        if self.framework not in ("keras", "torch"):
            problems.append(f"framework must be 'keras' or 'torch', got {self.framework!r}")
        if self.framework == "torch" and (self.kind not in ("inference", "training") or self.model not in FAMILY
                                          or self.precision not in ("float32", "mixed_bfloat16")
                                          or self.fold_bn or self.recompute or self.jit_compile):
            problems.append("the PyTorch port runs family-member inference/training in float32 or "
                            "mixed_bfloat16, without fold_bn/recompute/jit_compile")
        if (self.kind == "agreement") != bool(self.model_dir):
            problems.append("kind='agreement' needs model_dir (a training run), and only it takes one")
        if self.model in KERAS_BASELINES and self.resolution < 32:
            problems.append(f"keras.applications baselines need resolution >= 32, got {self.resolution}")
        if not 1 <= self.jpeg_quality <= 100:
            problems.append(f"jpeg_quality must be in [1, 100], got {self.jpeg_quality}")
        for name in ("resolution", "batch_size", "iters", "matmul_size", "num_records", "classes"):
            if int(getattr(self, name)) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.warmup < 1:
            problems.append(f"warmup must be >= 1 (the first step traces), got {self.warmup}")
        if not 0 < self.width_multiplier <= 4:
            problems.append(f"width_multiplier must be in (0, 4], got {self.width_multiplier}")
        if problems:
            raise ValueError("Invalid BenchConfig: " + "; ".join(problems) + ". Fix the preset or flags.")

    @property
    def label(self) -> str:
        """Short human-readable name of the configuration."""
        if self.kind == "matmul":
            parts = [f"matmul {self.matmul_size}", self.precision]
        elif self.kind == "interleaved":
            parts = [f"{self.model} inference {self.resolution}px b{self.batch_size}, interleaved "
                     f"float32/{self.precision} × Keras/folded BN"]
        elif self.kind == "interleaved_bn":
            parts = [f"{self.model} training {self.resolution}px b{self.batch_size}, {self.precision}, "
                     "interleaved Keras/fused BN"]
        elif self.kind == "interleaved_peer":
            parts = [f"{self.model} training {self.resolution}px b{self.batch_size}, {self.precision}, "
                     "interleaved PyTorch port/Keras"]
        elif self.kind == "agreement":
            parts = [f"agreement {self.precision}{', folded BN' if self.fold_bn else ''} vs float32 "
                     f"({self.model_dir})"]
        elif self.kind == "pipeline":
            parts = [f"pipeline {self.resolution}px b{self.batch_size}, JPEG q{self.jpeg_quality}"]
        else:
            parts = [self.model if self.width_multiplier == 1 else f"{self.model} w×{self.width_multiplier:g}",
                     self.kind, f"{self.resolution}px b{self.batch_size}", self.precision]
            if self.framework == "torch":
                parts[0] = f"PyTorch port: {parts[0]}"
            if self.jit_compile:
                parts.append("xla")
            if self.recompute:
                parts.append("recompute")
            if self.fold_bn:
                parts.append("folded BN")
            if self.keras_sgd:
                parts.append("Keras SGD")
            if self.keras_bn:
                parts.append("Keras BN")
        if self.bf16_math:
            parts.append("bf16 math")
        if self.onednn is not None:
            parts.append(f"oneDNN {'on' if self.onednn else 'off'}")
        return ", ".join(parts)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "BenchConfig":
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"Unknown BenchConfig fields {sorted(unknown)}; "
                             f"valid: {[f.name for f in dataclasses.fields(cls)]}")
        return cls(**d)


def _smoke() -> list[BenchConfig]:
    """Every measurement kind once, at tiny sizes: a check that the harness runs end to end.

    Folded-BN inference, Keras BN and the PyTorch port run inside the interleaved kinds, so they
    have no separate rows here; the segmenter and recomputation rows are in ``cpu_quick``.
    """
    tiny = dict(resolution=32, batch_size=2, width_multiplier=1 / 32, warmup=1, iters=2, classes=10)
    return [
        BenchConfig("matmul", matmul_size=256, warmup=1, iters=3),
        BenchConfig("matmul", matmul_size=256, warmup=1, iters=3, onednn=True, bf16_math=True),
        BenchConfig("inference", "resnet38_a", **tiny),
        BenchConfig("interleaved", "resnet38_a", precision="mixed_bfloat16", **tiny),
        BenchConfig("interleaved_bn", "resnet38_a", precision="mixed_bfloat16", **tiny),
        BenchConfig("interleaved_peer", "resnet38_a", precision="mixed_bfloat16", **tiny),
        BenchConfig("training", "resnet38_a", **tiny),
        BenchConfig("training", "resnet38_a", keras_sgd=True, **tiny),
        BenchConfig("inference", "resnet50v2", resolution=32, batch_size=2, warmup=1, iters=2, classes=10),
        BenchConfig("pipeline", resolution=32, batch_size=4, num_records=8, warmup=1, iters=4),
    ]


def _cpu_quick() -> list[BenchConfig]:
    """ResNet-38 A at 224 (inference b8, training b4) vs the keras baselines; oneDNN on/off."""
    inf = dict(resolution=224, batch_size=8, warmup=1, iters=3)
    trn = dict(resolution=224, batch_size=4, warmup=1, iters=3)
    out = []
    for precision in ("float32", "mixed_bfloat16"):
        for onednn in (True, False):
            out.append(BenchConfig("matmul", precision=precision, onednn=onednn, matmul_size=2048, iters=5))
    for precision in ("float32", "mixed_bfloat16"):
        for onednn in (True, False):
            out.append(BenchConfig("inference", "resnet38_a", precision=precision, onednn=onednn, **inf))
            if onednn:
                out.append(BenchConfig("inference", "resnet38_a", precision=precision, onednn=onednn,
                                       fold_bn=True, **inf))
    for kind, shape in (("inference", inf), ("training", trn)):
        for precision in ("float32", "mixed_bfloat16"):
            out.append(BenchConfig(kind, "resnet38_a", precision=precision, framework="torch", **shape))
    out.append(BenchConfig("interleaved", "resnet38_a", precision="mixed_bfloat16", onednn=True,
                           resolution=224, batch_size=8, warmup=2, iters=8))
    for kind in ("interleaved_bn", "interleaved_peer"):
        for precision in ("float32", "mixed_bfloat16"):
            out.append(BenchConfig(kind, "resnet38_a", precision=precision, onednn=True,
                                   resolution=224, batch_size=4, warmup=2, iters=8))
    for onednn in (True, False):
        out.append(BenchConfig("training", "resnet38_a", onednn=onednn, **trn))
    out.append(BenchConfig("training", "resnet38_a", precision="mixed_bfloat16", onednn=True, **trn))
    for precision in ("float32", "mixed_bfloat16"):
        out.append(BenchConfig("training", "resnet38_a", precision=precision, keras_bn=True, onednn=True,
                               **trn))
    out.append(BenchConfig("training", "resnet38_a", recompute=True, onednn=True, **trn))
    out.append(BenchConfig("training", "resnet38_a", keras_sgd=True, onednn=True, **trn))
    # float32 in oneDNN's BF16 math mode (the CPU's TF32), next to strict float32 and the port in it.
    out.append(BenchConfig("matmul", onednn=True, bf16_math=True, matmul_size=2048, iters=5))
    out.append(BenchConfig("inference", "resnet38_a", onednn=True, bf16_math=True, fold_bn=True, **inf))
    out.append(BenchConfig("training", "resnet38_a", onednn=True, bf16_math=True, **trn))
    out.append(BenchConfig("training", "resnet38_a", framework="torch", bf16_math=True, **trn))
    for model in KERAS_BASELINES:
        out.append(BenchConfig("inference", model, onednn=True, **inf))
    for model in KERAS_BASELINES:
        out.append(BenchConfig("training", model, onednn=True, **trn))
    # Segmenter training with oneDNN on: strided 1x1 convs with 4 input channels (the oneDNN
    # heap-corruption case that layers.residual_units avoids) and a larger size.
    out.append(BenchConfig("training", "segmenter", resolution=64, batch_size=2, width_multiplier=1 / 16,
                           classes=21, onednn=True, warmup=2, iters=3))
    out.append(BenchConfig("training", "segmenter", resolution=160, batch_size=2, classes=21,
                           onednn=True, warmup=1, iters=2))
    for quality in (90, 98):
        out.append(BenchConfig("pipeline", resolution=224, batch_size=32, num_records=64, warmup=3, iters=30,
                               jpeg_quality=quality))
    return out


def _cpu_full() -> list[BenchConfig]:
    """cpu_quick plus XLA, recompute per precision and oneDNN-on recompute/baseline training."""
    inf = dict(resolution=224, batch_size=8, warmup=2, iters=5)
    trn = dict(resolution=224, batch_size=4, warmup=2, iters=4)
    out = [c for c in _cpu_quick() if c.kind in ("matmul", "pipeline")]
    for precision in ("float32", "mixed_bfloat16"):
        for onednn in (True, False):
            for jit in (False, True):
                out.append(BenchConfig("inference", "resnet38_a", precision=precision, onednn=onednn,
                                       jit_compile=jit, **inf))
            for recompute in (False, True):
                out.append(BenchConfig("training", "resnet38_a", precision=precision, onednn=onednn,
                                       recompute=recompute, **trn))
    out.append(BenchConfig("training", "resnet38_a", jit_compile=True, onednn=False, **trn))
    for model in KERAS_BASELINES:
        for onednn in (True, False):
            out.append(BenchConfig("inference", model, onednn=onednn, **inf))
            out.append(BenchConfig("training", model, onednn=onednn, **trn))
    out.append(BenchConfig("training", "segmenter", resolution=321, batch_size=2, classes=21,
                           onednn=True, warmup=1, iters=2))
    out.append(BenchConfig("training", "segmenter", resolution=321, batch_size=2, classes=21,
                           onednn=False, warmup=1, iters=2))
    return out


def _gpu_full() -> list[BenchConfig]:
    """One GPU, sized for a few minutes: mixed precision on, XLA on/off, recompute, ResNet-152V2 beside.

    fp32 on Ampere/Hopper uses TF32 tensor cores (TF's default), so the fp32 peak is a TF32 peak.
    """
    inf = dict(resolution=224, batch_size=64, warmup=5, iters=20)
    trn = dict(resolution=224, batch_size=32, warmup=5, iters=15)
    half = "mixed_float16"
    out = [BenchConfig("matmul", precision=p, matmul_size=8192, warmup=3, iters=20) for p in PRECISIONS]
    out += [
        BenchConfig("inference", "resnet38_a", precision="float32", **inf),
        BenchConfig("inference", "resnet38_a", precision=half, **inf),
        BenchConfig("inference", "resnet38_a", precision=half, jit_compile=True, **inf),
        BenchConfig("inference", "resnet38_a", precision="mixed_bfloat16", **inf),
        BenchConfig("training", "resnet38_a", precision="float32", **trn),
        BenchConfig("training", "resnet38_a", precision=half, **trn),
        BenchConfig("training", "resnet38_a", precision=half, jit_compile=True, **trn),
        BenchConfig("training", "resnet38_a", precision=half, recompute=True, **trn),
        BenchConfig("inference", "resnet152v2", precision=half, **inf),
        BenchConfig("inference", "resnet152v2", precision=half, jit_compile=True, **inf),
        BenchConfig("training", "resnet152v2", precision="float32", **trn),
        BenchConfig("training", "resnet152v2", precision=half, **trn),
        BenchConfig("training", "resnet101v2", precision=half, **trn),
        BenchConfig("training", "resnet50v2", precision=half, **trn),
        BenchConfig("training", "segmenter", resolution=512, batch_size=4, classes=21, precision=half,
                    warmup=3, iters=10),
        BenchConfig("pipeline", resolution=224, batch_size=64, num_records=256, warmup=4, iters=40),
    ]
    return out


PRESETS = {"smoke": _smoke, "cpu_quick": _cpu_quick, "cpu_full": _cpu_full, "gpu_full": _gpu_full}


def preset_configs(name: str) -> list[BenchConfig]:
    """The configurations of preset ``name`` (see :data:`PRESETS`)."""
    if name not in PRESETS:
        raise ValueError(f"Unknown preset {name!r}; choose one of {sorted(PRESETS)}.")
    return PRESETS[name]()


def _math_applies(precision: str, onednn: bool | None, bf16_math: bool) -> bool:
    """oneDNN's BF16 math mode is a float32 mode, and needs oneDNN."""
    return not bf16_math or (precision == "float32" and onednn is not False)


def grid_configs(models: Sequence[str], kinds: Sequence[str] = ("inference", "training"),
                 precisions: Sequence[str] = ("float32",), jit_compile: Sequence[bool] = (False,),
                 recompute: Sequence[bool] = (False,), onednn: Sequence[bool | None] = (None,),
                 with_matmul: bool = True, with_pipeline: bool = False,
                 fold_bn: Sequence[bool] = (False,), bf16_math: Sequence[bool] = (False,),
                 **common) -> list[BenchConfig]:
    """Cross product of the given axes (recompute only where supported; ``bf16_math`` only for
    float32 with oneDNN not off), plus peak matmuls.

    ``common`` holds the other :class:`BenchConfig` fields (resolution, batch_size, iters, ...).
    """
    if not models:
        raise ValueError("grid_configs needs at least one model; choose from " + ", ".join(MODELS))
    out = []
    if with_matmul:
        out += [BenchConfig("matmul", precision=p, onednn=o, bf16_math=m) for p in precisions for o in onednn
                for m in bf16_math if _math_applies(p, o, m)]
    for model in models:
        for kind in kinds:
            for p in precisions:
                for j in jit_compile:
                    for r in recompute:
                        if r and (model in KERAS_BASELINES or kind != "training"):
                            continue
                        for o in onednn:
                            for f in fold_bn if kind == "inference" else (False,):
                                out += [BenchConfig(kind, model, precision=p, jit_compile=j, recompute=r,
                                                    onednn=o, fold_bn=f, bf16_math=m, **common)
                                        for m in bf16_math if _math_applies(p, o, m)]
    if with_pipeline:
        out.append(BenchConfig("pipeline", resolution=common.get("resolution", 224),
                               batch_size=common.get("batch_size", 8)))
    return out
