"""In-process measurements of one :class:`BenchConfig`.

Run through :mod:`tools.benchmarking.worker` in a fresh subprocess: TF reads
``TF_ENABLE_ONEDNN_OPTS`` at import, and the peak RSS of the process is the configuration's own.
"""

from __future__ import annotations

import dataclasses
import os
import resource
import statistics
import tempfile
import time
from typing import Callable

import numpy as np
import tensorflow as tf
import keras

from keras_wideresnet.tasks.losses import classification_loss
from keras_wideresnet.training.experiment import OptimizerConfig
from keras_wideresnet.training.fused_batch_norm import use_fused_batch_norm
from keras_wideresnet.training.optimization import build_optimizer
from keras_wideresnet.training.train_step import build_replica_step, time_steps, timed_call
from tools.benchmarking import flops as flops_lib
from tools.benchmarking.configs import KERAS_BASELINES, SEGMENTER, BenchConfig

_COMPUTE_DTYPES = {"float32": tf.float32, "mixed_bfloat16": tf.bfloat16, "mixed_float16": tf.float16}


def device_info() -> dict:
    """The device the measurement runs on, and the TF/Keras versions."""
    gpus = tf.config.list_physical_devices("GPU")
    info = {"tf": tf.__version__, "keras": keras.__version__, "device": "GPU" if gpus else "CPU",
            "onednn_env": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "(TF default)"),
            "fpmath_env": os.environ.get("TF_SET_ONEDNN_FPMATH_MODE", "(unset: strict)")}
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        info["device_name"] = details.get("device_name", "GPU")
    else:
        info["device_name"] = _cpu_name()
        info["cpu_count"] = os.cpu_count()
    return info


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "CPU"


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _gpu() -> bool:
    return bool(tf.config.list_physical_devices("GPU"))


def _timed(step: Callable[[], object], warmup: int, iters: int,
           after_warmup: Callable[[], object] | None = None) -> tuple[list[float], float, list[float]]:
    """Per-step wall times, warm-up seconds, and per-step CPU seconds of this process (all
    threads), from the library's step timer: with other load on the machine, CPU seconds per
    step stay comparable where wall times do not."""
    times, warmup_s = time_steps(step, warmup, iters, after_warmup)
    return [t.wall_s for t in times], warmup_s, [t.cpu_s for t in times]


def build_model(config: BenchConfig) -> keras.Model:
    """The model of ``config`` under the current dtype policy, returning logits."""
    from keras_wideresnet import applications

    shape = (config.resolution, config.resolution, 3)
    if config.model in KERAS_BASELINES:
        ctor = {"resnet50v2": keras.applications.ResNet50V2, "resnet101v2": keras.applications.ResNet101V2,
                "resnet152v2": keras.applications.ResNet152V2}[config.model]
        return ctor(weights=None, input_shape=shape, classes=config.classes, classifier_activation=None)
    if config.model == SEGMENTER:
        return applications.ResNet38Segmenter(config.classes, input_shape=shape,
                                              width_multiplier=config.width_multiplier,
                                              recompute=config.recompute)
    from keras_wideresnet.models.spec import get_spec

    spec = get_spec(config.model).scaled(config.width_multiplier)
    return applications.WideResNet(spec, input_shape=shape, classes=config.classes,
                                   classifier_activation=None, recompute=config.recompute)


def _allocator_device() -> str | None:
    """The device whose TF allocator keeps statistics: the GPU, or the CPU when the worker runs
    with ``TF_CPU_ALLOCATOR_USE_BFC=true`` (see :func:`.runner.worker_env`)."""
    device = "GPU:0" if _gpu() else "CPU:0"
    try:
        tf.config.experimental.get_memory_info(device)
    except (ValueError, tf.errors.OpError):
        return None
    return device


def _memory_start() -> dict:
    return {} if _gpu() else {"rss_before_mib": _rss_mib()}


def _reset_allocator_peak(out: dict) -> None:
    """After the warm-up steps (tracing, oneDNN primitive creation), so the allocator's peak is
    the steady-state step's; RSS keeps the process's lifetime peak."""
    if device := _allocator_device():
        tf.config.experimental.reset_memory_stats(device)
        out["alloc_device"] = device
        out["alloc_before_mib"] = tf.config.experimental.get_memory_info(device)["current"] / 2**20


def _memory_end(start: dict) -> dict:
    out = dict(start)
    out["peak_rss_mib"] = _peak_rss_mib()
    if device := start.get("alloc_device"):
        out["alloc_peak_mib"] = tf.config.experimental.get_memory_info(device)["peak"] / 2**20
    if _gpu():
        out["peak_mib"] = out.get("alloc_peak_mib")  # None for PyTorch rows
        out["peak_source"] = "tf.config.experimental.get_memory_info('GPU:0')['peak']"
    else:
        out["peak_mib"] = out["peak_rss_mib"]
        out["peak_source"] = "peak RSS of the benchmark process (getrusage)"
    return out


def _summary(times: list[float], images: int, cpu: list[float]) -> dict:
    median = statistics.median(times)
    cores = 1 if _gpu() else (len(os.sched_getaffinity(0)) or 1)
    return {"step_times_s": [round(t, 5) for t in times], "median_step_s": median,
            "images_per_s": images / median, "best_images_per_s": images / min(times),
            "cpu_s_per_step": statistics.median(cpu),
            "cpu_utilization": statistics.median(c / t for c, t in zip(cpu, times)) / cores}


def measure_matmul(config: BenchConfig) -> dict:
    """Peak matmul FLOP/s: ``iters`` chained n×n products in one tf.function (operands on device)."""
    n, dtype = config.matmul_size, _COMPUTE_DTYPES[config.precision]
    a = tf.random.uniform((n, n), dtype=tf.float32)
    a = tf.cast(a / float(n) ** 0.5, dtype)
    b = tf.cast(tf.random.uniform((n, n), dtype=tf.float32), dtype)

    @tf.function(jit_compile=config.jit_compile)
    def step(x, y):
        return tf.reduce_sum(tf.cast(tf.matmul(x, y)[:1, :1], tf.float32))

    times, warmup_s, cpu = _timed(lambda: step(a, b), config.warmup, config.iters)
    result = _summary(times, 0, cpu)
    del result["images_per_s"], result["best_images_per_s"]
    result.update({"warmup_s": warmup_s, "flops_per_step": 2 * n**3,
                   "achieved_flops": 2 * n**3 / result["median_step_s"],
                   "peak_flops": 2 * n**3 / min(times)})
    return result


def _images(config: BenchConfig):
    """A random float32 batch of ``config``'s size, already on the device."""
    return tf.random.uniform((config.batch_size, config.resolution, config.resolution, 3), dtype=tf.float32)


def _loss_fn(labels, logits):
    logits = tf.reshape(logits, (-1, tf.shape(logits)[-1]))
    return classification_loss(tf.reshape(labels, (-1,)), logits)


def measure_model(config: BenchConfig) -> dict:
    """Inference or training-step throughput, peak memory and counted FLOPs of one model."""
    keras.config.set_dtype_policy(config.precision)
    t0 = time.perf_counter()
    model = build_model(config)
    if config.fold_bn:
        from keras_wideresnet.models import fold_batch_norm

        model = fold_batch_norm(model)
    build_s = time.perf_counter() - t0
    shape = (config.resolution, config.resolution, 3)
    counted = flops_lib.count_flops(model, shape)
    x = _images(config)
    result: dict = {"build_s": build_s, "params": int(model.count_params()),
                    "flops_per_image": counted.conv_dense, "elementwise_flops_per_image": counted.elementwise}
    if config.kind == "inference":
        fn = tf.function(lambda images: model(images, training=False), jit_compile=config.jit_compile)
        step = lambda: fn(x)[..., :1]  # noqa: E731  (a small fetch synchronises the step)
    else:
        step = _training_step(model, config, x)
    return _time_step(config, step, result)


def _training_step(model: keras.Model, config: BenchConfig, x) -> Callable[[], object]:
    """The trainer's training step (:func:`build_replica_step`) of ``model`` on ``x`` and random
    labels, in a ``tf.function``, returning the loss: forward, softmax cross-entropy, gradients
    and the default optimizer (TF's fused BN unless ``config.keras_bn``; ``FusedSGD`` unless
    ``config.keras_sgd``). ``config.jit_compile`` compiles the forward and backward pass, as
    ``Experiment.jit_compile`` does."""
    out_shape = model.output_shape[1:-1]
    labels = tf.random.uniform((config.batch_size, *out_shape), maxval=config.classes, dtype=tf.int32)
    optimizer_config = OptimizerConfig(schedule="constant", learning_rate=0.01)
    optimizer = build_optimizer(optimizer_config, 1000, mixed_precision=config.precision,
                                fused=not config.keras_sgd)
    if not config.keras_bn:
        use_fused_batch_norm(model)
    optimizer.build(model.trainable_variables)
    replica_step = build_replica_step(model, optimizer, _loss_fn, optimizer_config=optimizer_config,
                                      jit_compile=config.jit_compile)
    train_step = tf.function(lambda images, y: replica_step(images, y)[0])
    return lambda: train_step(x, labels)


def _time_step(config: BenchConfig, step: Callable[[], object], result: dict) -> dict:
    """Times ``step`` (warm-up, then ``iters`` steps) with memory and achieved FLOP/s from
    ``result["flops_per_image"]``; a training step's loss must stay finite."""
    memory = _memory_start()
    tf_allocator = config.framework != "torch"  # PyTorch's tensors bypass TF's allocator
    times, warmup_s, cpu = _timed(step, config.warmup, config.iters,
                                  after_warmup=(lambda: _reset_allocator_peak(memory)) if tf_allocator else None)
    result.update(_summary(times, config.batch_size, cpu))
    result.update(_memory_end(memory))
    result["warmup_s"] = warmup_s
    factor = flops_lib.TRAINING_FLOPS_FACTOR if config.kind == "training" else 1
    result["achieved_flops"] = factor * result["flops_per_image"] * result["images_per_s"]
    if config.kind == "training":
        loss = float(np.asarray(step()))
        if not np.isfinite(loss):
            raise FloatingPointError(f"training loss is not finite ({loss}) for {config.label}")
        result["final_loss"] = loss
    return result


def measure_torch(config: BenchConfig) -> dict:
    """The same measurement for the plain PyTorch port (:mod:`.torch_peer`), the benchmark's peer."""
    from tools.benchmarking import torch_peer
    from keras_wideresnet.models.spec import get_spec

    spec = get_spec(config.model).scaled(config.width_multiplier)
    step, flops, params = torch_peer.make_step(
        spec, kind=config.kind, precision=config.precision, resolution=config.resolution,
        batch_size=config.batch_size, classes=config.classes, bf16_math=config.bf16_math)
    result: dict = {"params": params, "flops_per_image": flops, "framework": torch_peer.torch.__version__,
                    "torch_threads": torch_peer.torch.get_num_threads(),
                    "torch_fp32_precision": torch_peer.torch.backends.mkldnn.conv.fp32_precision}
    return _time_step(config, step, result)


def measure_pipeline(config: BenchConfig, rounds: int = 3) -> dict:
    """Training input pipeline vs plain parse + decode of the same JPEG records (real photographs).

    The two alternate for ``rounds`` rounds, each with a fresh iterator (a live one keeps
    prefetching in the background), and the medians are reported: under shared load single
    measurements vary widely.
    """
    from keras_wideresnet import data
    from keras_wideresnet.data.labels.base import generic

    items = [data.Item(f"photo_{i:05d}", encoded, label=i % 10)
             for i, encoded in enumerate(data.photo_jpegs(config.num_records, quality=config.jpeg_quality))]
    pipeline, decode = [], []
    with tempfile.TemporaryDirectory() as tmp:
        written = data.write_split(items, tmp, dataset_name="bench", split="train",
                                   config=data.EncodeConfig("classification", generic([str(c) for c in range(10)])),
                                   num_shards=2, verbose=False)
        for _ in range(rounds):
            decode.append(data.measure_throughput(data.decode_only_dataset(written.pattern),
                                                  config.iters * config.batch_size,
                                                  warmup_batches=config.warmup * config.batch_size))
            train = data.classification_dataset(written.pattern, is_training=True,
                                                 global_batch_size=config.batch_size,
                                                 image_size=config.resolution, num_classes=10)
            pipeline.append(data.measure_throughput(train, config.iters, warmup_batches=config.warmup))
    mean_bytes = float(np.mean([len(item.image) for item in items]))
    return {"images_per_s": float(np.median(pipeline)), "decode_images_per_s": float(np.median(decode)),
            "pipeline_vs_decode": float(np.median(np.array(pipeline) / np.array(decode))),
            "rounds": {"pipeline": pipeline, "decode": decode},
            "jpeg_bytes_per_pixel": mean_bytes / (375 * 500), "peak_rss_mib": _peak_rss_mib()}


def measure_interleaved(config: BenchConfig) -> dict:
    """Inference of float32 and ``config.precision`` models, each with Keras BN and folded BN,
    in one process, timed step by step in rotation (:func:`_rotate`)."""
    from keras_wideresnet.models import fold_batch_norm

    variants: dict[str, Callable[[], object]] = {}
    x = _images(config)
    weights = None
    for precision in ("float32", config.precision):
        keras.config.set_dtype_policy(precision)
        model = build_model(dataclasses.replace(config, kind="inference", precision=precision))
        if weights is None:
            weights = model.get_weights()
        model.set_weights(weights)  # the same network in every variant
        for folded in (False, True):
            net = fold_batch_norm(model) if folded else model
            fn = tf.function(lambda images, net=net: net(images, training=False))
            variants[f"{precision}{', folded BN' if folded else ''}"] = lambda fn=fn: fn(x)[..., :1]
    keras.config.set_dtype_policy("float32")
    return _rotate(config, variants, report=config.precision)


def measure_interleaved_bn(config: BenchConfig) -> dict:
    """Training steps of ``config.model`` with TF's fused BN and with Keras' BN (same weights,
    same precision) in one process, timed step by step in rotation (:func:`_rotate`)."""
    keras.config.set_dtype_policy(config.precision)
    x = _images(config)
    variants: dict[str, Callable[[], object]] = {}
    weights = None
    for name, keras_bn in (("Keras BN", True), ("fused BN", False)):
        variant = dataclasses.replace(config, kind="training", keras_bn=keras_bn)
        model = build_model(variant)
        if weights is None:
            weights = model.get_weights()
        model.set_weights(weights)
        variants[name] = _training_step(model, variant, x)
    keras.config.set_dtype_policy("float32")
    return _rotate(config, variants, report="fused BN")


def measure_interleaved_peer(config: BenchConfig) -> dict:
    """Training steps of ``config.model`` as the trainer runs them and of its plain PyTorch port
    (:mod:`.torch_peer`), same batch, size and precision, in one process, timed step by step in
    rotation (:func:`_rotate`): a side-by-side with the peer, free of the host's drift."""
    from tools.benchmarking import torch_peer
    from keras_wideresnet.models.spec import get_spec

    torch_step, _, _ = torch_peer.make_step(
        get_spec(config.model).scaled(config.width_multiplier), kind="training",
        precision=config.precision, resolution=config.resolution, batch_size=config.batch_size,
        classes=config.classes, bf16_math=config.bf16_math)
    keras.config.set_dtype_policy(config.precision)
    variant = dataclasses.replace(config, kind="training")
    keras_step = _training_step(build_model(variant), variant, _images(config))
    keras.config.set_dtype_policy("float32")
    return _rotate(config, {"PyTorch port": torch_step, "Keras": keras_step}, report="Keras")


def _rotate(config: BenchConfig, variants: dict[str, Callable[[], object]], report: str) -> dict:
    """Warms every variant up, then times one step of each in turn, ``config.iters`` rounds,
    the order reversed every other round (no variant always runs right after another).

    Speed-ups are against the first variant, the median over rounds of the per-round ratio:
    this cancels the machine's speed drifting over minutes (other jobs on shared cores, AMX
    clocks), which separate subprocesses suffer. ``images_per_s`` is the ``report`` variant's.
    """
    for step in variants.values():
        for _ in range(config.warmup):
            timed_call(step)
    times: dict[str, list[float]] = {name: [] for name in variants}
    order = list(variants.items())
    for i in range(config.iters):
        for name, step in (order if i % 2 == 0 else order[::-1]):
            times[name].append(timed_call(step)[1].wall_s)
    base = next(iter(times.values()))
    return {
        "variants": {name: {"images_per_s": config.batch_size / statistics.median(t),
                            "step_times_s": [round(v, 5) for v in t],
                            "speedup": statistics.median(b / v for b, v in zip(base, t))}
                     for name, t in times.items()},
        "images_per_s": config.batch_size / statistics.median(times[report]),
        "peak_rss_mib": _peak_rss_mib()}


def measure_agreement(config: BenchConfig) -> dict:
    """Top-1 agreement of the trained ``config.model_dir`` in ``config.precision`` (BN folded if
    ``config.fold_bn``) with its float32 predictions, on the run's eval data."""
    from keras_wideresnet.evaluation.agreement import precision_agreement
    from keras_wideresnet.config import gin_config

    experiment = gin_config.experiment_from_flags([], [], config.model_dir)
    result = precision_agreement(experiment, config.model_dir, precision=config.precision,
                                 fold_bn=config.fold_bn)
    return {**result, "peak_rss_mib": _peak_rss_mib()}


def measure(config: BenchConfig) -> dict:
    """Dispatches on ``config.kind``; adds device info and the load average."""
    load_before = os.getloadavg()
    if config.kind == "matmul":
        result = measure_matmul(config)
    elif config.kind == "pipeline":
        result = measure_pipeline(config)
    elif config.kind == "agreement":
        result = measure_agreement(config)
    elif config.kind == "interleaved":
        result = measure_interleaved(config)
    elif config.kind == "interleaved_bn":
        result = measure_interleaved_bn(config)
    elif config.kind == "interleaved_peer":
        result = measure_interleaved_peer(config)
    elif config.framework == "torch":
        result = measure_torch(config)
    else:
        result = measure_model(config)
    result["device"] = device_info()
    result["loadavg_1m"] = [round(load_before[0], 2), round(os.getloadavg()[0], 2)]
    return result
