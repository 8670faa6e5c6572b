"""The experiment definition: the one object gin configures.

An :class:`Experiment` names the task, the model constructor, the input pipelines and the
optimization, loss and evaluation settings. ``keras-wideresnet-train``, ``keras-wideresnet-evaluate``,
``keras-wideresnet-export`` and ``keras-wideresnet-analyze-paths`` all read the same gin files into one, so a
model is always rebuilt the way it was trained.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import keras
import tensorflow as tf

from keras_wideresnet.tasks import get_task

INIT_MODULES = ("all", "backbone")


@dataclasses.dataclass
class OptimizerConfig:
    """SGD with (Nesterov) momentum and the paper's decay and lr multipliers.

    Attributes:
      learning_rate: Base learning rate.
      schedule: ``"linear"`` (poly with power 1, ademxapp ``LinearScheduler``), ``"poly"``,
        ``"step"``, ``"cosine"`` or ``"constant"``.
      power: Exponent of the poly schedule.
      end_learning_rate: Floor of linear/poly schedules (ademxapp: 1e-6).
      boundaries, step_values: For ``"step"``: step boundaries and lr multipliers (len + 1).
      warmup_steps: Linear warm-up from 0 before the schedule.
      momentum, nesterov: SGD momentum (0.9; Nesterov for ImageNet, plain for segmentation).
      weight_decay: Coupled L2 decay added to the gradient of conv/FC kernels and BN γ only.
      bias_lr_multiplier: lr × this for biases and BN β (2 for segmentation, 1 for ImageNet).
      clipnorm: Optional global gradient-norm clip.
    """

    learning_rate: float = 0.1
    schedule: str = "linear"
    power: float = 1.0
    end_learning_rate: float = 1e-6
    boundaries: Sequence[int] = ()
    step_values: Sequence[float] = ()
    warmup_steps: int = 0
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-4
    bias_lr_multiplier: float = 1.0
    clipnorm: float | None = None


@dataclasses.dataclass
class LossConfig:
    """Loss settings.

    Attributes:
      ignore_label: Label value excluded from loss and metrics (255).
      bootstrap: Online bootstrapping: keep pixels whose true-class probability ≤
        ``bootstrap_threshold``, but at least the ``bootstrap_min_kept`` hardest, per replica batch.
      label_resolution: ``"subsample"`` labels to the logits grid (paper: label[4::8, 4::8]) or
        ``"upsample"`` logits to the label size.
      label_smoothing: For classification.
    """

    ignore_label: int = 255
    bootstrap: bool = False
    bootstrap_threshold: float = 0.6
    bootstrap_min_kept: int = 256
    label_resolution: str = "subsample"
    label_smoothing: float = 0.0


@dataclasses.dataclass
class Experiment:
    """Everything one training run needs.

    Attributes:
      task: ``"classification"`` or ``"segmentation"``.
      model_fn: A constructor from :mod:`keras_wideresnet.applications`; called with
        ``classes=num_classes, classifier_activation=None`` (classification) or
        ``num_classes=num_classes`` (segmentation).
      num_classes: Output classes.
      class_names: Optional names (exported as the label map; printed in eval tables).
      train_data, eval_data: Pipeline constructors from :mod:`keras_wideresnet.data`, called
        with ``input_context=...`` (and ``is_training``); everything else is bound in gin.
      eval_image_size: Classification: eval centre-crop size. Segmentation: the longer side
        that eval and serving resize to (VOC/ADE 500; Cityscapes 2048). Shared with export.
      eval_resize_shorter: Classification: shorter side before the centre crop (default =
        ``eval_image_size``, the paper's 320 protocol).
      output_stride: The model's output stride (segmentation: for the label sub-sampling).
      train_steps: Total optimizer steps.
      steps_per_loop: Steps per compiled inner loop (and per progress update).
      checkpoint_interval, max_to_keep: Checkpoints every N steps, keeping the last K.
      loss_upper_bound, recovery_max_trials: Loss blow-up recovery, as in Model Garden's
        trainer: a NaN/Inf loss or state, or a loss above ``loss_upper_bound`` (``None``: no
        bound), reloads the last good checkpoint and goes on, at most ``recovery_max_trials``
        times in a run; ``0`` (the default) stops with an error at the first blow-up.
      eval_steps: Batches per evaluation (``None``: the whole eval set).
      eval_interval: In ``train_and_eval``, evaluate every N steps (default: at the end).
      eval_scales, eval_flip: Test-time augmentation for segmentation evaluation.
      eval_tile_size: Sliding-window tile (``None``: whole image) for large images.
      optimizer, loss: See :class:`OptimizerConfig` and :class:`LossConfig`.
      init_checkpoint: A training checkpoint (dir or prefix) or a ``.weights.h5`` file to start
        from when ``model_dir`` has no checkpoint yet.
      init_checkpoint_modules: ``"all"`` or ``"backbone"`` (skip the head).
      mixed_precision: ``None``, ``"mixed_float16"`` (with loss scaling) or ``"mixed_bfloat16"``.
      seed: Global seed (``keras.utils.set_random_seed``).
      deterministic: Run every TF op deterministically
        (``tf.config.experimental.enable_op_determinism``) so that the same seed on the same
        machine gives the same run; needs ``seed``. Slower, and an op without a deterministic
        kernel raises an error that names it.
      jit_compile: XLA for the forward and backward pass of the train step (off by default:
        slower on CPU, where XLA does not use oneDNN; worth trying on GPU).
      fused_batch_norm: Train BN with TF's fused kernel
        (:func:`keras_wideresnet.training.fused_batch_norm.use_fused_batch_norm`): the same
        results as Keras' BN, with faster training steps (docs/benchmark.md). Synchronized
        and frozen-statistics BN always keep Keras' path.
      path_analysis_interval: Every N steps, measure gradient magnitude by path length and
        effective depth on one fixed training batch and log it to TensorBoard
        (``model_dir/path_analysis``) and JSON. ``None`` disables it.
      path_analysis_samples_per_k: Sampled path sets per length for that measurement.
    """

    task: str = "classification"
    model_fn: Callable[..., keras.Model] | None = None
    num_classes: int = 1000
    class_names: Sequence[str] | None = None
    train_data: Callable[..., tf.data.Dataset] | None = None
    eval_data: Callable[..., tf.data.Dataset] | None = None
    eval_image_size: int = 224
    eval_resize_shorter: int | None = None
    output_stride: int = 8
    train_steps: int = 1000
    steps_per_loop: int = 50
    checkpoint_interval: int = 500
    max_to_keep: int = 3
    loss_upper_bound: float | None = None
    recovery_max_trials: int = 0
    eval_steps: int | None = None
    eval_interval: int | None = None
    eval_scales: Sequence[float] = (1.0,)
    eval_flip: bool = False
    eval_tile_size: int | None = None
    optimizer: OptimizerConfig = dataclasses.field(default_factory=OptimizerConfig)
    loss: LossConfig = dataclasses.field(default_factory=LossConfig)
    init_checkpoint: str | None = None
    init_checkpoint_modules: str = "all"
    mixed_precision: str | None = None
    seed: int | None = None
    deterministic: bool = False
    jit_compile: bool = False
    fused_batch_norm: bool = True
    path_analysis_interval: int | None = None
    path_analysis_samples_per_k: int = 8

    def __post_init__(self):
        get_task(self.task)  # a clear error for a name no task is registered as
        if self.model_fn is None:
            raise ValueError("Experiment.model_fn is not set. Bind it in gin, e.g. "
                             "`Experiment.model_fn = @ResNet38Segmenter`.")
        if self.deterministic and self.seed is None:
            raise ValueError("Experiment.deterministic = True needs Experiment.seed: bind both, e.g. "
                             "`Experiment.seed = 0`.")
        if self.init_checkpoint_modules not in INIT_MODULES:
            raise ValueError(f"Experiment.init_checkpoint_modules must be one of {INIT_MODULES}. "
                             f"Received: {self.init_checkpoint_modules!r}")
        if self.mixed_precision not in (None, "float32", "mixed_float16", "mixed_bfloat16"):
            raise ValueError("Experiment.mixed_precision must be None, 'mixed_float16' or "
                             f"'mixed_bfloat16'. Received: {self.mixed_precision!r}")
        if self.recovery_max_trials < 0:
            raise ValueError("Experiment.recovery_max_trials must be >= 0 (0: stop at the first "
                             f"blow-up). Received: {self.recovery_max_trials}")
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            raise ValueError(f"Experiment.class_names has {len(self.class_names)} names but "
                             f"num_classes={self.num_classes}.")

    def build_model(self, **overrides: Any) -> keras.Model:
        """Builds the model as trained (logits out, float32 head), as the task calls it."""
        return get_task(self.task).build_model(self, **overrides)

    def with_eval_overrides(self, scales: Sequence[float] | None = None,
                            flip: bool | None = None, tile_size: int | None = None,
                            eval_image_size: int | None = None,
                            eval_steps: int | None = None) -> "Experiment":
        """A copy with the evaluation settings a CLI overrides (``None`` keeps the value)."""
        changes = {"eval_scales": tuple(float(s) for s in scales) if scales else None,
                   "eval_flip": flip, "eval_tile_size": tile_size,
                   "eval_image_size": eval_image_size, "eval_steps": eval_steps}
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def label_names(self) -> list[str]:
        return list(self.class_names) if self.class_names else [str(i) for i in range(self.num_classes)]
